"""Call leg states and every allowed transition, in one table (PROTOCOL §5).

Theory of operation: a chat call has one *leg* per registration taking part. The caller's
leg moves ``setup_sent -> proceeding -> alerting -> connected``; each device offered the
call has a callee leg ``offered -> alerting -> connected``. A leg is removed (released) on
``rel``. Two tables hold the transitions: ``CLIENT`` for what a client may send on its leg,
``HUB`` for what the hub tells a leg (including its end, ``rel``, in any state). Every
change of ``Leg.state`` is an answer of one of these tables (``chat/legs.py`` and
``presence.py`` apply them); ``describe()`` prints both. Anything not in a table is
refused with ``bad_state`` naming the event and the state, and the leg is left as it was.

The other message types of innovaphone's Signal page (docs/protocol.md 12.25) are rows of
the same table: ``info``, ``user_info`` and ``channels`` pass between connected legs only
(the hub completes dialling at ``setup`` and never sends ``setup_ack``, so there is no
overlap dialling to carry, and user information is defined for a connected call);
``progress`` is the called side's news while the call rings; ``disc`` ends a leg like
``rel`` but the other side hears ``disc`` before its ``rel``. Types the table has no row
for at all (``accept``, ``setup_ack``, ``call_proc``, ``media_info`` from a client) are
``bad_state`` in every state.
"""

from __future__ import annotations

from enum import Enum

from .errors import BadState

__all__ = [
    "CLIENT",
    "HUB",
    "Event",
    "LegState",
    "Role",
    "client_event",
    "describe",
    "hub_event",
    "released",
]


class _Member(Enum):
    """An enum hashed by identity: every message looks its leg's (role, state, event) up
    in a table, and ``Enum``'s own hash is a Python call per member, three per lookup.
    Members are singletons compared by identity, so identity is also the right hash."""

    __hash__ = object.__hash__


class Role(_Member):
    CALLER = "caller"
    CALLEE = "callee"


class LegState(_Member):
    IDLE = "idle"
    SETUP_SENT = "setup_sent"
    PROCEEDING = "proceeding"
    OFFERED = "offered"
    ALERTING = "alerting"
    CONNECTED = "connected"
    RELEASED = "released"


class Event(_Member):
    SETUP = "setup"
    CALL_PROC = "call_proc"
    ALERT = "alert"
    CONN = "conn"
    FACILITY = "facility"
    REL = "rel"
    DISC = "disc"
    INFO = "info"
    PROGRESS = "progress"
    USER_INFO = "user_info"
    CHANNELS = "channels"


_C, _E = Role.CALLER, Role.CALLEE
_S = LegState
_V = Event

CLIENT: dict[tuple[Role, LegState, Event], LegState] = {
    # a call number the client has no call on yet: only setup starts one (§4.4)
    (_C, _S.IDLE, _V.SETUP): _S.SETUP_SENT,
    # The caller may write while the call rings: the hub holds those messages (§4.6).
    (_C, _S.SETUP_SENT, _V.FACILITY): _S.SETUP_SENT,
    (_C, _S.PROCEEDING, _V.FACILITY): _S.PROCEEDING,
    (_C, _S.ALERTING, _V.FACILITY): _S.ALERTING,
    (_C, _S.CONNECTED, _V.FACILITY): _S.CONNECTED,
    (_C, _S.SETUP_SENT, _V.REL): _S.RELEASED,
    (_C, _S.PROCEEDING, _V.REL): _S.RELEASED,
    (_C, _S.ALERTING, _V.REL): _S.RELEASED,
    (_C, _S.CONNECTED, _V.REL): _S.RELEASED,
    (_E, _S.OFFERED, _V.ALERT): _S.ALERTING,
    (_E, _S.ALERTING, _V.ALERT): _S.ALERTING,
    (_E, _S.OFFERED, _V.CONN): _S.CONNECTED,
    (_E, _S.ALERTING, _V.CONN): _S.CONNECTED,
    (_E, _S.CONNECTED, _V.FACILITY): _S.CONNECTED,
    (_E, _S.OFFERED, _V.REL): _S.RELEASED,
    (_E, _S.ALERTING, _V.REL): _S.RELEASED,
    (_E, _S.CONNECTED, _V.REL): _S.RELEASED,
    # disc ends the leg as rel does; the other side hears disc, then rel (§4.7)
    (_C, _S.SETUP_SENT, _V.DISC): _S.RELEASED,
    (_C, _S.PROCEEDING, _V.DISC): _S.RELEASED,
    (_C, _S.ALERTING, _V.DISC): _S.RELEASED,
    (_C, _S.CONNECTED, _V.DISC): _S.RELEASED,
    (_E, _S.OFFERED, _V.DISC): _S.RELEASED,
    (_E, _S.ALERTING, _V.DISC): _S.RELEASED,
    (_E, _S.CONNECTED, _V.DISC): _S.RELEASED,
    # the called side's progress while it rings goes to the caller
    (_E, _S.OFFERED, _V.PROGRESS): _S.OFFERED,
    (_E, _S.ALERTING, _V.PROGRESS): _S.ALERTING,
    # end-to-end information of a connected call, either way
    (_C, _S.CONNECTED, _V.INFO): _S.CONNECTED,
    (_E, _S.CONNECTED, _V.INFO): _S.CONNECTED,
    (_C, _S.CONNECTED, _V.USER_INFO): _S.CONNECTED,
    (_E, _S.CONNECTED, _V.USER_INFO): _S.CONNECTED,
    (_C, _S.CONNECTED, _V.CHANNELS): _S.CONNECTED,
    (_E, _S.CONNECTED, _V.CHANNELS): _S.CONNECTED,
}

