"""One chat call, its legs, and the registrations they belong to (PROTOCOL §4.1-§4.8).

A ``Call`` is the conversation: its ``call_id`` names it, its ``seq`` numbers every
message in order, and it remembers client message ids so a retry is acknowledged again
instead of relayed twice. A ``Leg`` is one registration's part in it. A
``Registration`` is one device of a user and holds its legs by call number; the three
refer to each other, so they live in one module (the ``registry`` finds registrations).

A registration belongs to one connection and acts for the connection's user, never for
whatever ``hw`` says. Call numbers are scoped to it: the client picks positive ones, the
hub hands out negative ones for calls it offers (PROTOCOL §4.3). A registration whose
connection drops is *detached* (``conn`` 0) for the resume grace (§4.9): it still counts
for presence and keeps its calls, but nothing is sent to it and it is offered nothing
new, until a new connection takes it over with its ``token``.

Identifiers (PROTOCOL §4.5 revised, docs 12.25): on the wire the conversation's id is the
``confId`` innovaphone's Signal page shares between all legs of a call, and each leg has a
``callId`` of its own. Inside the hub, and towards the messages service (Posts, ``Seen``,
stored rows), ``Call.call_id`` stays the conversation's key under its old name.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from config import UserConfig

from .callstate import LegState, Role
from .delivery_state import Delivery
from .messages import Cause
from .timers import Timer

if TYPE_CHECKING:
    from .groups import Group

__all__ = [
    "CUMULATIVE_ACK",
    "AckRecord",
    "Call",
    "Fragments",
    "HeldMessage",
    "Leg",
    "Line",
    "Registration",
    "UserKey",
    "new_token",
]


@dataclass(slots=True)
class AckRecord:
    """What a client message id was answered with; replayed on a retry."""

    seq: int
    time: int
    state: Delivery
    told: bool = True
    """The writer heard this state (False while its device was away, §4.9)."""


@dataclass(slots=True)
class HeldMessage:
    """A message the caller wrote before ``conn`` (PROTOCOL §4.6), ready to relay."""

    im_message: dict[str, Any]
    id: str | None
    size: int


@dataclass(slots=True)
class Line:
    """One message of a live call's transcript (§4.9): replayed after a resume, and to the
    agent a support chat is transferred to. Memory only, and only while the call lives.
    The frame is built again when it is replayed (rare, ``frames.line_item``), not kept
    (one object a message)."""

    seq: int
    time: int
    role: Role
    user: UserConfig
    """Who wrote it: the side (``role``) and, in a group, the member."""
    html: str
    attach: str | None
    subject: str | None
    id: str | None
    size: int

    @property
    def sip(self) -> str:
        return self.user.sip


@dataclass(slots=True)
class Fragments:
    """``more:true`` parts collected on one leg until the last one arrives."""

    parts: list[str]
    size: int
    mime: str | None
    id: str | None
    discarding: bool = False


class Leg:
    __slots__ = (
        "ack_head",
        "call",
        "call_id",
        "fragments",
        "number",
        "offered_after",
        "post_head",
        "reg",
        "relay_head",
        "resume",
        "ring",
        "role",
        "state",
        "typing",
    )

    def __init__(self, call: Call, reg: Registration, number: int, role: Role, state: LegState):
        self.call = call
        self.reg = reg
        self.number = number
        self.role = role
        self.state = state
        self.call_id = secrets.token_hex(16)
        """This leg's own ``callId`` (§4.5 revised); kept across a resume (§4.9)."""
        self.fragments: Fragments | None = None
        self.typing: Timer | None = None
        """The typing expiry timer while this leg's user is typing."""
        self.relay_head: tuple[object, str] | None = None
        """(src it was built for, the fixed start of every message relayed to this leg)."""
        self.post_head: tuple[UserConfig, UserConfig, dict[str, Any]] | None = None
        """(author and other side it was built for, the fields every Post of this leg's
        messages starts with: ``frames.post_head``)."""
        self.ack_head: tuple[object, int, str] | None = None
        """(src and call number it was built for, the fixed start of every ``im_ack``
        this leg's writer hears)."""
        self.ring: Timer | None = None
        """A group call offered to this device rings until then (§7.6)."""
        self.offered_after = 0
        """A group call offered to this device: the seq it has seen (§7.6)."""
        self.resume: int | None = None
        """Set after a resume until the client answers the re-offered call: the last seq
        it saw (§4.9). Messages for the leg wait in the transcript meanwhile."""

    def ids(self) -> dict[str, str]:
        """``callId`` (this leg) and ``confId`` (the conversation) for a frame to it."""
        return {"callId": self.call_id, "confId": self.call.call_id}

    @property
    def parked(self) -> bool:
        """Nothing can be sent to this leg now: its device is detached or resuming."""
        return self.resume is not None or self.reg.conn == 0


