"""Messages relayed to a device on another switch, waiting for that switch's report.

Theory of operation (docs 12.39): on one switch a message is ``delivered`` when it is in
the receiver's connection's queue. For a receiver on another switch the home cannot see
that queue: the message goes there ``sent``, and waits here, by the receiving leg, until
the device's switch reports the highest seq it handed to the connection (``Reached``,
cumulative, once per batch). Everything up to that seq is then ``delivered``
(``Acks.reached``). What no report will cover (the device went away, its switch was
lost, its leg or the call ended) is taken out whole (``unreached``) and waits as a held
message does. A standalone switch never puts anything here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from ..calls import AckRecord, Leg
from ..callstate import Role

__all__ = ["Reports", "Unreported"]


@dataclass(slots=True)
class Unreported:
    """One message waiting for its receiver's switch to report it."""

    seq: int
    """The seq it was relayed with (its record's may be corrected by the service)."""
    role: Role
    sip: str
    """Who wrote it: the writer's side and user."""
    message_id: str
    record: AckRecord
    held: bool
    """Its writer heard ``held`` already (held until ``conn``, or replayed after a
    resume): told once, never again."""


class Reports:
    __slots__ = ("_by_leg",)

    def __init__(self) -> None:
        self._by_leg: dict[Leg, deque[Unreported]] = {}
        """Per receiving leg, oldest first: only legs with messages waiting."""

    def __len__(self) -> int:
        return sum(len(waiting) for waiting in self._by_leg.values())

    def __bool__(self) -> bool:
        return bool(self._by_leg)

    def expect(self, receiver: Leg, message: Unreported) -> None:
        waiting = self._by_leg.get(receiver)
        if waiting is None:
            waiting = self._by_leg[receiver] = deque()
        waiting.append(message)

    def reached(self, receiver: Leg, seq: int) -> list[Unreported]:
        """The messages on ``receiver`` up to ``seq``, taken out: their report came."""
        waiting = self._by_leg.get(receiver)
        if waiting is None:
            return []
        done = []
        while waiting and waiting[0].seq <= seq:
            done.append(waiting.popleft())
        if not waiting:
            del self._by_leg[receiver]
        return done

    def unreached(self, receiver: Leg) -> Iterable[Unreported]:
        """Every message on ``receiver``, taken out: no report will come for them."""
        return self._by_leg.pop(receiver, ())
