"""AppWebsockets served on the transport, without ASGI (docs/protocol.md 12.29, 12.40).

Why: under ASGI every frame in became a message dict put on a queue and taken by the
endpoint's task, and every frame out was a task's ``await send_text`` through Starlette's
and uvicorn's wrappers down to one ``send()`` syscall per frame; half the hub's CPU at
full load went there, and most of what storing a message cost beyond relaying it went
the same way on the messages service's side (docs/benchmarks.md).

``TransportSocket`` is uvicorn's sans-I/O WebSocket protocol (with liveness,
``LivenessProtocol``) that serves the paths an app names with ``serve_on_transport``
itself: once the handshake is accepted, the path's ``Endpoint`` is handed the socket and
says what ``Served`` it: a complete text message goes to ``Served.text`` straight from
``data_received``, without a task, and frames out are written synchronously, every frame
a connection gets in one turn of the loop joined into one ``transport.write`` at the end
of that turn. Every other path (HTTP, admin, files) goes to the ASGI app as before, on
the same port.

Frames are written directly only while the transport's buffer is under its high-water
mark (``writable_now``); past it the endpoint keeps its frames itself and is told by
``Served.resumed`` (or waits in ``send_text``) when there is room again. What a peer that
lets them pile up deserves is the endpoint's policy, as are login, idle cut-offs and
errors: this module only moves frames.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from starlette.applications import Starlette
from uvicorn.middleware.proxy_headers import _TrustedHosts
from websockets.frames import Frame
from websockets.http11 import Request
from websockets.protocol import State

from tracing import logs

from . import closecodes
from .frames_in import FINAL_TEXT, MASKED, apply_mask, frame_end
from .frames_out import MEDIUM_TEXT_HEADER as _MEDIUM_HEADER
from .frames_out import text_header
from .liveness import LivenessProtocol

__all__ = [
    "CLOSED",
    "Endpoint",
    "Served",
    "TransportSocket",
    "endpoints_of",
    "serve_on_transport",
    "transport_protocol_for",
]

_ENDPOINTS = "transport_endpoints"
"""The attribute of an app's ``state`` holding its paths served on the transport."""


def _nothing() -> None:
    return None


def _ignore(_: object) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Served:
    """What serves one connection accepted on the transport: plain callables, called from
    the transport's callbacks (never awaited there)."""

    name: str
    """Names the connection on the log lines written while its frames are handled."""
    text: Callable[[str], None]
    """A complete text message."""
    binary: Callable[[], None]
    """A complete binary message (the AppWebsocket refuses them)."""
    gone: Callable[[int], Coroutine[Any, Any, None] | None]
    """The connection is over, with this close code (once). A coroutine returned runs as
    a task the server waits for when it shuts down."""
    begin: Callable[[], None] = _nothing
    """Frames of one read follow (the hub joins the acks they cause, 12.31) ..."""
    end: Callable[[], None] = _nothing
    """... and that read's frames are all handled."""
    resumed: Callable[[], None] = _nothing
    """The transport's buffer has room again: ``writable_now`` is true."""
    texts: Callable[[list[str]], None] | None = None
    """The complete text messages cut from one read, in order, in one call, for an
    endpoint that handles them as one event (the hub); without it, ``text`` hears each."""


CLOSED = Served(name="-", text=_ignore, binary=_nothing, gone=_ignore)
"""What an endpoint returns for a connection it closed at once (not serving now)."""

Endpoint = Callable[["TransportSocket"], Served]
"""Serves one path: given a socket whose handshake is done, what serves it."""


def serve_on_transport(app: Starlette, path: str, endpoint: Endpoint) -> None:
    """Serve ``path`` of ``app`` on the transport under ``switchboard serve`` (an ASGI
    route for it, if any, still serves it under other servers)."""
    endpoints = getattr(app.state, _ENDPOINTS, None)
    if endpoints is None:
        endpoints = {}
        setattr(app.state, _ENDPOINTS, endpoints)
    endpoints[path] = endpoint


def endpoints_of(app: object) -> Mapping[str, Endpoint]:
    """The paths ``app`` serves on the transport (none for an app that is not Starlette)."""
    if not isinstance(app, Starlette):
        return {}
    endpoints: Mapping[str, Endpoint] = getattr(app.state, _ENDPOINTS, {})
    return endpoints