class Call:
    __slots__ = (
        "ack_order",
        "acks",
        "answered_by_hub",
        "call_id",
        "callee",
        "callee_user",
        "caller",
        "caller_user",
        "domain",
        "group",
        "held",
        "held_bytes",
        "joined",
        "max_ids",
        "offers",
        "presence",
        "ring",
        "seq",
        "stored",
        "support",
        "transcript",
        "transcript_bytes",
    )

    def __init__(
        self,
        call_id: str,
        domain: str,
        max_ids: int,
        caller_user: UserConfig,
        callee_user: UserConfig,
        stored: bool = False,
    ) -> None:
        self.call_id = call_id
        self.domain = domain
        self.caller_user = caller_user
        self.callee_user = callee_user
        self.stored = stored
        """Either side holds the messages licence: every message is also posted (§7.3)."""
        self.group: Group | None = None
        """A group's chat (§7.6): any number of members' devices, in ``joined``."""
        self.joined: list[Leg] = []
        self.transcript: deque[Line] = deque()
        """The latest messages, for a resume (§4.9), a transfer (§9.4) and group devices
        that answer an offer later (§7.6)."""
        self.transcript_bytes = 0
        self.support: Any = None
        """The support chat (§9) when this call reached a queue."""
        self.presence = False
        """A presence subscription (§4.10), not a chat: no messages, no seq."""
        self.answered_by_hub = False
        """The callee is offline and licensed: the hub answered and stores (§7.5)."""
        self.caller: Leg | None = None
        self.callee: Leg | None = None
        """The callee device that answered; None while the call is offered."""
        self.offers: list[Leg] = []
        self.seq = 0
        self.acks: dict[tuple[Role, str, str], AckRecord] = {}
        """Client ids per side and group member (each numbers its own), oldest first."""
        self.ack_order: deque[tuple[Role, str, str]] = deque()
        self.max_ids = max_ids
        self.held: list[HeldMessage] = []
        self.held_bytes = 0
        self.ring: Timer | None = None

    @property
    def connected(self) -> bool:
        return self.callee is not None or self.answered_by_hub

    def record(self, line: Line, max_lines: int, max_bytes: int) -> None:
        """Keep ``line`` in the transcript, dropping the oldest beyond the limits. Only
        this adds lines, one at a time, so one line more than ``max_lines`` is all there
        can be (a busy call's transcript is full: every message drops one)."""
        transcript = self.transcript
        transcript.append(line)
        kept = self.transcript_bytes + line.size
        if len(transcript) > max_lines:
            kept -= transcript.popleft().size
        while kept > max_bytes and transcript:
            kept -= transcript.popleft().size
        self.transcript_bytes = kept

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def acked(self, leg: Leg, message_id: str) -> AckRecord | None:
        return self.acks.get((leg.role, leg.reg.user.sip, message_id))

    def remember(self, leg: Leg, message_id: str, record: AckRecord) -> None:
        """Answer ``message_id`` of ``leg``'s writer with ``record`` from now on; a new id
        beyond ``max_ids`` makes the call forget its oldest.

        ``acks`` is a plain dict: it keeps the order its keys came in, and a record
        replaced keeps its place. ``ack_order`` holds the same keys in the same order, so
        that the oldest is found without searching the dict's table. An ``OrderedDict``
        answered the same at a higher cost (tests/property/test_ack_ids.py holds the two
        to the same answers and the same order)."""
        acks = self.acks
        key = (leg.role, leg.reg.user.sip, message_id)
        known = len(acks)
        acks[key] = record
        if len(acks) > known:  # a new id (a known one keeps its place, and its count)
            order = self.ack_order
            order.append(key)
            if len(order) > self.max_ids:
                del acks[order.popleft()]

    def peer(self, leg: Leg) -> Leg | None:
        """The connected leg on the other side, or None before ``conn``."""
        if self.callee is None:
            return None
        return self.callee if leg is self.caller else self.caller

    def legs(self) -> list[Leg]:
        legs = [leg for leg in (self.caller, self.callee) if leg is not None]
        return legs + self.offers

    def unlink(self) -> None:
        """The call is over and every leg told: let go of the legs and the support chat,
        which refer back to it, so that reference counting frees them all once the last
        leg is dropped; the cycle collector never has to find them (the hub freezes what
        outlives its passes, so a cycle left here would stay until the next complete
        collection: ``signaling.gc_pauses``).
        The legs keep their ``call``: a late frame or hook that still holds one reads
        the released call, which has no legs any more."""
        self.caller = self.callee = None
        self.offers = []
        self.joined = []
        self.support = None


