"""The hub's sans-I/O core: every connection's protocol state, in one object.

Theory of operation: the I/O layer calls ``open`` when a WebSocket is accepted,
``receive`` for each text frame, ``receive_binary`` for a binary one, ``closed`` when it
ends, and ``fire_timers`` when ``next_deadline`` has passed. Each call returns the
actions (``Send``/``Close``) to carry out, in order. Nothing here awaits or touches a
socket; time comes from the injected clock.

Per frame: rate limit (§4.11) -> decode (§1.4) -> login gate (§3.1) -> api dispatch.
``ProtocolError`` is answered with ``Error`` and the connection stays open; ten bad
frames in a row close it (4002); anything unexpected is answered ``internal`` and logged.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from config import Config, UserConfig
from signaling.appwebsocket import closecodes
from signaling.appwebsocket.digest import new_challenge
from signaling.appwebsocket.housekeeping import app_info, build_number, check_build, pbx_info
from signaling.appwebsocket.login import LoginServer, Principal
from signaling.appwebsocket.throttle import LoginThrottle, ThrottlePolicy
from signaling.directory import Directory, HubAccounts

from .actions import Action, Claimed, LookedUp, StoredAck
from .causes import Q931, hub_cause
from .chat import ChatCalls
from .clock import Clock
from .codec import decode, parse_register, parse_signaling
from .errors import (
    BadJson,
    BadState,
    Forbidden,
    NotLoggedIn,
    ProtocolError,
    RateLimited,
    UnknownMt,
)
from .expiry import Expiry
from .groups import GroupBook
from .limits import TokenBucket
from .messages import Inbound, Signaling
from .nodes.directory import DeviceBook
from .nodes.frames import NodeFrame
from .nodes.seat import NodeSeat
from .outbox import Outbox
from .pbx_messages import MessagesBridge
from .presence import Presence
from .registry import Registration, Registry, new_token
from .timers import Timer, TimerQueue

__all__ = ["BUILD", "VERSION", "Connection", "Switch"]

log = logging.getLogger(__name__)

VERSION = "0.1.0"
BUILD = build_number(VERSION)
"""The build ``CheckBuild`` compares with and ``PbxInfo.build`` names (docs 12.24)."""
JsonObject = dict[str, Any]


_ABUSE = frozenset(
    {
        closecodes.WS_4002_TOO_MANY_BAD_MESSAGES,
        closecodes.WS_4003_BINARY_FRAME,
        closecodes.WS_4004_RATE_LIMIT,
    }
)
"""Closes the hub makes for abuse: the registration ends at once, no resume (§4.9)."""


def _never_congested(conn_id: int, pending: int) -> bool:
    return False


class Connection:
    """The core's view of one WebSocket.

    Kept small, since there is one per open connection: its deadlines live in the
    switch's ``Expiry`` queues (no timer of its own), and the login state goes once the
    login is over."""

    __slots__ = (
        "bad",
        "closing",
        "counted",
        "id",
        "limited",
        "login",
        "principal",
        "registration",
        "tokens",
    )

    def __init__(self, conn_id: int, login: LoginServer):
        self.id = conn_id
        self.login: LoginServer | None = login
        """Until the login ends; then None (nothing of it is needed any more)."""
        self.tokens = 0.0
        self.counted = 0.0
        """Its level of the rate limit's token bucket (``limits.Level``)."""
        self.principal: Principal | None = None
        self.registration: Registration | None = None
        self.bad = 0
        self.limited = 0
        self.closing = False


