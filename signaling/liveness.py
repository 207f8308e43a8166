"""Liveness is the transport's business (PROTOCOL §3.5 revised, docs/protocol.md 12.26).

Why: innovaphone's AppWebsocket library sends no ``KeepAlive`` unless asked to, and a
client that mostly listens sends nothing for minutes. So the server, not the client,
proves the link alive: it pings, the peer's WebSocket stack answers by itself (browsers
do), and only a peer from which nothing arrives — no pong and no frame — for
``limits.idle_timeout`` is closed, with 4006 (idle timeout).

uvicorn's WebSocket protocol (the ``websockets`` sans-I/O one) already pings every
``ws_ping_interval`` and gives up when no pong came within ``ws_ping_timeout``; it closes
with 1011. ``LivenessProtocol`` changes two things: any frame received since the ping
counts as a sign of life too, and giving up closes with 4006, the code the protocol
documents. ``ping_settings`` splits the idle timeout between the two waits, so a dead
peer is closed at most ``idle_timeout`` after it was last heard.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from .appwebsocket import closecodes

__all__ = ["LivenessProtocol", "ping_settings"]


def ping_settings(idle_timeout: float) -> dict[str, float]:
    """uvicorn's ping interval and pong timeout for ``limits.idle_timeout``: half each."""
    half = idle_timeout / 2
    return {"ws_ping_interval": half, "ws_ping_timeout": half}


class LivenessProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, with frames counting as life and a 4006 close."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.heard_at = 0.0
        """Loop time of the last bytes from the peer."""

    def data_received(self, data: bytes) -> None:
        self.heard_at = self.loop.time()
        super().data_received(data)

    def keepalive_timeout(self) -> None:
        if self.heard_at > self.ping_sent_at and not self.close_sent:
            # No pong yet, but the peer spoke after the ping: it is there. Ping again.
            self.pong_timer = None
            self.pending_ping_payload = None
            self.schedule_ping()
            return
        self.pong_timer = None
        self.pending_ping_payload = None
        if self.close_sent or self.transport.is_closing():
            return
        self.conn.fail(closecodes.WS_4006_IDLE, "idle timeout")
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.transport.close()