UserKey = tuple[str, str]
"""(tenant domain, user sip)."""

_NOTHING_TAKEN: Mapping[int, None] = MappingProxyType({})
"""What ``taken`` is until an offer is first taken elsewhere: one shared empty mapping
rather than an empty dict in every registration."""


NOTHING_ENDED: Mapping[str, tuple[str, Cause]] = MappingProxyType({})
ENDED_KEPT = 16
"""Calls a detached registration remembers the end of (the newest)."""

CUMULATIVE_ACK = "CUMULATIVE_ACK"
"""The Register flag of a device that takes one ``im_ack`` with ``ids`` for a run of its
messages (docs/protocol.md 12.31); ``Wire.ack`` reads it in ``Registration.flags``."""


class Registration:
    """One device of a user. There is one for every registered connection, so it keeps
    nothing it can share or make when asked (``legs``, ``taken``, the default ``hw``)."""

    __slots__ = (
        "_hw",
        "_legs",
        "conn",
        "domain",
        "drop_cause",
        "ended",
        "flags",
        "next_offer",
        "src",
        "taken",
        "token",
        "user",
    )

    def __init__(
        self,
        conn: int,
        domain: str,
        user: UserConfig,
        hw: str | None,
        flags: frozenset[str],
        src: object,
    ) -> None:
        self.conn = conn
        self.domain = domain
        self.user = user
        self._hw: str | int = conn if hw is None else hw
        """The name the client gave, else the id of the connection it registered on."""
        self.flags = flags
        self.src = src
        self._legs: dict[int, Leg] | None = None
        self.next_offer = -1
        self.token = new_token()
        """Lets a later connection of the same user take this registration over (§4.9)."""
        self.drop_cause = 16
        """The cause its calls end with if the grace runs out (16 clean close, 41 lost)."""
        self.ended: Mapping[str, tuple[str, Cause]] = NOTHING_ENDED
        """Calls that ended while it was away, by ``confId``: (the leg's ``callId``, the
        cause), told to the next resume that names them."""
        self.taken: Mapping[int, None] = _NOTHING_TAKEN
        """Call numbers of support offers another agent answered first (§9.2), newest
        last: a late frame on one is told ``already_taken``."""

    def remember_ended(self, leg: Leg, cause: Cause) -> None:
        """A call of this device ended while it was away (§4.9, docs 12.35): a resume
        that names it (by ``confId`` or ``callId``) is told its ``rel`` and cause. The
        newest ``ENDED_KEPT`` calls are kept, and only until the next resume."""
        ended = self.ended if isinstance(self.ended, dict) else {}
        ended[leg.call.call_id] = (leg.call_id, cause)
        if len(ended) > ENDED_KEPT:
            del ended[next(iter(ended))]
        self.ended = ended

    def remember_taken(self, number: int) -> None:
        taken = self.taken if isinstance(self.taken, dict) else {}
        taken[number] = None
        if len(taken) > 64:
            del taken[next(iter(taken))]
        self.taken = taken

    @property
    def legs(self) -> dict[int, Leg]:
        """Its calls by call number (§4.3), made when first asked for: an idle device that
        was never offered a call has none."""
        legs = self._legs
        if legs is None:
            legs = self._legs = {}
        return legs

    @property
    def hw(self) -> str:
        """The device's name (§4.1): as the client gave it, else ``conn-`` and the id of
        the connection it registered on."""
        hw = self._hw
        return hw if isinstance(hw, str) else f"conn-{hw}"

    @hw.setter
    def hw(self, name: str) -> None:
        self._hw = name

    @property
    def attached(self) -> bool:
        """A connection serves it (not waiting for a resume)."""
        return self.conn != 0

    @property
    def key(self) -> UserKey:
        return (self.domain, self.user.sip)

    @property
    def no_media(self) -> bool:
        return "NO_MEDIA_CALL" in self.flags

    @property
    def app_data(self) -> bool:
        """The device takes ``im_message`` of other mimes as opaque application data and
        never renders them (docs/protocol.md 12.25)."""
        return "APP_DATA" in self.flags

    def allocate_offer_number(self) -> int:
        number = self.next_offer
        self.next_offer -= 1
        return number


def new_token() -> str:
    return secrets.token_urlsafe(24)