class Switch:
    def __init__(
        self,
        config: Config,
        clock: Clock,
        *,
        directory: Directory | None = None,
        make_challenge: Callable[[], str] = new_challenge,
        node: str = "",
        book: DeviceBook | None = None,
    ) -> None:
        """``node`` and ``book``: this switch's name in a cluster and the cluster's shared
        record of registrations; without a book the switch stands alone."""
        self.config = config
        self.clock = clock
        self.directory = directory or Directory(config.tenants, config.login.default_domain)
        self._accounts = HubAccounts(self.directory)
        self.throttle = LoginThrottle(ThrottlePolicy.from_config(config.login))
        """Failed logins (§3.6); its counts feed ``/metrics``."""
        self._throttle_sweep: Timer | None = None
        self._make_challenge = make_challenge
        self._out = Outbox()
        self.congested: Callable[[int, int], bool] = _never_congested
        """Set by the I/O layer: would this connection's send queue overflow with that
        many more frames (the ones this event already produced for it) plus one?"""
        self.timers = TimerQueue()
        self._login_due: Expiry[int] = Expiry(
            self.timers, clock, config.login.timeout, self._login_timeout
        )
        """Connections not logged in yet, by id: closed 4001 when ``login.timeout`` is up."""
        self._graces: Expiry[Registration] = Expiry(
            self.timers, clock, config.signaling.resume_grace, self._grace_over
        )
        """Detached registrations (§4.9), ended when the resume grace is up."""
        self.registry = Registry()
        groups = GroupBook()
        self.node = self._seat(node, book, groups)
        """Its seat in a cluster (SCALE.md), None when it stands alone."""
        devices = self.registry if self.node is None else self.node.devices
        self.messages = MessagesBridge(
            outbox=self._out, timers=self.timers, clock=clock, config=config.messages
        )
        self.presence = Presence(
            outbox=self._out,
            registry=self.registry,
            licensed=self.messages.licensed,
            ask_badge=self._ask_badge,
        )
        self.chat = ChatCalls(
            outbox=self._out,
            timers=self.timers,
            clock=clock,
            tenants=self.directory,
            registry=devices,
            signaling=config.signaling,
            limits=config.limits,
            congested=lambda conn_id, pending: self.congested(conn_id, pending),
            drop_slow=self._drop_slow,
            presence=self.presence,
            groups=groups,
            licensed=self.messages.licensed,
            support=config.support,
            id_ttl=config.messages.idempotency_ttl,
        )
        self.presence.changed = self.chat.support.agent_changed
        if self.node is not None:
            self.node.core = self.chat
            self.node.lost = self._remote_lost
            self.node.end = self._end
        self.connections: dict[int, Connection] = {}
        self._by_token: dict[str, Registration] = {}
        """Live registrations by resume token (§4.9), detached ones included."""
        self._ids = itertools.count(1)
        self._bucket = TokenBucket(config.limits.rate, config.limits.burst)
        """The rate limit (§4.11); each connection keeps its own level of it."""
        self.browser_trace = False
        """The ``browser`` trace flag, told to clients at login and when it changes."""
        self.errors: Counter[str] = Counter()
        """``Error`` replies sent, by code, for ``/metrics``."""

    def _seat(self, node: str, book: DeviceBook | None, groups: GroupBook) -> NodeSeat | None:
        if book is None:
            return None
        return NodeSeat(
            node,
            book,
            outbox=self._out,
            registry=self.registry,
            tenants=self.directory,
            groups=groups,
            max_message=self.config.limits.max_message,
        )

    # -- entry points from the I/O layer --------------------------------------------------

    def open(self, address: str) -> tuple[int, list[Action]]:
        """A WebSocket was accepted; returns its connection id."""
        now = self.clock.monotonic()
        login = LoginServer(
            self._accounts,
            self.throttle,
            address=address,
            challenge_ttl=self.config.login.challenge_ttl,
            make_challenge=self._make_challenge,
        )
        conn = Connection(next(self._ids), login)
        self._bucket.fill(conn, now)
        self._login_due.touch(conn.id, now)
        self.connections[conn.id] = conn
        return conn.id, self._out.drain()

    def receive(self, conn_id: int, text: str) -> list[Action]:
        """One text frame from a client."""
        conn = self.connections.get(conn_id)
        if conn is None or conn.closing:
            return []
        now = self.clock.monotonic()
        wait_ms = self._bucket.take(conn, now)
        if wait_ms:
            self._rate_limited(conn, wait_ms)
            return self._out.drain()
        conn.limited = 0
        inbound: Inbound | None = None
        try:
            inbound = decode(text)
            self._dispatch(conn, inbound)
            conn.bad = 0
        except BadJson as exc:
            conn.bad += 1
            self._error(conn, exc, inbound)
            if conn.bad >= self.config.limits.max_bad_messages:
                self._close(conn, closecodes.WS_4002_TOO_MANY_BAD_MESSAGES, "too many bad messages")
        except ProtocolError as exc:
            conn.bad = 0
            self._error(conn, exc, inbound)
        except Exception:
            log.exception("internal error handling a message on connection %d", conn.id)
            self._error(conn, ProtocolError("internal error"), inbound, code="internal")
        return self._out.drain()

    def receive_binary(self, conn_id: int) -> list[Action]:
        """Binary frames are refused (PROTOCOL §1.1)."""
        conn = self.connections.get(conn_id)
        if conn is not None and not conn.closing:
            self._close(conn, closecodes.WS_4003_BINARY_FRAME, "binary frames are not accepted")
        return self._out.drain()

    def closed(self, conn_id: int, clean: bool = True) -> list[Action]:
        """The WebSocket is gone; its registration and calls end with it."""
        conn = self.connections.pop(conn_id, None)
        self.messages.connection_closed(conn_id)
        self.chat.support.connection_closed(conn_id)
        if conn is not None and not conn.closing:
            self._teardown(conn, Q931.NORMAL_CLEARING if clean else Q931.TEMPORARY_FAILURE)
        return self._out.drain()

    def kick(self, conn_id: int, code: int, reason: str) -> list[Action]:
        """The I/O layer gives up on a connection (e.g. its send queue overflowed)."""
        conn = self.connections.get(conn_id)
        if conn is not None:
            self._close(conn, code, reason)
        return self._out.drain()

    # -- entry points from the link to the messages service ---------------------------------

    def service_up(self) -> list[Action]:
        """The hub's link to the messages service is logged in."""
        self.messages.service_up()
        self.messages.query({"mt": "SyncGroups"}, self._group_answer)
        for domain, sip in self.presence.watched_badges():
            self._ask_badge(domain, sip)
        return self._out.drain()

    def service_down(self) -> list[Action]:
        self.messages.service_down()
        return self._out.drain()

    def from_service(self, message: JsonObject) -> list[Action]:
        """One message from the messages service: an answer or a notification, applied
        in full before this returns, so that whatever the next message forwards to a
        client was sent with this one's change already in force (12.23)."""
        try:
            notification = self.messages.from_service(message)
            if notification is not None:
                self._notification(notification)
        except Exception:
            log.exception("internal error handling a message from the messages service")
        return self._out.drain()

    def stored(self, acks: list[StoredAck]) -> list[Action]:
        """These Posts are on disk: their senders learn ``stored`` (PROTOCOL §7.5)."""
        for ack in acks:
            conn = self.connections.get(ack.conn)
            registration = conn.registration if conn is not None else None
            leg = registration.legs.get(ack.number) if registration is not None else None
            if leg is not None and leg.call.call_id == ack.call_id:
                self.chat.stored(leg, ack)
            else:  # the writer's connection changed since (a resume, §4.9)
                self.chat.stored_late(ack)
            self.chat.settled(ack)
        return self._out.drain()

    def recovered(self, posts: Iterable[JsonObject]) -> None:
        """Posts a previous run journaled: their ids are known from the start (§4.6)."""
        self.chat.remember_stored(posts)

    def duplicate(self, post: JsonObject, original: JsonObject) -> list[Action]:
        """The service stored nothing for ``post``: its id was an earlier Post's (§4.6)."""
        self.chat.duplicate(post, original)
        return self._out.drain()

    # -- entry points from the other switches of a cluster (SCALE.md) ---------------------------

    def from_nodes(self, node: str, frames: list[NodeFrame]) -> list[Action]:
        """Frames switch ``node`` forwarded to this one, in the order it sent them."""
        if self.node is not None:
            self.node.from_nodes(node, frames)
        return self._out.drain()

    def looked_up(self, answer: LookedUp) -> list[Action]:
        """Where the users of a waiting setup are registered: the setup runs now."""
        parked = self.node.looked_up(answer) if self.node is not None else None
        conn = self.connections.get(parked.conn) if parked is not None else None
        if parked is not None and conn is not None and conn.registration is parked.reg:
            self._guarded(conn, parked.inbound, parked.msg)
        return self._out.drain()

    def claimed(self, answer: Claimed) -> list[Action]:
        """The answer to a ``Claim`` (nothing waits for one yet: see docs 12.28)."""
        return self._out.drain()

    def node_down(self, node: str) -> list[Action]:
        """Switch ``node`` is gone for good (its lease ran out)."""
        if self.node is not None:
            self.node.node_down(node)
        return self._out.drain()

    def set_browser_trace(self, on: bool) -> list[Action]:
        """The ``browser`` flag changed: every logged-in connection hears it."""
        if on != self.browser_trace:
            self.browser_trace = on
            for conn in self.connections.values():
                if conn.principal is not None and not conn.closing:
                    self._out.send(conn.id, {"mt": "TraceFlags", "browser": on})
        return self._out.drain()

    def next_deadline(self) -> float | None:
        return self.timers.next_deadline()

    def held(self) -> dict[str, int]:
        """How many of each thing the core keeps now. Once every connection has closed
        and the resume grace is over, all of them are 0: nothing is kept for a closed
        connection (docs/benchmarks.md, the idle bench). ``/metrics`` shows them."""
        self.timers.next_deadline()  # drops cancelled entries that are due first
        return {
            "connections": len(self.connections),
            "registrations": len(self.registry),
            "resume_tokens": len(self._by_token),
            "login_deadlines": len(self._login_due),
            "resume_graces": len(self._graces),
            "timers": self.timers.held,
            "throttle_keys": self.throttle.held(),
            "resends_waiting": self.chat.waiting_resends,
            "calls": len(self.chat.calls),
            "presence": self.presence.held(),
            **(self.node.held() if self.node is not None else {}),
            **self.messages.held(),
            **self.chat.support.held(),
        }

    def fire_timers(self) -> list[Action]:
        for timer in self.timers.pop_due(self.clock.monotonic()):
            try:
                timer.callback()
            except Exception:
                log.exception("internal error in a timer")
        return self._out.drain()

    # -- dispatch --------------------------------------------------------------------------

    def _dispatch(self, conn: Connection, inbound: Inbound) -> None:
        mt, api = inbound.mt, inbound.api
        if mt == "KeepAlive" and api is None:  # echoes src, as every answer (§1.2)
            return self._reply(conn, inbound, {"mt": "KeepAlive"})
        if mt == "CheckBuild" and api is None:  # before login too: docs 12.24
            return self._check_build(conn, inbound)
        if conn.principal is None:
            return self._before_login(conn, inbound)
        if api == "PbxSignal":
            return self._pbx_signal(conn, inbound)
        if api == "PbxMessages":
            return self._pbx_messages(conn, inbound)
        if api == "Queue":
            return self._queue(conn, inbound)
        if api is None and mt in ("AppChallenge", "AppLogin"):
            raise BadState(f"{mt} not allowed in state logged_in")
        if api is None and mt == "AppInfo":
            return self._reply(conn, inbound, app_info())
        if api is None:
            raise UnknownMt(f"unknown mt {mt[:40]!r}")
        raise UnknownMt(f"unknown api {api[:40]!r}")

    def _before_login(self, conn: Connection, inbound: Inbound) -> None:
        now = self.clock.monotonic()
        login = conn.login
        assert login is not None  # there until the login ends, and then principal is set
        if inbound.api is None and inbound.mt == "AppChallenge":
            return self._reply(conn, inbound, login.challenge(now))
        if inbound.api is None and inbound.mt == "AppLogin":
            outcome = login.login(inbound.body, now)
            self._sweep_throttle_later()
            self._out.send(conn.id, outcome.reply)
            if outcome.principal is None:
                return self._close(conn, closecodes.WS_4001_LOGIN_FAILED, "login failed")
            return self._logged_in(conn, outcome.principal)
        raise NotLoggedIn(f"{inbound.mt[:40]} before login")

    def _logged_in(self, conn: Connection, principal: Principal) -> None:
        conn.principal = principal
        conn.login = None
        self._login_due.discard(conn.id)
        if self.browser_trace:  # §12.14 (extension): the web client logs to its console
            self._out.send(conn.id, {"mt": "TraceFlags", "browser": True})
        if principal.app is not None and principal.apis:
            server = self.config.server
            info = pbx_info(
                domain=principal.domain,
                pbx=server.node,
                pbx_dns=server.dns,
                apis=principal.apis,
                version=VERSION,
                build=BUILD,
            )
            self._out.send(conn.id, info)

    def _check_build(self, conn: Connection, inbound: Inbound) -> None:
        url = inbound.body.get("url")
        if not isinstance(url, str):
            raise BadJson("CheckBuild needs a string url")
        try:
            reply = check_build(url, BUILD)
        except ValueError as exc:  # e.g. an unclosed "[" in the host: no URL to rewrite
            raise BadJson("CheckBuild url is no URL") from exc
        self._reply(conn, inbound, reply)

    def _own_device(self, principal: Principal, api: str) -> UserConfig | None:
        """Who the session is on PbxSignal or PbxMessages: the user it logged in as or acts
        for, or the App object itself when it acts as itself with ``api`` enabled (docs
        12.24; the App object's current config decides, not the one of its login)."""
        tenant = self.directory.tenant(principal.domain)
        if tenant is None:
            return None
        if principal.sip:
            return tenant.user(principal.sip)
        app = tenant.apps.get(principal.app) if principal.app else None
        if app is None or api not in app.apis:
            return None
        return tenant.app_users.get(app.name)

    def _pbx_signal(self, conn: Connection, inbound: Inbound) -> None:
        mt = inbound.mt
        if mt == "Signaling":
            registration = conn.registration
            if registration is None:
                raise BadState("Signaling not allowed before Register")
            msg = parse_signaling(inbound)
            proxied = registration.proxied
            if proxied is not None and msg.call in proxied:  # a call homed elsewhere
                assert self.node is not None
                return self.node.proxies.on_signaling(proxied[msg.call], msg, inbound.body["sig"])
            if self.node is not None and self.node.park(conn.id, registration, inbound, msg):
                return None  # runs when the lookup is answered (``looked_up``)
            return self.chat.on_signaling(registration, msg)
        if mt == "Register":
            return self._register(conn, inbound)
        if mt == "Unregister":
            self._unregister(conn, Q931.NORMAL_CLEARING)
            return self._reply(conn, inbound, {"mt": "UnregisterResult"})
        raise UnknownMt(f"unknown PbxSignal mt {mt[:40]!r}")

    def _guarded(self, conn: Connection, inbound: Inbound, msg: Signaling) -> None:
        """Run a setup that waited for its lookup, answering errors as ``receive`` does."""
        registration = conn.registration
        assert registration is not None
        try:
            self.chat.on_signaling(registration, msg)
        except ProtocolError as exc:
            self._error(conn, exc, inbound)
        except Exception:
            log.exception("internal error handling a setup on connection %d", conn.id)
            self._error(conn, ProtocolError("internal error"), inbound, code="internal")

    def _register(self, conn: Connection, inbound: Inbound) -> None:
        """Register this connection as a device of its user, or of the App object itself
        (PROTOCOL §4.1 revised, docs 12.24)."""
        request = parse_register(inbound)
        principal = conn.principal
        assert principal is not None
        user = self._own_device(principal, "PbxSignal")
        if user is None:
            return self._reply(conn, inbound, {"mt": "RegisterResult", "err": "forbidden"})
        registration = conn.registration
        reply: JsonObject = {"mt": "RegisterResult"}
        if registration is None and request.resume is not None:
            registration = self._take_over(conn, request.resume, principal.domain, user.sip)
            reply["resumed"] = registration is not None
            if registration is not None:
                registration.user = user
                if request.hw:
                    registration.hw = request.hw
                registration.flags = request.flags
                registration.src = request.src
                reply["resume"] = registration.token
                self._reply(conn, inbound, reply)
                self.chat.resume(registration, dict(request.seqs))
                if self.node is not None:
                    self.node.resumed(registration, request.seqs)
                return self.chat.support.agent_changed(principal.domain, user.sip)
        if registration is None:
            registration = Registration(
                conn.id,
                principal.domain,
                user,
                request.hw or None,
                request.flags,
                request.src,
            )
            conn.registration = registration
            self._by_token[registration.token] = registration
            before = len(self.registry.of(principal.domain, user.sip))
            self.registry.add(registration)
            if self.node is not None:
                self.node.registered(registration)
            reply["resume"] = registration.token
            self._reply(conn, inbound, reply)  # before any offer the new device gets
            return self.presence.registrations_changed(principal.domain, user.sip, before)
        # a repeated Register updates the device in place, keeping its calls
        if request.hw:
            registration.hw = request.hw
        registration.flags = request.flags
        registration.src = request.src
        reply["resume"] = registration.token
        self._reply(conn, inbound, reply)

    def _take_over(
        self, conn: Connection, token: str, domain: str, sip: str
    ) -> Registration | None:
        """The registration ``token`` names, now this connection's (§4.9); None when the
        token is unknown, expired or another user's. A connection still holding it is
        closed 4005. The token changes, so each one works once."""
        registration = self._by_token.get(token)
        if registration is None or registration.key != (domain, sip):
            return None
        old = self.connections.get(registration.conn) if registration.attached else None
        if old is not None:  # the old link still looks alive: it is dropped as if it had
            old.registration = None  # gone (offers it rang with end, typing stops), then
            registration.conn = 0  # closed 4005
            self.chat.detach(registration)
            self._close(old, closecodes.WS_4005_REPLACED, "replaced by a newer session")
        self._graces.discard(registration)
        del self._by_token[token]
        registration.token = new_token()
        self._by_token[registration.token] = registration
        registration.conn = conn.id
        conn.registration = registration
        return registration

    def _queue(self, conn: Connection, inbound: Inbound) -> None:
        """The Queue API of live support (§9.3, §9.4): users only, in their own tenant."""
        principal = conn.principal
        assert principal is not None
        if not principal.sip or self.directory.user(principal.domain, principal.sip) is None:
            raise Forbidden("the Queue API is for users (agents and visitors)")
        reply = self.chat.support.request(
            conn.id,
            principal.domain,
            principal.sip,
            conn.registration,
            inbound.mt,
            inbound.body,
            inbound.src,
        )
        self._reply(conn, inbound, reply)

    def _pbx_messages(self, conn: Connection, inbound: Inbound) -> None:
        """PbxMessages (§6): sessions of licensed users, forwarded to the service."""
        principal = conn.principal
        assert principal is not None
        user = self._own_device(principal, "PbxMessages")
        self.messages.request(conn.id, principal.domain, user, inbound)

    def _group_answer(self, message: JsonObject) -> None:
        if message.get("mt") == "GroupInd":
            group = self.chat.groups.update(message)
            if group is not None:
                self.chat.group_changed(group)

    def _notification(self, message: JsonObject) -> None:
        """What the service tells the hub unasked (PROTOCOL §12.10)."""
        mt, domain, user = message.get("mt"), message.get("domain"), message.get("user")
        if mt == "GroupInd":
            return self._group_answer(message)
        if not isinstance(domain, str) or not isinstance(user, str):
            return
        if mt == "Badge" and type(message.get("count")) is int:
            self.presence.badge(domain, user, message["count"])
        elif mt == "Seen" and type(message.get("seq")) is int:
            call_id = message.get("callId")
            if isinstance(call_id, str):
                self.chat.seen(call_id, user, message["seq"])

    def _ask_badge(self, domain: str, sip: str) -> None:
        def done(answer: JsonObject) -> None:
            if answer.get("mt") == "ReadBadgeResult" and type(answer.get("count")) is int:
                self.presence.badge(domain, sip, answer["count"])

        self.messages.query({"mt": "ReadBadge", "domain": domain, "user": sip}, done)

    # -- limits, timers, teardown ------------------------------------------------------------

    def _rate_limited(self, conn: Connection, wait_ms: int) -> None:
        conn.limited += 1
        if conn.limited >= self.config.limits.rate_close_after:
            return self._close(conn, closecodes.WS_4004_RATE_LIMIT, "rate limit exceeded")
        error = RateLimited(wait_ms)
        self.errors[error.code] += 1
        self._out.send(
            conn.id,
            {"mt": "Error", "code": error.code, "text": error.text, "retry_after_ms": wait_ms},
        )

    def _drop_slow(self, conn_id: int) -> None:
        conn = self.connections.get(conn_id)
        if conn is not None:
            self._close(conn, closecodes.WS_4008_SLOW_CONSUMER, "slow consumer")

    def _sweep_throttle_later(self) -> None:
        """Arm one timer for the throttle's oldest entry, so that no entry outlives its
        window even when no login comes to sweep it."""
        if self._throttle_sweep is None:
            expiry = self.throttle.next_expiry()
            if expiry is not None:
                self._throttle_sweep = self.timers.arm(expiry, self._sweep_throttle)

    def _sweep_throttle(self) -> None:
        self._throttle_sweep = None
        self.throttle.sweep(self.clock.monotonic())
        self._sweep_throttle_later()

    def _login_timeout(self, conn_id: int) -> None:
        conn = self.connections.get(conn_id)
        if conn is not None and conn.principal is None and not conn.closing:
            self._close(conn, closecodes.WS_4001_LOGIN_FAILED, "login timeout")

    def _close(self, conn: Connection, code: int, reason: str) -> None:
        """Close after what is queued; the device stops being reachable right now."""
        if conn.closing:
            return
        conn.closing = True
        self._out.close(conn.id, code, reason)
        self._teardown(conn, Q931.TEMPORARY_FAILURE, resumable=code not in _ABUSE)

    def _teardown(self, conn: Connection, cause: Q931, *, resumable: bool = True) -> None:
        conn.closing = True
        conn.login = None
        self._login_due.discard(conn.id)
        grace = self.config.signaling.resume_grace
        registration = conn.registration
        if registration is None or not resumable or grace <= 0:
            return self._unregister(conn, cause)
        conn.registration = None
        registration.conn = 0
        registration.drop_cause = int(cause)
        self.chat.detach(registration)
        if self.node is not None:
            self.node.detached(registration)
        self._graces.touch(registration, self.clock.monotonic())

    def _remote_lost(self, registration: Registration) -> None:
        """A device on a lost switch: its calls wait out the resume grace, as a local
        device's whose link was lost, then end with cause 41."""
        if self.config.signaling.resume_grace <= 0:
            return self._end(registration, Q931.TEMPORARY_FAILURE)
        self._graces.touch(registration, self.clock.monotonic())

    def _grace_over(self, registration: Registration) -> None:
        """Nobody resumed the registration in time: it ends, and its calls with it."""
        if not registration.attached:
            self._end(registration, Q931(registration.drop_cause))

    def _unregister(self, conn: Connection, cause: Q931) -> None:
        registration, conn.registration = conn.registration, None
        if registration is not None:
            self._end(registration, cause)

    def _end(self, registration: Registration, cause: Q931) -> None:
        self._graces.discard(registration)
        self._by_token.pop(registration.token, None)
        before = len(self.registry.of(registration.domain, registration.user.sip))
        self.registry.remove(registration)
        self.chat.registration_ended(registration, hub_cause(cause))
        if self.node is not None:
            self.node.ended(registration, cause)
        self.presence.registrations_changed(registration.domain, registration.user.sip, before)

    # -- replies ------------------------------------------------------------------------------

    def _reply(self, conn: Connection, inbound: Inbound, reply: JsonObject) -> None:
        """Answer a request: ``api`` and ``src`` are echoed (PROTOCOL §1.2)."""
        message: JsonObject = {}
        if inbound.api is not None:
            message["api"] = inbound.api
        message.update(reply)
        if inbound.src is not None:
            message["src"] = inbound.src
        self._out.send(conn.id, message)

    def _error(
        self,
        conn: Connection,
        error: ProtocolError,
        inbound: Inbound | None,
        code: str | None = None,
    ) -> None:
        reply: JsonObject = {"mt": "Error", "code": code or error.code, "text": error.text}
        self.errors[reply["code"]] += 1
        if inbound is None:
            return self._out.send(conn.id, reply)
        if inbound.mt == "Signaling":
            call = inbound.body.get("call")
            if type(call) is int:
                reply["call"] = call
        self._reply(conn, inbound, reply)
