"""One AppWebsocket connection to the service: login, then requests (PROTOCOL §1, §3).

Theory of operation. Frames arrive one at a time through ``receive``, called by the
socket (on the transport under ``switchboard serve``, ``signaling.appwebsocket.transport``;
``asgi_socket`` under other servers), and each is handled before the next, so a hub's
requests are answered in the order it sent them (a ``SetRead`` is seen by the
``ReadChat`` behind it); only Posts leave that order, handed to the writer. A frame that
needs no waiting (a Post the writer has room for, ``KeepAlive``, the login) is handled
right there, without a task; one that waits for the database starts the connection's one
task, and frames arriving meanwhile wait behind it in ``_inbox`` (the socket reads no more
until it is empty). A request's notifications are queued for every hub before its answers
are queued for the asker, so that a hub has taken a change before its client hears it is
done (PROTOCOL §7.6, docs/protocol.md 12.23).

Frames out are written to the socket while it has room and otherwise kept in ``_out``,
in order, until it says it has room again; a close goes out behind every frame sent
before it (``AppLoginResult`` before 4001). Once ``limits.send_queue`` frames wait, a
logged-in hub's next frame is not read until they drain: the hub slows down, and a
batch's answers (one per Post, plus a Badge per receiver) never overflow anything.

Wire rules, the same as the hub's: before login only ``AppChallenge``, ``AppLogin`` and
``KeepAlive`` (anything else ``not_logged_in``); a failed login is answered and closed
4001, as is a connection not logged in within ``login.timeout``; a binary frame closes
4003; bad JSON or a bad field is ``bad_json``, and before login ``limits.max_bad_messages``
of them in a row close 4002 (after login they are answered only: a hub forwards its
clients' requests, and one client's bad requests must not cut every user's link);
``KeepAlive`` is answered in kind; a connection silent for ``limits.idle_timeout``
closes 4006; before login, a send queue overflowing ``limits.send_queue`` closes 4008.
Both deadlines are one watchdog timer per connection, never a timeout per frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from config import LimitsConfig, LoginConfig
from signaling.appwebsocket import closecodes
from signaling.appwebsocket.json_in import loads
from signaling.appwebsocket.login import Accounts, LoginServer
from signaling.appwebsocket.throttle import LoginThrottle
from signaling.appwebsocket.transport import Served
from tracing.logs import connection_task_name

from .errors import BadJson, BadState, MessagesServiceError, NotLoggedIn
from .handlers import Handlers, refuse_forwarded
from .hubs import HubConnections
from .requests import parse_post
from .writer import PostWriter, QueuedPost

__all__ = ["Connection", "Services", "Socket"]

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]

_ids = itertools.count(1)

_json_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
"""What ``json.dumps`` with these options writes, without building an encoder per frame
(a third of a ``PostResult``'s encoding)."""


def _encode(message: JsonObject) -> str:
    """A frame as compact JSON. ``PostResults`` holds integers alone (``writer``), which
    ``orjson`` writes exactly as ``json`` does, in a seventh of the time for a batch of
    hundreds (one beyond 64 bits, which it refuses, goes through ``json``); every other
    frame goes through ``json`` (a float, in an echoed ``src``, could be spelled
    otherwise)."""
    if message.get("mt") == "PostResults":
        with contextlib.suppress(TypeError):
            return orjson.dumps(message).decode()
    return _json_encode(message)


@dataclass(frozen=True, slots=True)
class Services:
    """What every connection shares, built once by the service."""

    login: LoginConfig
    limits: LimitsConfig
    accounts: Accounts
    throttle: LoginThrottle
    handlers: Handlers
    writer: PostWriter
    hubs: HubConnections


class Socket(Protocol):
    """What a connection needs of its WebSocket."""

    writable_now: bool
    """Frames may be written now; when it turns true again the socket calls ``resumed``."""

    def write_text(self, text: str) -> None: ...

    def close_now(self, code: int, reason: str = "") -> None:
        """Close after every frame written; the connection hears ``gone`` at once."""

    def pause_input(self) -> None: ...

    def resume_input(self) -> None: ...


class Connection:
    def __init__(self, socket: Socket, address: str, services: Services) -> None:
        self.id = next(_ids)
        self.name = f"svc{self.id}"
        self._socket = socket
        self._services = services
        self._limit = services.limits.send_queue
        self._login = LoginServer(
            services.accounts,
            services.throttle,
            address=address,
            challenge_ttl=services.login.challenge_ttl,
        )
        self.logged_in = False
        self.pbx_info: JsonObject | None = None
        """The hub's ``PbxInfo`` (PROTOCOL §3.7, §7.1), for logs and debugging."""
        self.batched_results = False
        """The hub said in its ``PbxInfo`` that it reads ``PostResults`` (docs 12.48)."""
        self._bad = 0
        self._closing = False
        self._gone = False
        self._out: deque[str] = deque()
        """Frames waiting for the socket to have room, oldest first."""
        self._inbox: deque[str] = deque()
        """Frames read while the task handles an earlier one, oldest first."""
        self.held = False
        """The socket reads nothing from the hub for now (see ``_input``)."""
        self._task: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._heard = self._loop.time()
        """Loop time of the last frame in (or of the end of the last one's handling)."""
        self._watchdog = self._loop.call_at(self._heard + services.login.timeout, self._watch)
        self._done = asyncio.Event()
        services.hubs.connected(self)

    def served(self) -> Served:
        """The callables the socket hands this connection's frames and events to."""
        return Served(
            name=self.name,
            text=self.receive,
            binary=self.receive_binary,
            gone=self.gone,
            resumed=self.resumed,
        )

    # -- outgoing --------------------------------------------------------------------------

    def send(self, message: JsonObject) -> None:
        """Write a frame, or keep it until the socket has room; dropped once closing."""
        if self._closing:
            return
        text = _encode(message)
        out = self._out
        if not out and self._socket.writable_now:
            self._socket.write_text(text)
            return
        if len(out) >= self._limit and not self.logged_in:
            log.warning("connection %d: send queue full, closing 4008", self.id)
            return self.close(closecodes.WS_4008_SLOW_CONSUMER)
        out.append(text)
        self._input()

    def resumed(self) -> None:
        """The socket has room again: write what waited, while it lasts."""
        out, socket = self._out, self._socket
        while out and socket.writable_now:
            socket.write_text(out.popleft())
        self._input()

    def close(self, code: int) -> None:
        """Close after the frames already queued; later frames are dropped."""
        if self._closing:
            return
        self._closing = True
        out, socket = self._out, self._socket
        if len(out) >= self._limit:
            out.clear()  # a peer this far behind will not read them in time
        while out:  # the transport buffers them past its mark; the close goes behind
            socket.write_text(out.popleft())
        socket.close_now(code)

    def gone(self, code: int) -> None:
        """The socket is closed (by either side, or lost): nothing more goes out."""
        self._closing = self._gone = True
        self._out.clear()
        self._inbox.clear()
        self._watchdog.cancel()
        self._services.hubs.gone(self)
        if self.logged_in:
            log.info("hub connection %d closed (%d)", self.id, code)
        self._settle()

    async def wait_closed(self) -> None:
        await self._done.wait()

    def _settle(self) -> None:
        """Closed, and no request still being handled: ``wait_closed`` returns."""
        if self._gone and self._task is None:
            self._done.set()

    def _input(self) -> None:
        """The socket reads on unless frames wait behind a request being handled, or
        ``limits.send_queue`` frames wait to go out: the peer slows down, memory stays
        bounded."""
        hold = bool(self._inbox) or len(self._out) >= self._limit
        if hold != self.held and not self._closing:
            self.held = hold
            if hold:
                self._socket.pause_input()
            else:
                self._socket.resume_input()

    # -- deadlines -------------------------------------------------------------------------

    def _watch(self) -> None:
        """The connection's one timer: the login deadline, then the idle cut-off."""
        if self._closing:
            return
        if not self.logged_in:
            return self.close(closecodes.WS_4001_LOGIN_FAILED)
        now = self._loop.time()
        if self._task is not None:  # a request is being handled: the peer is not idle
            self._heard = now
        due = self._heard + self._services.limits.idle_timeout
        if due <= now:
            return self.close(closecodes.WS_4006_IDLE)
        self._watchdog = self._loop.call_at(due, self._watch)

    # -- incoming --------------------------------------------------------------------------

    def receive(self, text: str) -> None:
        """A text frame: handled now, or behind the request being handled."""
        self._heard = self._loop.time()
        if self._closing:
            return
        if self._task is not None:
            self._inbox.append(text)
            return self._input()
        pending = self._frame(text)
        if pending is not None:
            name = connection_task_name(self.name)
            self._task = self._loop.create_task(self._work(pending), name=name)

    def receive_binary(self) -> None:
        """PROTOCOL §1.1: binary frames are refused."""
        if not self._closing:
            self.close(closecodes.WS_4003_BINARY_FRAME)

    async def _work(self, pending: Awaitable[None]) -> None:
        """Finish the frame that waits, then every frame that came in meanwhile."""
        try:
            next_one: Awaitable[None] | None = pending
            while next_one is not None:
                await next_one
                next_one = None
                inbox = self._inbox
                while next_one is None and inbox and not self._closing:
                    next_one = self._frame(inbox.popleft())
        finally:
            self._task = None
            self._heard = self._loop.time()
            self._input()
            self._settle()

    def _frame(self, text: str) -> Awaitable[None] | None:
        """Handle one frame as far as it can be now; what is left to wait for, if any."""
        try:
            body = loads(text, json.loads)  # orjson, or json where they differ
        except (ValueError, RecursionError):
            self._refuse(BadJson("not JSON"), None)
            return None
        if not isinstance(body, dict) or not isinstance(body.get("mt"), str):
            self._refuse(BadJson("expected an object with a string mt"), None)
            return None
        src, mt = body.get("src"), body["mt"]
        try:
            pending = self._dispatch(mt, body)
        except BadJson as error:
            self._refuse(error, src)
            return None
        except MessagesServiceError as error:
            self.send(error.to_wire(src))
            pending = None
        except Exception:
            self._internal_error(mt, src)
            pending = None
        self._bad = 0
        return None if pending is None else self._answered(pending, mt, src)

    async def _answered(self, pending: Awaitable[None], mt: str, src: object) -> None:
        """The waiting part of a frame, its errors answered as ``_frame`` answers them."""
        try:
            await pending
        except BadJson as error:
            self._refuse(error, src)
        except MessagesServiceError as error:
            self.send(error.to_wire(src))
        except Exception:
            self._internal_error(mt, src)

    def _internal_error(self, mt: str, src: object) -> None:
        log.exception("connection %d: internal error handling %.40r", self.id, mt)
        self.send(MessagesServiceError().to_wire(src))

    def _refuse(self, error: BadJson, src: object) -> None:
        """``bad_json``; too many in a row close the connection (PROTOCOL §1.4, §12.2)."""
        self.send(error.to_wire(src))
        if self.logged_in:
            log.debug("connection %d: bad_json answered: %s", self.id, error)
            return
        self._bad += 1
        if self._bad >= self._services.limits.max_bad_messages:
            self.close(closecodes.WS_4002_TOO_MANY_BAD_MESSAGES)

    def _dispatch(self, mt: str, body: JsonObject) -> Awaitable[None] | None:
        if mt == "KeepAlive":  # PROTOCOL §3.5: at any time
            self.send({"mt": "KeepAlive"})
            return None
        if not self.logged_in:
            self._before_login(mt, body)
            return None
        if mt in ("AppChallenge", "AppLogin"):
            raise BadState(f"{mt} not allowed after login")
        if mt == "PbxInfo":  # PROTOCOL §7.1: recorded, not answered
            self.pbx_info = body
            self.batched_results = body.get("batchedResults") is True
            log.info("hub connection %d: PbxInfo pbx=%.80r", self.id, body.get("pbx"))
            return None
        refuse_forwarded(mt, body)
        if mt == "Post":
            return self._post(body)
        return self._request(mt, body)

    async def _request(self, mt: str, body: JsonObject) -> None:
        reply = await self._services.handlers.handle(mt, body)
        for notification in reply.notifications:  # first: see ``Reply.notifications``
            self._services.hubs.broadcast(notification)
        for answer in reply.answers:
            self.send(answer)

    def _before_login(self, mt: str, body: JsonObject) -> None:
        """PROTOCOL §3.1: the login handshake, through the shared sans-I/O LoginServer."""
        now = time.monotonic()
        if mt == "AppChallenge":
            return self.send(self._login.challenge(now))
        if mt != "AppLogin":
            raise NotLoggedIn(f"{mt[:40]} not allowed before login")
        outcome = self._login.login(body, now)
        self.send(outcome.reply)
        if not outcome.ok:
            return self.close(closecodes.WS_4001_LOGIN_FAILED)
        self.logged_in = True
        self._services.hubs.logged_in(self)
        self._watchdog.cancel()  # from now on the idle cut-off
        self._watchdog = self._loop.call_at(
            self._heard + self._services.limits.idle_timeout, self._watch
        )
        log.info("hub connection %d logged in", self.id)
        return None

    def _post(self, body: JsonObject) -> Coroutine[Any, Any, None] | None:
        """Hand a Post to the writer: at once while it has room, else wait for room."""
        post = self._services.handlers.queue_side(parse_post(body, int(time.time() * 1000)))
        item = QueuedPost(post, body.get("src"), self.send, self.batched_results)
        writer = self._services.writer
        return None if writer.offer(item) else writer.submit(item)