HUB: dict[tuple[Role, LegState, Event], LegState] = {
    (_C, _S.SETUP_SENT, _V.CALL_PROC): _S.PROCEEDING,
    (_C, _S.SETUP_SENT, _V.CONN): _S.CONNECTED,  # presence: the hub answers at once (§4.10)
    (_C, _S.PROCEEDING, _V.ALERT): _S.ALERTING,
    (_C, _S.PROCEEDING, _V.CONN): _S.CONNECTED,
    (_C, _S.ALERTING, _V.CONN): _S.CONNECTED,
    (_C, _S.PROCEEDING, _V.PROGRESS): _S.PROCEEDING,
    (_C, _S.ALERTING, _V.PROGRESS): _S.ALERTING,
    # the hub ends a leg in any state: a rel, the other side's end, a device gone (§4.7)
    **{
        (role, state, _V.REL): _S.RELEASED
        for role in Role
        for state in LegState
        if state is not _S.IDLE
    },
}

CLIENT_EVENTS: dict[str, Event] = {
    "setup": Event.SETUP,
    "alert": Event.ALERT,
    "conn": Event.CONN,
    "facility": Event.FACILITY,
    "rel": Event.REL,
    "disc": Event.DISC,
    "info": Event.INFO,
    "progress": Event.PROGRESS,
    "user_info": Event.USER_INFO,
    "channels": Event.CHANNELS,
}
RELAYED: frozenset[Event] = frozenset({Event.INFO, Event.PROGRESS, Event.USER_INFO, Event.CHANNELS})
"""Events whose message travels to the other side's leg(s) as it came (12.25)."""


def client_event(role: Role, state: LegState, event: Event) -> LegState:
    """The state after a client's ``event``; ``BadState`` if the table does not allow it."""
    try:
        return CLIENT[role, state, event]
    except KeyError:
        raise BadState(f"{event.value} not allowed in state {state.value}") from None


def hub_event(role: Role, state: LegState, event: Event) -> LegState | None:
    """The state after the hub sends ``event``, or None when it does not apply (no send)."""
    return HUB.get((role, state, event))


def released(role: Role, state: LegState) -> LegState:
    """The state of a leg the hub ends (``released``; the ``HUB`` table's ``rel`` row)."""
    return HUB[role, state, Event.REL]


def describe() -> str:
    """Both tables as text, one transition a line (``client caller setup_sent --rel-->
    released``): print it to see every move a leg can make."""
    return "\n".join(
        f"{side} {role.value} {state.value} --{event.value}--> {after.value}"
        for side, table in (("client", CLIENT), ("hub", HUB))
        for (role, state, event), after in table.items()
    )
