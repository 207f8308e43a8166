"""One chat call and its legs (PROTOCOL §4.4-§4.8).

A ``Call`` is the conversation: its ``call_id`` names it, its ``seq`` numbers every
message in order, and it remembers client message ids so a retry is acknowledged again
instead of relayed twice. A ``Leg`` is one registration's part in it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from .callstate import LegState, Role
from .registry import Registration
from .timers import Timer

__all__ = ["AckRecord", "Call", "Fragments", "HeldMessage", "Leg"]


@dataclass(slots=True)
class AckRecord:
    """What a client message id was answered with; replayed on a retry."""

    seq: int
    time: int
    state: str


@dataclass(slots=True)
class HeldMessage:
    """A message the caller wrote before ``conn`` (PROTOCOL §4.6), ready to relay."""

    im_message: dict[str, Any]
    id: str | None
    size: int


@dataclass(slots=True)
class Fragments:
    """``more:true`` parts collected on one leg until the last one arrives."""

    parts: list[str]
    size: int
    mime: str | None
    id: str | None
    discarding: bool = False


class Leg:
    __slots__ = ("call", "fragments", "number", "reg", "relay_head", "role", "state", "typing")

    def __init__(self, call: Call, reg: Registration, number: int, role: Role, state: LegState):
        self.call = call
        self.reg = reg
        self.number = number
        self.role = role
        self.state = state
        self.fragments: Fragments | None = None
        self.typing: Timer | None = None
        """The typing expiry timer while this leg's user is typing."""
        self.relay_head: tuple[object, str] | None = None
        """(src it was built for, the fixed start of every message relayed to this leg)."""


class Call:
    __slots__ = (
        "acks",
        "call_id",
        "callee",
        "caller",
        "domain",
        "held",
        "held_bytes",
        "max_ids",
        "offers",
        "ring",
        "seq",
    )

    def __init__(self, call_id: str, domain: str, max_ids: int) -> None:
        self.call_id = call_id
        self.domain = domain
        self.caller: Leg | None = None
        self.callee: Leg | None = None
        """The callee device that answered; None while the call is offered."""
        self.offers: list[Leg] = []
        self.seq = 0
        self.acks: OrderedDict[tuple[Role, str], AckRecord] = OrderedDict()
        """Client ids per side: each side numbers its own messages, so ids may collide."""
        self.max_ids = max_ids
        self.held: list[HeldMessage] = []
        self.held_bytes = 0
        self.ring: Timer | None = None

    @property
    def connected(self) -> bool:
        return self.callee is not None

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def acked(self, role: Role, message_id: str) -> AckRecord | None:
        return self.acks.get((role, message_id))

    def remember(self, role: Role, message_id: str, record: AckRecord) -> None:
        self.acks[role, message_id] = record
        if len(self.acks) > self.max_ids:
            self.acks.popitem(last=False)

    def peer(self, leg: Leg) -> Leg | None:
        """The connected leg on the other side, or None before ``conn``."""
        if self.callee is None:
            return None
        return self.callee if leg is self.caller else self.caller

    def legs(self) -> list[Leg]:
        legs = [leg for leg in (self.caller, self.callee) if leg is not None]
        return legs + self.offers
