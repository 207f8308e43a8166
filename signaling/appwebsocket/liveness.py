"""Liveness is the transport's business (PROTOCOL §3.5 revised, docs/protocol.md 12.26).

Why: innovaphone's AppWebsocket library sends no ``KeepAlive`` unless asked to, and a
client that mostly listens sends nothing for minutes. So the server, not the client,
proves the link alive: it pings, the peer's WebSocket stack answers by itself (browsers
do), and only a peer from which nothing arrives — no pong and no frame — for
``limits.idle_timeout`` is closed, with 4006 (idle timeout).

uvicorn's WebSocket protocol (the ``websockets`` sans-I/O one) already pings every
``ws_ping_interval`` and gives up when no pong came within ``ws_ping_timeout``; it closes
with 1011. ``LivenessProtocol`` changes two things: a missed pong only ends the connection when
nothing at all (no pong, no frame) came for ``idle_timeout``, otherwise it pings again;
and it closes with 4006, the code the protocol documents. ``ping_settings`` pings at
least every 20 s and four times per ``idle_timeout``, so a dead peer is closed about
``idle_timeout`` after it was last heard.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from . import closecodes

__all__ = ["LivenessProtocol", "ping_settings", "protocol_for"]


PING_EVERY = 20.0
"""Seconds between pings at most: often enough for the 60 s idle cut-offs of common
proxies and NATs, whatever ``idle_timeout`` says."""


def ping_settings(idle_timeout: float) -> dict[str, float]:
    """uvicorn's ping interval and pong wait for ``limits.idle_timeout``: a quarter of it,
    at most ``PING_EVERY``, so the link is proved several times within the timeout."""
    every = min(PING_EVERY, idle_timeout / 4)
    return {"ws_ping_interval": every, "ws_ping_timeout": every}


class LivenessProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, closing with 4006 only a peer silent for the whole
    ``idle_timeout``: neither a pong nor any other frame."""

    def __init__(self, *args: Any, idle_timeout: float = 120.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.idle_timeout = idle_timeout
        self.heard_at = self.loop.time()
        """Loop time of the last bytes from the peer (a pong, a frame, anything)."""

    def data_received(self, data: bytes) -> None:
        self.heard_at = self.loop.time()
        super().data_received(data)

    def keepalive_timeout(self) -> None:
        """No pong within the wait. Unless the peer has been silent for ``idle_timeout``
        (it may have sent frames, or the timeout is not up yet), ping again."""
        self.pong_timer = None
        self.pending_ping_payload = None
        if self.close_sent or self.transport.is_closing():
            return
        if self.loop.time() - self.heard_at < self.idle_timeout:
            self.schedule_ping()
            return
        self.conn.fail(closecodes.WS_4006_IDLE, "idle timeout")
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.transport.close()
        # A dead peer never takes what is still buffered for it: drop it soon rather
        # than when TCP gives up, so the hub learns of the disconnect now.
        self.loop.call_later(1.0, self.transport.abort)


def protocol_for(idle_timeout: float) -> type[LivenessProtocol]:
    """The protocol class uvicorn builds per connection, knowing ``idle_timeout``."""

    class Configured(LivenessProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, idle_timeout=idle_timeout, **kwargs)

    return Configured
