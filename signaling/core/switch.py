"""The hub's sans-I/O core: every connection's protocol state, in one object.

Theory of operation: the I/O layer calls ``open`` when a WebSocket is accepted,
``receive_all`` with the text frames of a read (``receive``: one), ``receive_binary``,
``closed`` when it ends, ``fire_timers`` when ``next_deadline`` has passed. Each returns
the actions (``Send``/``Close``...) to carry out, in order. Nothing here awaits or
touches a socket; time comes from the injected clock.

Per frame: rate limit (§4.11) -> decode (§1.4) -> login gate (§3.1) -> api dispatch.
``ProtocolError`` is answered with ``Error`` and the connection stays open; ten bad
frames in a row close it (4002); anything unexpected is answered ``internal`` and logged.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from config import Config
from signaling.appwebsocket import closecodes
from signaling.appwebsocket.digest import new_challenge
from signaling.appwebsocket.housekeeping import app_info
from signaling.directory import Directory, HubAccounts
from tracing import Tracer

from .actions import Action, Claimed, LoginChecked, LookedUp, PresenceShares, Recalled, StoredAck
from .causes import Q931
from .chat import ChatCalls
from .clock import Clock
from .codec import decode, parse_register, parse_signaling
from .devices import Devices, own_device
from .error_replies import ErrorReplies
from .errors import BadJson, BadState, ProtocolError, UnknownMt
from .groups import GroupBook
from .limits import TokenBucket
from .login_phase import BUILD, VERSION, Connection, LoginPhase, reply
from .messages import Inbound
from .nodes.directory import DeviceBook
from .nodes.frames import NodeFrame
from .nodes.seat import NodeSeat
from .nodes.seat_parts import SeatParts, outbox_and_seat_parts
from .pbx_messages import MessagesBridge
from .presence import Presence
from .registry import Registry
from .service_notes import ServiceNotes
from .status import SwitchStatus, held, snapshot
from .timers import TimerQueue
from .visitor_accounts import VisitorAccounts

__all__ = ["BUILD", "VERSION", "Connection", "Switch", "SwitchStatus"]

log = logging.getLogger(__name__)
_TOO_MANY_BAD = closecodes.WS_4002_TOO_MANY_BAD_MESSAGES

JsonObject = dict[str, Any]


def _never_congested(conn_id: int, pending: int) -> bool:
    return False


class Switch:
    def __init__(
        self,
        config: Config,
        clock: Clock,
        *,
        directory: Directory | None = None,
        tracer: Tracer | None = None,
        make_challenge: Callable[[], str] = new_challenge,
        node: str = "",
        book: DeviceBook | None = None,
        congested: Callable[[int, int], bool] = _never_congested,
    ) -> None:
        """``node``, ``book``: its name in a cluster and the cluster's shared record of
        registrations (SCALE.md); with no book it stands alone. ``congested``: would a
        connection's send queue overflow with this event's frames for it and one more?"""
        self.config, self.clock = config, clock
        self.directory = directory or Directory(config.tenants, config.login.default_domain)
        self.tracer = tracer or Tracer()
        """``signalling`` traces the core's decisions; the hub traces ``pbx`` with it."""
        self.registry = registry = Registry()
        slow = (congested, self._drop_slow)  # for a message relayed from another switch
        self._out, parts = outbox_and_seat_parts(node, book, self.directory, registry, config, slow)
        self.timers = TimerQueue()
        self.messages = self._messages_bridge()
        self.presence = self._presence(parts is not None)
        groups = GroupBook()
        self.chat = self._chat_calls(groups, parts, congested)
        self.visitors = self._visitor_accounts(parts is not None)
        self.logins = self._login_phase(make_challenge, parts is not None)
        self.connections: dict[int, Connection] = self.logins.connections
        self.throttle = self.logins.throttle
        """Failed logins (§3.6); its counts feed ``/metrics``."""
        self.devices = self._devices(parts)
        self.node = NodeSeat.of(parts, self.chat, self.devices, self._guarded, groups, config)
        """Its seat in a cluster, None when it stands alone."""
        self.notes = self._service_notes()
        self._bucket = TokenBucket(config.limits.rate, config.limits.burst)
        """The rate limit (§4.11); each connection keeps its own level of it."""
        self._errors = ErrorReplies(self._out)
        self.errors: Counter[str] = self._errors.counts  # by code, for /metrics

    def _login_phase(self, make_challenge: Callable[[], str], clustered: bool) -> LoginPhase:
        return LoginPhase(
            self.config,
            self.clock,
            timers=self.timers,
            outbox=self._out,
            accounts=HubAccounts(self.directory),
            make_challenge=make_challenge,
            close=self._close,
            browser_trace=self.tracer.browser,
            shared=(self.directory, self.visitors) if clustered else None,
        )

    def _messages_bridge(self) -> MessagesBridge:
        config, clock = self.config.messages, self.clock
        return MessagesBridge(outbox=self._out, timers=self.timers, clock=clock, config=config)

    def _presence(self, clustered: bool) -> Presence:
        return Presence(
            outbox=self._out,
            registry=self.registry,
            licensed=self.messages.licensed,
            ask_badge=lambda domain, sip: self.notes.ask_badge(domain, sip),
            timers=self.timers,
            clock=self.clock,
            recent_window=self.config.presence.recent_window,
            changed=lambda domain, sip: self.chat.support.agent_changed(domain, sip),
            went=lambda domain, sip, on: self.chat.support.visitor_presence(domain, sip, on),
            cluster_wait=self.config.cluster.answer_wait if clustered else None,
        )

    def _devices(self, parts: SeatParts | None) -> Devices:
        return Devices(
            registry=self.registry,
            presence=self.presence,
            chat=self.chat,
            connections=self.connections,
            outbox=self._out,
            timers=self.timers,
            clock=self.clock,
            resume_grace=self.config.signaling.resume_grace,
            close=self._close,
            node=parts,
        )

    def _service_notes(self) -> ServiceNotes:
        remote = self.node.remote.by_conn if self.node is not None else None
        return ServiceNotes(self.messages, self.presence, self.chat, self.connections, remote)

    def _visitor_accounts(self, clustered: bool) -> VisitorAccounts:
        return VisitorAccounts(
            directory=self.directory,
            registry=self.registry,
            support=self.chat.support,
            seen=self.presence.visitors,
            timers=self.timers,
            clock=self.clock,
            ttl=self.config.support.visitor_ttl,
            shared=self._out if clustered else None,
        )

    def _chat_calls(
        self, groups: GroupBook, node: SeatParts | None, congested: Callable[[int, int], bool]
    ) -> ChatCalls:
        config = self.config
        return ChatCalls(
            outbox=self._out,
            timers=self.timers,
            clock=self.clock,
            tenants=self.directory,
            registry=self.registry if node is None else node.devices,
            signaling=config.signaling,
            limits=config.limits,
            congested=congested,
            drop_slow=self._drop_slow,
            presence=self.presence,
            groups=groups,
            licensed=self.messages.licensed,
            support=config.support,
            id_ttl=config.messages.idempotency_ttl,
            tracer=self.tracer,
            seat=node,
        )

    # -- entry points from the I/O layer --------------------------------------------------

    def open(self, address: str) -> tuple[int, list[Action]]:
        """A WebSocket was accepted; returns its connection id."""
        now = self.clock.monotonic()
        conn = self.logins.open(address, now)
        self._bucket.fill(conn, now)
        return conn.id, self._out.drain()

    def receive(self, conn_id: int, text: str) -> list[Action]:
        """One text frame from a client."""
        return self.receive_all(conn_id, (text,))

    def receive_all(self, conn_id: int, texts: Iterable[str]) -> list[Action]:
        """One read's text frames, in order, drained once (congestion counts them all)."""
        for text in texts:
            conn = self.connections.get(conn_id)
            if conn is None or conn.closing:
                break
            if wait_ms := self._bucket.take(conn, self.clock.monotonic()):
                self._rate_limited(conn, wait_ms)
                continue
            conn.limited = 0
            inbound: Inbound | None = None
            try:
                inbound = decode(text)
                self._dispatch(conn, inbound)
                conn.bad = 0
            except BadJson as exc:
                conn.bad += 1
                self._errors.error(conn.id, exc, inbound)
                if conn.bad >= self.config.limits.max_bad_messages:
                    self._close(conn, _TOO_MANY_BAD, "too many bad messages")
            except ProtocolError as exc:
                conn.bad = 0
                self._errors.error(conn.id, exc, inbound)
            except Exception:
                log.exception("internal error handling a message on connection %d", conn.id)
                self._errors.error(conn.id, ProtocolError("internal error"), inbound, "internal")
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
        self.notes.synced()
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
                self.notes.notification(notification)
        except Exception:
            log.exception("internal error handling a message from the messages service")
        return self._out.drain()

    def stored(self, acks: list[StoredAck]) -> list[Action]:
        """These Posts are on disk: their senders learn ``stored`` (PROTOCOL §7.5)."""
        self.notes.stored(acks)
        return self._out.drain()

    def recovered(self, posts: Iterable[JsonObject]) -> None:
        """Posts a previous run journaled: their ids are known from the start (§4.6)."""
        self.chat.remember_stored(posts)

    def duplicate(self, post: JsonObject, original: JsonObject) -> list[Action]:
        """The service stored nothing for ``post``: its id was an earlier Post's (§4.6)."""
        self.chat.duplicate(post, original)
        return self._out.drain()

    def set_browser_trace(self, on: bool) -> list[Action]:
        """The ``browser`` flag changed: every logged-in connection hears it."""
        self.logins.set_browser_trace(on)
        return self._out.drain()

    # -- entry points from the other switches of a cluster (SCALE.md) -------------------------

    def from_nodes(self, node: str, frames: list[NodeFrame]) -> list[Action]:
        """Frames switch ``node`` forwarded to this one, in the order it sent them."""
        if self.node is not None:
            self.node.from_nodes(node, frames)
        return self._out.drain()

    def looked_up(self, answer: LookedUp) -> list[Action]:
        """Where the users of a waiting setup are registered: the setup runs now."""
        if self.node is not None:
            self.node.looked_up(answer)
        return self._out.drain()

    def recalled(self, answer: Recalled) -> list[Action]:
        """A resume token unknown here, looked up in the cluster (docs 12.43): the Register
        that waited for it goes on, then what its connection sent meanwhile, in order."""
        waiting = self.node.recalled(answer.request) if self.node is not None else None
        conn = self.connections.get(waiting.conn) if waiting is not None else None
        if waiting is not None and conn is None:  # closed meanwhile
            self.devices.unrecalled(waiting, answer.snapshot)
        elif waiting is not None and conn is not None:
            run = functools.partial(self.devices.recalled, conn, waiting, answer.snapshot)
            self._guarded(conn.id, waiting.inbound, run)
            for inbound in waiting.later:
                self._guarded(conn.id, inbound, functools.partial(self._pbx_signal, conn, inbound))
        return self._out.drain()

    def claimed(self, answer: Claimed) -> list[Action]:
        """The answer to a ``Claim``: an agent's chat goes on, or the next one is tried."""
        if self.node is not None:
            self.node.claimed(answer)
        return self._out.drain()

    def node_up(self, node: str) -> list[Action]:
        """Switch ``node`` is live (the bus says so at every heartbeat)."""
        if self.node is not None:
            self.node.node_up(node)
        return self._out.drain()

    def node_down(self, node: str, *, calls_only: bool = False) -> list[Action]:
        """Switch ``node`` is gone for good (its lease ran out); ``calls_only``: it fenced
        itself and is back, its users' presence stands (docs 12.39)."""
        if self.node is not None:
            self.node.node_down(node)
            if not calls_only:
                self.presence.node_down(node)
        return self._out.drain()

    def login_checked(self, answer: LoginChecked) -> list[Action]:
        """The cluster's throttle answered about a login (docs 12.44): it is answered now."""
        self.logins.checked(answer)
        return self._out.drain()

    def presence_shares(self, answer: PresenceShares) -> list[Action]:
        """A followed user's presence on the other switches (``PresenceWatch``)."""
        self.presence.shares_read(answer)
        return self._out.drain()

    def visitor_made(self, domain: str, sip: str, context: object) -> list[Action]:
        """A visitor account was made (by the visitors' route, §9.1): its chats carry
        ``context``, and the account ends once it has gone ``support.visitor_ttl`` without
        a registration (the core ends it)."""
        self.visitors.made(domain, sip, context)
        return self._out.drain()

    # -- what the core holds, for /metrics and /healthz -----------------------------------------

    def status(self) -> SwitchStatus:
        """A snapshot of the counters and sizes ``/metrics`` shows."""
        return snapshot(self)

    def next_deadline(self) -> float | None:
        return self.timers.next_deadline()

    def held(self) -> dict[str, int]:
        """How many of each thing the core keeps now, for ``/metrics``: all 0 once every
        connection has closed and the resume grace is over (docs/benchmarks.md, idle)."""
        return held(self)

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
        if api == "PbxSignal" and conn.principal is not None:  # nearly every frame: first
            return self._pbx_signal(conn, inbound)
        if mt == "KeepAlive" and api is None:  # echoes src, as every answer (§1.2)
            return self._reply(conn, inbound, {"mt": "KeepAlive"})
        if mt == "CheckBuild" and api is None:  # before login too: docs 12.24
            return self.logins.check_build(conn, inbound)
        if conn.principal is None:
            return self.logins.step(conn, inbound)
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

    def _pbx_signal(self, conn: Connection, inbound: Inbound) -> None:
        node = self.node
        if conn.registration is None and node is not None and node.holds(conn.id, inbound):
            return None  # its Register waits for the cluster's answer (docs 12.43)
        mt = inbound.mt
        if mt == "Signaling":
            registration = conn.registration
            if registration is None:
                raise BadState("Signaling not allowed before Register")
            msg = parse_signaling(inbound)
            if self.node is not None and self.node.signaling(conn.id, registration, inbound, msg):
                return None  # the cluster's: a call homed elsewhere, or a setup's lookup
            return self.chat.on_signaling(registration, msg)
        if mt == "Register":
            return self._register(conn, inbound)
        if mt == "Unregister":
            self.devices.unregister(conn, Q931.NORMAL_CLEARING)
            return self._reply(conn, inbound, {"mt": "UnregisterResult"})
        raise UnknownMt(f"unknown PbxSignal mt {mt[:40]!r}")

    def _register(self, conn: Connection, inbound: Inbound) -> None:
        """Register this connection as a device of its user, or of the App object itself
        (PROTOCOL §4.1 revised, docs 12.24)."""
        request = parse_register(inbound)
        principal = conn.principal
        assert principal is not None
        user = own_device(self.directory, principal, "PbxSignal")
        if user is None:
            return self._reply(conn, inbound, {"mt": "RegisterResult", "err": "forbidden"})
        self.devices.register(conn, inbound, request, user)

    def _queue(self, conn: Connection, inbound: Inbound) -> None:
        """The Queue API of live support (§9.3, §9.4): users only, in their own tenant."""
        principal = conn.principal
        assert principal is not None
        domain, sip = principal.domain, principal.sip
        reply = self.chat.support.request(conn.id, domain, sip, conn.registration, inbound)
        if reply is not None:  # else it went to the chat's home, which answers (12.46)
            self._reply(conn, inbound, reply)

    def _pbx_messages(self, conn: Connection, inbound: Inbound) -> None:
        """PbxMessages (§6): sessions of licensed users, forwarded to the service."""
        principal = conn.principal
        assert principal is not None
        user = own_device(self.directory, principal, "PbxMessages")
        self.messages.request(conn.id, principal.domain, user, inbound)

    # -- limits, timers, teardown ------------------------------------------------------------

    def _rate_limited(self, conn: Connection, wait_ms: int) -> None:
        conn.limited += 1
        if conn.limited >= self.config.limits.rate_close_after:
            return self._close(conn, closecodes.WS_4004_RATE_LIMIT, "rate limit exceeded")
        self._errors.rate_limited(conn.id, wait_ms)

    def _drop_slow(self, conn_id: int) -> None:
        conn = self.connections.get(conn_id)
        if conn is not None:
            self._close(conn, closecodes.WS_4008_SLOW_CONSUMER, "slow consumer")

    def _close(self, conn: Connection, code: int, reason: str) -> None:
        """Close after what is queued; the device stops being reachable right now."""
        if conn.closing:
            return
        conn.closing = True
        self._out.close(conn.id, code, reason)
        self._teardown(conn, Q931.TEMPORARY_FAILURE, resumable=code not in closecodes.ABUSE)

    def _teardown(self, conn: Connection, cause: Q931, *, resumable: bool = True) -> None:
        conn.closing = True
        self.logins.ended(conn)
        self.devices.drop(conn, cause, resumable=resumable)

    def _guarded(self, conn_id: int, inbound: Inbound, run: Callable[[], None]) -> None:
        """Run what waited (a setup for its lookup), answering errors as ``receive`` does."""
        conn = self.connections.get(conn_id)
        if conn is None:
            return
        try:
            run()
        except ProtocolError as exc:
            self._errors.error(conn.id, exc, inbound)
        except Exception:
            log.exception("internal error handling a setup on connection %d", conn.id)
            self._errors.error(conn.id, ProtocolError("internal error"), inbound, "internal")

    # -- replies ------------------------------------------------------------------------------

    def _reply(self, conn: Connection, inbound: Inbound, body: JsonObject) -> None:
        """Answer a request: ``api`` and ``src`` are echoed (PROTOCOL §1.2)."""
        reply(self._out, conn.id, inbound, body)
