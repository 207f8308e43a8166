"""PbxMessages sessions: the hub's side of the messages service (PROTOCOL §6, §12.10).

Theory of operation: a licensed user opens a ``Session``; every other request on it is
forwarded to the service with ``user``, ``domain`` and ``session`` written by the hub
(whatever the client put there is overwritten, §6.2) and ``src`` replaced by a token of
the hub's. Answers carrying that token go back to the client with ``api`` and its own
``src``. A request not answered within ``messages.request_timeout``, or pending when the
link drops, is answered ``unavailable``; sessions end with the link (§6.3).

The hub's own queries (``ReadBadge``, ``SyncGroups``) use the same tokens with a callback
instead of a client. Messages without a known token are notifications, returned to the
switch to act on.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from config import MessagesConfig, UserConfig

from .clock import Clock
from .errors import BadState, ProtocolError, UnknownMt
from .messages import Inbound
from .outbox import Outbox
from .timers import Timer, TimerQueue

__all__ = ["FORWARDED", "MessagesBridge"]

JsonObject = dict[str, Any]

FORWARDED = frozenset(
    {
        "ReadChats",
        "ReadChat",
        "SetRead",
        "Delete",
        "DeleteChat",
        "Search",
        "WriteGroup",
        "WriteMember",
        "ReadGroups",
        "CreateFileBuffer",
        "Attachments",
    }
)
"""What a client may ask the service; anything else (``Post`` above all) is the hub's."""

_HUB_WRITTEN = ("user", "domain", "session", "src", "api")


class Unlicensed(ProtocolError):
    code = "unlicensed"


class Unavailable(ProtocolError):
    code = "unavailable"


@dataclass(slots=True)
class _Pending:
    """A forwarded request: whom to answer, or which hub query to complete."""

    conn: int | None
    src: object
    timer: Timer | None
    done: Callable[[JsonObject], None] | None = None


