"""The hub's client WebSocket without ASGI: ``/PBX0/APPS/websocket`` (docs/protocol.md 12.29).

Why: under ASGI every client frame became a message dict put on a queue and taken by the
endpoint's task, and every frame out was a task's ``await send_text`` through Starlette's
and uvicorn's wrappers down to one ``send()`` syscall per frame; half the hub's CPU at full
load went there (docs/benchmarks.md). ``WireProtocol`` is uvicorn's sans-I/O WebSocket
protocol (with liveness, ``LivenessProtocol``) that, for the hub's path only, talks to the
``Hub`` directly: a complete text message goes to ``hub.receive`` from ``data_received``,
and the hub's frames are written synchronously, every frame a connection gets in one turn
of the loop joined into one ``transport.write`` at the end of that turn. Every other path
(HTTP, the messages service's WebSocket, admin) goes to the ASGI app as before.

The hub writes directly only while the transport's buffer is under its high-water mark
(``pause_writing``/``resume_writing``); otherwise its frames wait in the connection's
bounded send queue, drained through ``send_text`` as the buffer empties, and a client that
lets the queue overflow is closed 4008 (``Hub``'s policy, unchanged).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from starlette.applications import Starlette
from uvicorn.middleware.proxy_headers import _TrustedHosts
from websockets.frames import Frame
from websockets.http11 import Request

from tracing import logs

from .hub import Hub
from .liveness import LivenessProtocol

__all__ = ["WireProtocol", "wire_protocol_for"]

_CLEAN_CLOSE = frozenset({1000, 1001})


class _Flusher:
    """Writes out, once per turn of the loop, every connection that has frames waiting."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.due: list[WireProtocol] = []

    def add(self, protocol: WireProtocol) -> None:
        if not self.due:
            self.loop.call_soon(self.flush)
        self.due.append(protocol)

    def flush(self) -> None:
        due, self.due = self.due, []
        for protocol in due:
            protocol.flush()


_flushers: dict[asyncio.AbstractEventLoop, _Flusher] = {}


def _flusher(loop: asyncio.AbstractEventLoop) -> _Flusher:
    flusher = _flushers.get(loop)
    if flusher is None:
        _flushers.clear()  # a new loop (tests run one per test): the old one is gone
        flusher = _flushers[loop] = _Flusher(loop)
    return flusher


def _text_header(size: int) -> bytes:
    """The header of one final, unmasked server text frame of ``size`` bytes (RFC 6455
    §5.2); the payload follows it as its own item of the turn's single write."""
    if size < 126:
        return bytes((0x81, size))
    if size < 65536:
        return b"\x81\x7e" + size.to_bytes(2, "big")
    return b"\x81\x7f" + size.to_bytes(8, "big")


