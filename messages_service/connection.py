"""One AppWebsocket connection to the service: login, then requests (PROTOCOL §1, §3).

Theory of operation. ``serve()`` reads frames one at a time and handles each before the
next, so a hub's requests are answered in the order it sent them (a ``SetRead`` is seen
by the ``ReadChat`` behind it); only Posts leave that order, handed to the writer. A
request's notifications are queued for every hub before its answers are queued for the
asker, so that a hub has taken a change before its client hears it is done (PROTOCOL
§7.6, docs/protocol.md 12.23). Frames out go through a queue drained by a sender task,
in the order queued, so the writer and the notifications never wait for a socket; the
close code is queued behind the frames that precede it (``AppLoginResult`` before 4001).
Once ``limits.send_queue`` frames wait, a logged-in hub's next frame is not read until
they drain: the hub slows down, and a batch's answers (one per Post, plus a Badge per
receiver) never overflow anything.

Wire rules, the same as the hub's: before login only ``AppChallenge``, ``AppLogin`` and
``KeepAlive`` (anything else ``not_logged_in``); a failed login is answered and closed
4001, as is a connection not logged in within ``login.timeout``; a binary frame closes
4003; bad JSON or a bad field is ``bad_json``, and before login ``limits.max_bad_messages``
of them in a row close 4002 (after login they are answered only: a hub forwards its
clients' requests, and one client's bad requests must not cut every user's link);
``KeepAlive`` is answered in kind; a connection silent for ``limits.idle_timeout``
closes 4006; before login, a send queue overflowing ``limits.send_queue`` closes 4008.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

from config import LimitsConfig, LoginConfig
from signaling.appwebsocket import closecodes
from signaling.appwebsocket.login import Accounts, LoginServer
from signaling.appwebsocket.throttle import LoginThrottle
from tracing.logs import connection_task_name, name_connection

from .errors import BadJson, BadState, MessagesServiceError, NotLoggedIn
from .handlers import Handlers, refuse_forwarded
from .hubs import HubConnections
from .requests import parse_post
from .writer import PostWriter, QueuedPost

__all__ = ["Connection", "Services"]

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]

FLUSH_TIMEOUT = 5.0
"""How long queued frames (and the close) may take to go out once a connection ends."""

_ids = itertools.count(1)


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


class Connection:
    def __init__(self, websocket: WebSocket, services: Services) -> None:
        self.id = next(_ids)
        self._ws = websocket
        self._services = services
        address = websocket.client.host if websocket.client else "unknown"
        self._login = LoginServer(
            services.accounts,
            services.throttle,
            address=address,
            challenge_ttl=services.login.challenge_ttl,
        )
        self.logged_in = False
        self.pbx_info: JsonObject | None = None
        """The hub's ``PbxInfo`` (PROTOCOL §3.7, §7.1), for logs and debugging."""
        self._bad = 0
        self._closing = False
        self._out: asyncio.Queue[str | int] = asyncio.Queue()
        self._room = asyncio.Event()
        """Set while fewer than ``limits.send_queue`` frames wait to go out."""
        self._room.set()
        self._done = asyncio.Event()

    # -- outgoing --------------------------------------------------------------------------

    def send(self, message: JsonObject) -> None:
        """Queue a frame; dropped once the connection is closing."""
        if self._closing:
            return
        waiting = self._out.qsize()
        if waiting >= self._services.limits.send_queue:
            if not self.logged_in:
                log.warning("connection %d: send queue full, closing 4008", self.id)
                return self.close(closecodes.WS_4008_SLOW_CONSUMER)
            self._room.clear()  # the receive loop waits for the hub to read
        self._out.put_nowait(json.dumps(message, separators=(",", ":"), ensure_ascii=False))

    def close(self, code: int) -> None:
        """Close after the frames already queued; later frames are dropped."""
        if self._closing:
            return
        self._closing = True
        if self._out.qsize() >= self._services.limits.send_queue:
            while not self._out.empty():  # a peer this far behind will not read them in time
                self._out.get_nowait()
        self._out.put_nowait(code)
        self._room.set()

    async def wait_closed(self) -> None:
        await self._done.wait()

    async def _send_loop(self) -> None:
        try:
            while True:
                item = await self._out.get()
                if self._out.qsize() < self._services.limits.send_queue:
                    self._room.set()
                if isinstance(item, int):
                    await self._ws.close(item)
                    return
                await self._ws.send_text(item)
        except (OSError, WebSocketDisconnect, WebSocketDisconnected, RuntimeError) as exc:
            log.debug("connection %d: send failed: %r", self.id, exc)
            self._closing = True

    # -- incoming --------------------------------------------------------------------------

    async def serve(self) -> None:
        """Run the connection until either side closes it."""
        try:
            await self._ws.accept()
        except (OSError, WebSocketDisconnect, WebSocketDisconnected):
            return  # gone before it started
        name = f"svc{self.id}"
        name_connection(name)  # this task's log lines name the connection
        hubs = self._services.hubs
        hubs.connected(self)
        sender = asyncio.create_task(self._send_loop(), name=connection_task_name(name))
        disconnected = False
        try:
            disconnected = await self._receive_loop()
        except (OSError, WebSocketDisconnect, WebSocketDisconnected):
            disconnected = True
        finally:
            hubs.gone(self)
            if disconnected:
                self._closing = True
                sender.cancel()
            else:
                self.close(closecodes.WS_1000_NORMAL)
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(sender, FLUSH_TIMEOUT)
            self._done.set()
            if self.logged_in:
                log.info("hub connection %d closed", self.id)

    async def _receive_loop(self) -> bool:
        """Read frames until we close (False) or the peer disconnects (True)."""
        loop = asyncio.get_running_loop()
        login_deadline = loop.time() + self._services.login.timeout
        while not self._closing:
            deadline = (
                loop.time() + self._services.limits.idle_timeout
                if self.logged_in
                else login_deadline
            )
            try:
                async with asyncio.timeout_at(deadline):
                    await self._room.wait()
                    message = await self._ws.receive()
            except TimeoutError:
                if self.logged_in:
                    self.close(closecodes.WS_4006_IDLE)
                else:
                    self.close(closecodes.WS_4001_LOGIN_FAILED)
                return False
            if message["type"] == "websocket.disconnect":
                return True
            text = message.get("text")
            if text is None:  # PROTOCOL §1.1: binary frames are refused
                self.close(closecodes.WS_4003_BINARY_FRAME)
                return False
            await self._frame(text)
        return False

    async def _frame(self, text: str) -> None:
        try:
            body = _loads(text)
        except (ValueError, RecursionError):
            return self._refuse(BadJson("not JSON"), None)
        if not isinstance(body, dict) or not isinstance(body.get("mt"), str):
            return self._refuse(BadJson("expected an object with a string mt"), None)
        src = body.get("src")
        try:
            await self._dispatch(body["mt"], body)
        except BadJson as error:
            return self._refuse(error, src)
        except MessagesServiceError as error:
            self.send(error.to_wire(src))
        except Exception:
            log.exception("connection %d: internal error handling %.40r", self.id, body["mt"])
            self.send(MessagesServiceError().to_wire(src))
        self._bad = 0

    def _refuse(self, error: BadJson, src: object) -> None:
        """``bad_json``; too many in a row close the connection (PROTOCOL §1.4, §12.2)."""
        self.send(error.to_wire(src))
        if self.logged_in:
            log.debug("connection %d: bad_json answered: %s", self.id, error)
            return
        self._bad += 1
        if self._bad >= self._services.limits.max_bad_messages:
            self.close(closecodes.WS_4002_TOO_MANY_BAD_MESSAGES)

    async def _dispatch(self, mt: str, body: JsonObject) -> None:
        if mt == "KeepAlive":  # PROTOCOL §3.5: at any time
            return self.send({"mt": "KeepAlive"})
        if not self.logged_in:
            return self._before_login(mt, body)
        if mt in ("AppChallenge", "AppLogin"):
            raise BadState(f"{mt} not allowed after login")
        if mt == "PbxInfo":  # PROTOCOL §7.1: recorded, not answered
            self.pbx_info = body
            log.info("hub connection %d: PbxInfo pbx=%.80r", self.id, body.get("pbx"))
            return None
        refuse_forwarded(mt, body)
        if mt == "Post":
            return await self._post(body)
        reply = await self._services.handlers.handle(mt, body)
        for notification in reply.notifications:  # first: see ``Reply.notifications``
            self._services.hubs.broadcast(notification)
        for answer in reply.answers:
            self.send(answer)
        return None

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
        log.info("hub connection %d logged in", self.id)
        return None

    async def _post(self, body: JsonObject) -> None:
        post = self._services.handlers.queue_side(parse_post(body, int(time.time() * 1000)))
        await self._services.writer.submit(QueuedPost(post, body.get("src"), self.send))


_LONG_NUMBER = re.compile(r"\d{19}")
"""orjson reads an integer beyond 64 bits as a float; ``json`` keeps it an int."""


def _loads(text: str) -> Any:
    """A frame's JSON: ``orjson`` (a Post reads in a third of the time) wherever it reads
    exactly what ``json`` reads; ``json`` for long numbers and whatever orjson refuses
    (NaN, 1e400, lone surrogates, nesting too deep), so those fare just as before."""
    if not _LONG_NUMBER.search(text):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)