class MessagesBridge:
    def __init__(
        self,
        *,
        outbox: Outbox,
        timers: TimerQueue,
        clock: Clock,
        config: MessagesConfig,
    ) -> None:
        self._out = outbox
        self._timers = timers
        self._clock = clock
        self._config = config
        self.up = False
        """The link to the service is logged in (the I/O layer says so)."""
        self._sessions: dict[int, str] = {}
        self._owners: dict[int, tuple[str, str]] = {}
        """Each session's (domain, user): whom a ``ChatDeleted`` reaches (docs 12.32)."""
        self._pending: dict[str, _Pending] = {}
        self._tokens = itertools.count(1)

    def licensed(self, user: UserConfig | None) -> bool:
        """The user's chats are stored: they hold the licence and the service is on."""
        return self._config.enabled and _holds_licence(user)

    def _check_licence(self, user: UserConfig | None) -> None:
        """Refuse a user without the licence; with the service switched off, a licensed
        user is told it is unavailable rather than that they lack a licence."""
        if not _holds_licence(user):
            raise Unlicensed("no messages licence")
        if not self._config.enabled:
            raise Unavailable("messages service unavailable")

    # -- client requests -------------------------------------------------------------------

    def request(self, conn: int, domain: str, user: UserConfig | None, inbound: Inbound) -> None:
        """One PbxMessages message from a client (PROTOCOL §6.1, §6.2)."""
        if inbound.mt == "Session":
            return self._open(conn, domain, user, inbound)
        if inbound.mt not in FORWARDED:
            raise UnknownMt(f"unknown PbxMessages mt {inbound.mt[:40]!r}")
        session = self._sessions.get(conn)
        if session is None or user is None:
            self._check_licence(user)
            raise BadState(f"{inbound.mt[:40]} not allowed without a Session")
        message = {key: value for key, value in inbound.body.items() if key not in _HUB_WRITTEN}
        message.update(user=user.sip, domain=domain, session=session)
        self._forward(message, _Pending(conn, inbound.src, None))

    def _open(self, conn: int, domain: str, user: UserConfig | None, inbound: Inbound) -> None:
        self._check_licence(user)
        if not self.up:
            raise Unavailable("messages service unavailable")
        session = self._sessions.get(conn) or f"s{conn}-{next(self._tokens)}"
        self._sessions[conn] = session
        if user is not None:
            self._owners[conn] = (domain, user.sip)
        self._answer(conn, inbound.src, {"mt": "SessionResult", "session": session})

    def connection_closed(self, conn: int) -> None:
        """Answers for a connection that is gone are dropped when they arrive."""
        self._sessions.pop(conn, None)
        self._owners.pop(conn, None)

    def tell(self, domain: str, user: str, event: JsonObject) -> None:
        """A service event for one user (``ChatDeleted``, docs 12.32): to each of the
        user's connections holding a session, without the service's addressing."""
        message = {key: value for key, value in event.items() if key not in ("domain", "user")}
        for conn, owner in self._owners.items():
            if owner == (domain, user) and conn in self._sessions:
                self._answer(conn, None, message)

    def held(self) -> dict[str, int]:
        """Sessions and unanswered requests kept now (``Switch.held``)."""
        return {"message_sessions": len(self._sessions), "service_requests": len(self._pending)}

    # -- the hub's own queries -----------------------------------------------------------

    def query(self, message: JsonObject, done: Callable[[JsonObject], None]) -> None:
        """Ask the service something for the hub; ``done`` gets each answer (Ind and
        Result alike). Nothing is sent while the link is down."""
        if self.up:
            self._forward(dict(message), _Pending(None, None, None, done))

    # -- the link --------------------------------------------------------------------------

    def service_up(self) -> None:
        self.up = True

    def service_down(self) -> None:
        """Pending requests are answered ``unavailable``; every session ends (§6.3)."""
        self.up = False
        pending, self._pending = self._pending, {}
        for item in pending.values():
            if item.timer is not None:
                item.timer.cancel()
            if item.conn is not None:
                self._unavailable(item.conn, item.src)
        sessions, self._sessions = self._sessions, {}
        self._owners.clear()
        for conn in sessions:
            if not any(item.conn == conn for item in pending.values()):
                self._unavailable(conn, None)

    def from_service(self, message: JsonObject) -> JsonObject | None:
        """An answer goes to whoever asked; a notification is returned to the caller."""
        token = message.get("src")
        item = self._pending.get(token) if isinstance(token, str) else None
        if item is None:
            return message if token is None else None
        mt = message.get("mt")
        final = not (isinstance(mt, str) and mt.endswith("Ind"))
        if final:
            del self._pending[token]  # type: ignore[arg-type]
            if item.timer is not None:
                item.timer.cancel()
        if item.done is not None:
            item.done(message)
        elif item.conn is not None and item.conn in self._sessions:
            reply = {key: value for key, value in message.items() if key != "src"}
            self._answer(item.conn, item.src, reply)
        return None

    # -- helpers ---------------------------------------------------------------------------

    def _forward(self, message: JsonObject, item: _Pending) -> None:
        if not self.up:
            if item.conn is not None:
                self._unavailable(item.conn, item.src)
            return
        token = f"q{next(self._tokens)}"
        message["src"] = token
        deadline = self._clock.monotonic() + self._config.request_timeout
        item.timer = self._timers.arm(deadline, lambda: self._expire(token))
        self._pending[token] = item
        self._out.to_service(message)

    def _expire(self, token: str) -> None:
        item = self._pending.pop(token, None)
        if item is not None and item.conn is not None:
            self._unavailable(item.conn, item.src)

    def _unavailable(self, conn: int, src: object) -> None:
        error = {"mt": "Error", "code": "unavailable", "text": "messages service unavailable"}
        self._answer(conn, src, error)

    def _answer(self, conn: int, src: object, reply: JsonObject) -> None:
        message: JsonObject = {"api": "PbxMessages"}
        message.update(reply)
        if src is not None:
            message["src"] = src
        else:
            message.pop("src", None)
        self._out.send(conn, message)


def _holds_licence(user: UserConfig | None) -> bool:
    return user is not None and "messages" in user.licences