class WireProtocol(LivenessProtocol):
    """uvicorn's WebSocket protocol with liveness; the hub's path served without ASGI."""

    starlette: ClassVar[Starlette | None] = None
    """The app whose ``state.hub`` serves ``hub_path`` (set by ``wire_protocol_for``)."""
    hub_path: ClassVar[str] = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hub: Hub | None = None
        """Set once the hub's path is accepted: this connection is then the hub's."""
        self.conn_id = 0
        self.conn_name = ""
        self.writable_now = True
        """The hub may write now: under the high-water mark and not closing."""
        self._pending: list[bytes] = []
        self._plain = not self.conn.extensions
        self._detached = False

    # -- the handshake -------------------------------------------------------------------

    def handle_connect(self, event: Request) -> None:
        starlette = self.starlette
        hub = getattr(starlette.state, "hub", None) if starlette is not None else None
        if hub is None or event.path.partition("?")[0] != self.hub_path:
            super().handle_connect(event)
            return
        self.request = event
        self.response = self.conn.accept(event)
        self.handshake_initiated = True
        if self.response.status_code != 101:
            super().handle_connect(event)  # the same refusal as on any other path
            return
        del self.response.headers["Date"]
        self.response.headers.update(
            (name.decode("latin-1").lower(), value.decode("latin-1"))
            for name, value in self.default_headers
        )
        self.handshake_complete = True
        self.conn.send_response(self.response)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self._plain = not self.conn.extensions
        self.start_keepalive()
        self.logger.info('%s - "WebSocket %s" [accepted]', self._address(), event.path)
        self.hub = hub
        self.conn_id = hub.attach(self, self._address())
        self.conn_name = str(self.conn_id)

    def _address(self) -> str:
        """The client's address, a trusted proxy's ``X-Forwarded-For`` applied as uvicorn
        does for ASGI requests."""
        host = self.client[0] if self.client else "unknown"
        config = self.config
        if config.proxy_headers and host in _TrustedHosts(config.forwarded_allow_ips):
            forwarded = self.request.headers.get_all("X-Forwarded-For")
            if forwarded:
                trusted = _TrustedHosts(config.forwarded_allow_ips)
                client, _ = trusted.get_trusted_client_address(", ".join(forwarded))
                host = client or host
        return host

    # -- frames in --------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Every frame of one read is one batch for the hub: the acks they cause may leave
        as one (docs/protocol.md 12.31)."""
        hub = self.hub
        if hub is None:
            super().data_received(data)
            return
        hub.begin_batch()
        try:
            super().data_received(data)
        finally:
            hub.end_batch()

    def send_receive_event_to_app(self) -> None:
        hub = self.hub
        if hub is None:
            super().send_receive_event_to_app()
            return
        frames = self.frames
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        self.frames = []
        if self.close_sent:
            return
        logs.serving = self.conn_name  # log lines name this connection
        try:
            if self.curr_msg_data_type == "text":
                try:
                    text = data.decode()
                except UnicodeDecodeError:
                    self.conn.send_close(1007)
                    self.handle_parser_exception()
                    return
                hub.receive(self.conn_id, text)
            else:
                hub.receive_binary(self.conn_id)
        finally:
            logs.serving = None

    def handle_close(self, event: Frame) -> None:
        close = self.conn.close_rcvd
        super().handle_close(event)
        self._detach(close.code if close is not None else 1005)

    def handle_parser_exception(self) -> None:
        super().handle_parser_exception()
        close = self.conn.close_sent
        self.writable_now = False
        self._detach(close.code if close is not None else 1006)

    def connection_lost(self, exc: Exception | None) -> None:
        self.writable_now = False
        super().connection_lost(exc)
        self._detach(1006 if exc is not None else 1005)

    def shutdown(self) -> None:
        if self.hub is not None and not self.close_sent:
            self.flush()
            self.writable_now = False
            self._detach(1012)
        super().shutdown()

    def _detach(self, code: int) -> None:
        """Tell the hub the connection is gone, once, as the ASGI endpoint did on its first
        ``websocket.disconnect``."""
        if self.hub is None or self._detached:
            return
        self._detached = True
        task = self.loop.create_task(self.hub.detach(self.conn_id, code in _CLEAN_CLOSE))
        task.add_done_callback(self.on_task_complete)
        self.tasks.add(task)

    # -- frames out -------------------------------------------------------------------------

    def write_text(self, text: str) -> None:
        """Queue a frame for this turn's single write (the hub calls this only while
        ``writable_now``)."""
        pending = self._pending
        if not pending:
            _flusher(self.loop).add(self)
        payload = text.encode()
        if self._plain:  # header and payload joined once, by the flush
            pending += (_text_header(len(payload)), payload)
        else:
            self.conn.send_text(payload)
            pending += self.conn.data_to_send()

    def flush(self) -> None:
        pending = self._pending
        if pending:
            self._pending = []
            if not self.transport.is_closing():
                self.transport.write(b"".join(pending))

    def pause_writing(self) -> None:
        self.writable_now = False
        super().pause_writing()

    def resume_writing(self) -> None:
        self.writable_now = not self.close_sent and not self.disconnected
        super().resume_writing()

    async def send_text(self, data: str) -> None:
        """A frame from the hub's send queue: written once the buffer has room."""
        await self.writable.wait()
        if self.disconnected or self.close_sent:
            raise ConnectionResetError("the connection is closed")
        self.write_text(data)

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Close after every frame written so far (the hub's ``Close``)."""
        self.flush()
        self.writable_now = False
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return
        self.conn.send_close(code, reason or "")
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)
        self._detach(code)


def wire_protocol_for(
    idle_timeout: float, app: Starlette | None, hub_path: str
) -> type[WireProtocol]:
    """The protocol class uvicorn builds per connection: liveness after ``idle_timeout``,
    ``hub_path`` served by ``app.state.hub`` when the app has one."""

    class Configured(WireProtocol):
        starlette = app

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, idle_timeout=idle_timeout, **kwargs)

    Configured.hub_path = hub_path
    return Configured