class _Flusher:
    """Writes out, once per turn of the loop, every connection that has frames waiting."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.due: list[TransportSocket] = []

    def add(self, socket: TransportSocket) -> None:
        if not self.due:
            self.loop.call_soon(self.flush)
        self.due.append(socket)

    def flush(self) -> None:
        due, self.due = self.due, []
        for socket in due:
            socket.flush()


_flushers: dict[asyncio.AbstractEventLoop, _Flusher] = {}


def _flusher(loop: asyncio.AbstractEventLoop) -> _Flusher:
    flusher = _flushers.get(loop)
    if flusher is None:
        _flushers.clear()  # a new loop (tests run one per test): the old one is gone
        flusher = _flushers[loop] = _Flusher(loop)
    return flusher


class TransportSocket(LivenessProtocol):
    """uvicorn's WebSocket protocol with liveness; the ``endpoints``' paths served
    without ASGI."""

    endpoints: ClassVar[Mapping[str, Endpoint]] = {}
    """Set by ``transport_protocol_for``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.served: Served | None = None
        """Set once an endpoint's path is accepted: the connection is then its."""
        self.writable_now = True
        """Frames may be written now: under the high-water mark and not closing."""
        self._pending: list[bytes] = []
        self._plain = not self.conn.extensions
        self._detached = False
        self._inbound: bytearray | None = None
        """Bytes of a frame not yet whole, once the transport cuts frames itself
        (``frames_in``); None while ``websockets``' parser reads every byte: during the
        handshake, and for good once the connection is closing."""
        self._fragmented = False
        """A fragmented message handed to ``websockets`` is not finished yet."""

    # -- the handshake -------------------------------------------------------------------

    def handle_connect(self, event: Request) -> None:
        endpoint = self.endpoints.get(event.path.partition("?")[0])
        if endpoint is None:
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
        self.logger.info('%s - "WebSocket %s" [accepted]', self.address(), event.path)
        self.served = endpoint(self)

    def address(self) -> str:
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
        """Every frame of one read is one batch for the endpoint; the log lines written
        meanwhile name the connection (set once a read, not once a frame)."""
        served = self.served
        if served is None:
            super().data_received(data)
            if self.served is not None and self._at_frame_start(data):
                self._inbound = bytearray()
            return
        logs.serving = served.name
        served.begin()
        try:
            if self._inbound is None:
                super().data_received(data)
            else:
                self.heard_at = self.loop.time()
                self._cut(data)
        finally:
            served.end()
            logs.serving = None

    def _at_frame_start(self, data: bytes) -> bool:
        """The read that completed the handshake held the request and nothing after it,
        so ``websockets`` has read no byte of a frame: the transport may cut them. (A
        client that sends frames before the 101, which RFC 6455 §4.1 forbids, is read by
        ``websockets`` alone.)"""
        reader = getattr(self.conn, "reader", None)
        return (
            self._plain
            and not self.close_sent
            and self.conn.state is State.OPEN
            and reader is not None
            and not getattr(reader, "buffer", True)
            and data.find(b"\r\n\r\n") == len(data) - 4
        )

    def _cut(self, data: bytes) -> None:
        """Whole masked text messages go to the endpoint from here; any other frame goes
        whole to ``websockets``; a frame not yet whole waits for the next read."""
        data = self._joined(data)
        limit = self.config.ws_max_size
        start, end = 0, len(data)
        texts: list[str] = []  # whole text messages, handed over together (``_deliver``)
        while start < end:
            cut = frame_end(data, start, limit)
            if cut is None:
                break
            payload, stop = cut
            if payload < 0:  # too big to wait for: websockets refuses it (1009)
                self._deliver(texts)
                self._hand_over(data[start:])
                return
            if stop > end:
                break
            if data[start] == FINAL_TEXT and data[start + 1] & MASKED and not self._fragmented:
                message = apply_mask(data[payload:stop], data[payload - 4 : payload])
                try:
                    texts.append(message.decode())
                except UnicodeDecodeError:
                    self._deliver(texts)  # the messages before it are answered first
                    if not self.close_sent and self._inbound is not None:  # still open
                        self._not_utf8()
            else:
                self._deliver(texts)
                self._to_websockets(data[start:stop])
            if self.close_sent or self._inbound is None:
                self._hand_over(data[stop:])
                return
            start = stop
        self._deliver(texts)
        if self.close_sent or self._inbound is None:  # a message handled closed it
            self._hand_over(data[start:])
        elif start < end:
            self._inbound += data[start:]

    def _joined(self, data: bytes) -> bytes:
        """What the last read left (a frame not yet whole), then ``data``."""
        inbound = self._inbound
        assert inbound is not None
        if not inbound:
            return data
        inbound += data
        joined = bytes(inbound)
        inbound.clear()
        return joined

    def _deliver(self, texts: list[str]) -> None:
        """The whole text messages cut from one read, in order: to the endpoint's
        ``texts`` in one call when it has one (the hub handles them as one event), else
        one by one while the connection stays open."""
        if not texts:
            return
        served = self.served
        assert served is not None
        if served.texts is not None:
            served.texts(texts)
        else:
            for text in texts:
                if self.close_sent or self._inbound is None:
                    break  # closed by one of them: the rest is not read (as websockets would)
                served.text(text)
        texts.clear()

    def _to_websockets(self, frame: bytes) -> None:
        opcode = frame[0] & 0x0F
        if opcode <= 2:  # continuation, text, binary: a message's fragments end with FIN
            self._fragmented = not frame[0] & 0x80
        super().data_received(frame)
        if self.conn.state is not State.OPEN:
            self._inbound = None

    def _hand_over(self, rest: bytes) -> None:
        """``websockets`` reads the connection from here on (it is closing, or a frame
        is too big): the rest of this read goes to it."""
        self._inbound = None
        if rest:
            super().data_received(rest)

    def send_receive_event_to_app(self) -> None:
        served = self.served
        if served is None:
            super().send_receive_event_to_app()
            return
        frames = self.frames
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        self.frames = []
        if self.close_sent:
            return
        if self.curr_msg_data_type == "text":
            self._text(data)
        else:
            served.binary()

    def _text(self, data: bytes) -> None:
        """A whole text message for the endpoint (not valid UTF-8: closed 1007); only
        ever called from ``data_received``, with a ``served``."""
        served = self.served
        assert served is not None
        try:
            text = data.decode()
        except UnicodeDecodeError:
            self._not_utf8()
            return
        served.text(text)

    def _not_utf8(self) -> None:
        self.conn.send_close(closecodes.WS_1007_INVALID_UTF8)
        self.handle_parser_exception()

    def pause_input(self) -> None:
        """Read nothing more from the peer for now (its frames wait in the kernel)."""
        if not self.read_paused and not self.close_sent and not self.transport.is_closing():
            self.read_paused = True
            self.transport.pause_reading()

    def resume_input(self) -> None:
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()

    def handle_close(self, event: Frame) -> None:
        close = self.conn.close_rcvd
        self.flush()  # answers to the frames before the close go out before ours
        super().handle_close(event)
        self._detach(close.code if close is not None else 1005)

    def handle_parser_exception(self) -> None:
        self.flush()  # answers to the frames before the bad one go out before the close
        super().handle_parser_exception()
        close = self.conn.close_sent
        self.writable_now = False
        self._detach(close.code if close is not None else 1006)

    def connection_lost(self, exc: Exception | None) -> None:
        self.writable_now = False
        super().connection_lost(exc)
        self._detach(1006 if exc is not None else 1005)

    def shutdown(self) -> None:
        if self.served is not None and not self.close_sent:
            self.flush()
            self.writable_now = False
            self._detach(closecodes.WS_1012_SERVICE_RESTART)
        super().shutdown()

    def _detach(self, code: int) -> None:
        """Tell the endpoint the connection is over, once."""
        served = self.served
        if served is None or self._detached:
            return
        self._detached = True
        after = served.gone(code)
        if after is not None:
            task = self.loop.create_task(after)
            task.add_done_callback(self.on_task_complete)
            self.tasks.add(task)

    # -- frames out -------------------------------------------------------------------------

    def write_text(self, text: str) -> None:
        """Queue a frame for this turn's single write (call it only while
        ``writable_now``; frames written later are dropped once closing)."""
        pending = self._pending
        if not pending:
            _flusher(self.loop).add(self)
        payload = text.encode()
        if self._plain:  # header and payload joined once, by the flush
            size = len(payload)  # nearly every frame: 126 bytes to 64 KiB, packed in line
            header = _MEDIUM_HEADER(0x81, 126, size) if 125 < size < 65536 else text_header(size)
            pending += (header, payload)
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
        if self.writable_now and self.served is not None:
            self.served.resumed()

    async def send_text(self, data: str) -> None:
        """A frame that waited for room (the hub's send queue): written once there is."""
        await self.writable.wait()
        if self.disconnected or self.close_sent:
            raise ConnectionResetError("the connection is closed")
        self.write_text(data)

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """The hub's ``Close``: ``close_now``."""
        self.close_now(code, reason or "")

    def close_now(self, code: int, reason: str = "") -> None:
        """Close after every frame written so far; the endpoint is told at once."""
        self.flush()
        self.writable_now = False
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)
        self._detach(code)


def transport_protocol_for(
    idle_timeout: float, endpoints: Mapping[str, Endpoint]
) -> type[TransportSocket]:
    """The protocol class uvicorn builds per connection: liveness after ``idle_timeout``,
    ``endpoints``' paths served on the transport."""

    class Configured(TransportSocket):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, idle_timeout=idle_timeout, **kwargs)

    Configured.endpoints = endpoints
    return Configured
