"""Connections registered as devices (PROTOCOL §4.1, §4.9): ``Register``, resuming a
registration with its token, the resume grace of a dropped one, and its end.

A registration outlives its connection by ``signaling.resume_grace``: ``drop`` detaches
it (its calls wait, §4.9) and ``register`` with the token attaches it to a new
connection. Each token works once. When the grace is up, or the client unregisters,
``end`` removes the device and its calls end with it. Presence is told of every change
that can make the user online or offline: a clean close is one (docs 12.37), a lost
link is not.

In a cluster a token may be another switch's (docs 12.43): the Register waits for the
registration's snapshot (``recalled``), and the registration moves here, its calls
going on; the switch it left lets it go (``moved_away``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from config import UserConfig
from signaling.appwebsocket import closecodes
from signaling.appwebsocket.login import Principal
from signaling.directory import Directory

from .causes import Q931, hub_cause
from .chat import ChatCalls
from .clock import Clock
from .expiry import Expiry
from .login_phase import Connection, reply
from .messages import Inbound, Register
from .nodes.frames import Snapshot
from .nodes.moves import Recalling
from .nodes.seat_parts import SeatParts
from .outbox import Outbox
from .presence import Presence, present
from .registry import Registration, Registry, new_token
from .timers import TimerQueue

__all__ = ["Devices", "own_device"]

JsonObject = dict[str, Any]


class Devices:
    def __init__(
        self,
        *,
        registry: Registry,
        presence: Presence,
        chat: ChatCalls,
        connections: dict[int, Connection],
        outbox: Outbox,
        timers: TimerQueue,
        clock: Clock,
        resume_grace: float,
        close: Callable[[Connection, int, str], None],
        node: SeatParts | None = None,
    ) -> None:
        self._registry = registry
        self._presence = presence
        self._chat = chat
        self._connections = connections
        self._out = outbox
        self._clock = clock
        self._resume_grace = resume_grace
        self._close = close
        self._node = node
        """The parts of the switch's seat in a cluster: it hears of every device that comes
        and goes."""
        self._graces: Expiry[Registration] = Expiry(timers, clock, resume_grace, self._grace_over)
        """Detached registrations (§4.9), ended when the resume grace is up."""
        self._by_token: dict[str, Registration] = {}
        """Live registrations by resume token (§4.9), detached ones included."""

    def register(
        self, conn: Connection, inbound: Inbound, request: Register, user: UserConfig
    ) -> None:
        """Register ``conn`` as a device of ``user``: a new device, a resumed one (§4.9),
        or a repeated Register that updates the device in place, keeping its calls."""
        registration = conn.registration
        if registration is None and request.resume is not None:
            assert conn.principal is not None  # past the login phase
            was_here = self._presence.here(conn.principal.domain, user.sip)
            registration = self._take_over(conn, request.resume, user.sip)
            if registration is not None:
                registration.user = user
                return self._resumed(conn, inbound, request, registration, was_here)
            if self._node is not None and request.resume not in self._by_token:
                waiting = Recalling(conn.id, inbound, request, user)  # perhaps another's
                return self._node.recall(waiting, conn.principal.domain, request.resume)
        if registration is None:
            return self._new(conn, inbound, request, user)
        _update(registration, request)
        reply(self._out, conn.id, inbound, {"mt": "RegisterResult", "resume": registration.token})

    def drop(self, conn: Connection, cause: Q931, *, resumable: bool) -> None:
        """The connection is gone: its registration waits out the resume grace, unless
        it may not be resumed (then it ends now)."""
        registration = conn.registration
        if registration is None or not resumable or self._resume_grace <= 0:
            return self.unregister(conn, cause)
        was_here = self._presence.here(*registration.key)
        conn.registration = None
        registration.conn = 0
        registration.drop_cause = int(cause)
        self._chat.detach(registration)
        if self._node is not None:
            self._node.detached(registration)
        self._graces.touch(registration, self._clock.monotonic())
        if not present(registration):  # a clean close: offline now, the calls wait
            self._presence.registrations_changed(*registration.key, was_here)

    def remote_lost(self, registration: Registration) -> None:
        """A device on a lost switch (its stand-in here): its calls wait out the resume
        grace, as a local device's whose link was lost, then end with cause 41."""
        if self._resume_grace <= 0:
            return self.end(registration, Q931.TEMPORARY_FAILURE)
        self._graces.touch(registration, self._clock.monotonic())

    def unregister(self, conn: Connection, cause: Q931) -> None:
        registration, conn.registration = conn.registration, None
        if registration is not None:
            self.end(registration, cause)

    def held(self) -> dict[str, int]:
        return {"resume_tokens": len(self._by_token), "resume_graces": len(self._graces)}

    def _resumed(
        self,
        conn: Connection,
        inbound: Inbound,
        request: Register,
        registration: Registration,
        was_here: bool,
    ) -> None:
        """The registration came back within its grace: its calls are offered again, and
        the user is online again if its close had made it offline."""
        _update(registration, request)
        answer = {"mt": "RegisterResult", "resumed": True, "resume": registration.token}
        reply(self._out, conn.id, inbound, answer)
        self._chat.resume(registration, dict(request.seqs))
        if self._node is not None and request.resume is not None:
            self._node.resumed(registration, request.seqs, request.resume)
        self._presence.registrations_changed(*registration.key, was_here)

    def _new(self, conn: Connection, inbound: Inbound, request: Register, user: UserConfig) -> None:
        """A new registration; ``resumed`` is false when a resume token did not work."""
        assert conn.principal is not None  # past the login phase
        domain = conn.principal.domain
        registration = Registration(
            conn.id, domain, user, request.hw or None, request.flags, request.src
        )
        conn.registration = registration
        self._by_token[registration.token] = registration
        was_here = self._presence.here(domain, user.sip)
        self._registry.add(registration)
        if self._node is not None:
            self._node.registered(registration)
        answer: JsonObject = {"mt": "RegisterResult"}
        if request.resume is not None:
            answer["resumed"] = False
        answer["resume"] = registration.token
        reply(self._out, conn.id, inbound, answer)  # before any offer the new device gets
        self._presence.registrations_changed(domain, user.sip, was_here)

    def _take_over(self, conn: Connection, token: str, sip: str) -> Registration | None:
        """The registration ``token`` names, now this connection's (§4.9); None when the
        token is unknown, expired or another user's. A connection still holding it is
        closed 4005. The token changes, so each one works once."""
        assert conn.principal is not None  # past the login phase
        registration = self._by_token.get(token)
        if registration is None or registration.key != (conn.principal.domain, sip):
            return None
        old = self._connections.get(registration.conn) if registration.attached else None
        if old is not None:  # the old link still looks alive: it is dropped as if it had
            old.registration = None  # gone (offers it rang with end, typing stops), then
            registration.conn = 0  # closed 4005
            self._chat.detach(registration)
            self._close(old, closecodes.WS_4005_REPLACED, "replaced by a newer session")
        self._graces.discard(registration)
        del self._by_token[token]
        registration.token = new_token()
        self._by_token[registration.token] = registration
        registration.conn = conn.id
        conn.registration = registration
        return registration

    # -- resume on another switch (docs 12.43) -------------------------------------------------

    def recalled(self, conn: Connection, waiting: Recalling, snapshot: Snapshot | None) -> None:
        """The cluster's answer about a resume token this switch did not know: the
        registration moves here from its switch, or (no such token, expired, another
        user's) a new one is made, ``resumed:false``."""
        principal, request, user, node = conn.principal, waiting.request, waiting.user, self._node
        assert principal is not None and node is not None  # logged in, in a cluster
        if conn.closing or conn.registration is not None:
            return self.unrecalled(waiting, snapshot)
        if snapshot is None or not _theirs(snapshot, principal.domain, user.sip, node.name):
            return self._new(conn, waiting.inbound, request, user)
        was_here = self._presence.here(principal.domain, user.sip)
        hw = request.hw or snapshot.hw
        registration = Registration(conn.id, principal.domain, user, hw, request.flags, request.src)
        conn.registration = registration
        self._by_token[registration.token] = registration
        self._registry.add(registration)
        node.moved_in(registration, snapshot, request.seqs)
        answer = {"mt": "RegisterResult", "resumed": True, "resume": registration.token}
        reply(self._out, conn.id, waiting.inbound, answer)
        device = node.remote.take(snapshot.node, snapshot.ref)
        if device is not None:  # calls homed here held it: they are this one's now
            self.moved_here(device, registration, request.seqs)
        self._presence.registrations_changed(principal.domain, user.sip, was_here)

    def unrecalled(self, waiting: Recalling, snapshot: Snapshot | None) -> None:
        """The connection whose Register waited for ``snapshot`` closed meanwhile: the
        token stays good, for the client's next try on any switch."""
        if self._node is not None:
            self._node.give_back(waiting, snapshot)

    def moved_here(
        self, device: Registration, registration: Registration, seqs: tuple[tuple[str, int], ...]
    ) -> None:
        """``device`` stood in for a device on another switch that resumed here as
        ``registration``: the calls that held it are offered to it again."""
        self._graces.discard(device)  # its switch was lost: its grace ran here
        if device.attached:  # nobody said it was away yet: it is now
            self._chat.unreached(list(device.legs.values()))
            device.conn = 0
            self._chat.detach(device)
        self._chat.adopt(registration, device, dict(seqs))

    def moved_away(
        self, registration: Registration, to: str, ref: int, seqs: tuple[tuple[str, int], ...]
    ) -> None:
        """The client resumed this registration on switch ``to`` (its ``ref`` there): it
        is no longer this switch's, and its calls do not end. A connection still holding
        it is closed 4005; the calls homed here are offered to it again there."""
        old = self._connections.get(registration.conn) if registration.attached else None
        if old is not None:  # a half-open link, as in ``_take_over``
            old.registration = None
            registration.conn = 0
            self._chat.detach(registration)
            self._close(old, closecodes.WS_4005_REPLACED, "replaced by a newer session")
        domain, sip = registration.key
        was_here = self._presence.here(domain, sip)
        self._graces.discard(registration)
        self._by_token.pop(registration.token, None)
        self._registry.remove(registration)
        assert self._node is not None  # only a switch in a cluster is told
        self._node.moved_away(registration, to, ref, seqs)
        if registration.legs:  # its stand-in now: each call is offered there again
            self._chat.resume(registration, dict(seqs))
        self._presence.registrations_changed(domain, sip, was_here)

    def remote_back(self, registration: Registration) -> None:
        """A stand-in whose switch was lost reaches its device again (it resumed on
        another switch): its grace here is over."""
        self._graces.discard(registration)

    def _grace_over(self, registration: Registration) -> None:
        """Nobody resumed the registration in time: it ends, and its calls with it."""
        if not registration.attached:
            self.end(registration, Q931(registration.drop_cause))

    def end(self, registration: Registration, cause: Q931) -> None:
        """The registration ends (unregistered, its grace over, its switch gone), and its
        calls with it."""
        self._graces.discard(registration)
        self._by_token.pop(registration.token, None)
        domain, sip = registration.domain, registration.user.sip
        was_here = self._presence.here(domain, sip)
        self._registry.remove(registration)
        self._chat.registration_ended(registration, hub_cause(cause))
        if self._node is not None:
            self._node.ended(registration, cause)
        self._presence.registrations_changed(domain, sip, was_here)


def own_device(directory: Directory, principal: Principal, api: str) -> UserConfig | None:
    """Who the session is on PbxSignal or PbxMessages: the user it logged in as or acts
    for, or the App object itself when it acts as itself with ``api`` enabled (docs
    12.24; the App object's current config decides, not the one of its login)."""
    tenant = directory.tenant(principal.domain)
    if tenant is None:
        return None
    if principal.sip:
        return tenant.user(principal.sip)
    app = tenant.apps.get(principal.app) if principal.app else None
    if app is None or api not in app.apis:
        return None
    return tenant.app_users.get(app.name)


def _theirs(snapshot: Snapshot, domain: str, sip: str, here: str) -> bool:
    """Whether a recalled snapshot is the user's, and of another switch than ``here``."""
    return (snapshot.domain, snapshot.sip) == (domain, sip) and snapshot.node != here


def _update(registration: Registration, request: Register) -> None:
    """What a repeated or resuming Register changes of a device."""
    if request.hw:
        registration.hw = request.hw
    registration.flags = request.flags
    registration.src = request.src
