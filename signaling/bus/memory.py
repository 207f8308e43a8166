"""The in-memory bus: several ``Switch`` objects in one process, for deterministic tests.

Theory of operation: nothing is delivered on its own. What the switches send each other
waits in ``pending``, one ``Delivery`` per sender, target and event (the frames one event
of a switch forwarded to one other switch travel together, as one stream entry would).
The test decides what happens next: ``step`` delivers the oldest, ``step(i)`` another
way's (switch to switch; each way keeps its own order, as a stream does), ``drop(i)``
loses one, ``run`` delivers until nothing is left, ``lose`` takes a switch out as a dead
node (its registrations leave the book, what it sent or was sent is lost, every other
switch hears ``node_down``). ``Lookup`` and
``Claim`` are answered from the book when they are delivered, not when asked, so a test
can order them against registrations and other claims. Local actions of every switch
(``Send``, ``Close``, ``Store``...) go to ``sink``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from signaling.core.actions import (
    Action,
    Claim,
    Claimed,
    Forward,
    LookedUp,
    Lookup,
    Unclaim,
)
from signaling.core.nodes.frames import DeviceRecord, NodeFrame
from signaling.core.switch import Switch

__all__ = ["Delivery", "MemoryBook", "MemoryBus"]

_CLUSTER = (Forward, Lookup, Claim, Unclaim)


class MemoryBook:
    """Registrations by user and the claim sets, as Redis will hold them."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, int], DeviceRecord] = {}
        self.claims: dict[str, set[str]] = {}

    def publish(self, record: DeviceRecord) -> None:
        self._records[record.node, record.ref] = record

    def withdraw(self, node: str, ref: int) -> None:
        self._records.pop((node, ref), None)

    def find(self, domain: str, sips: Iterable[str]) -> tuple[DeviceRecord, ...]:
        wanted = set(sips)
        return tuple(
            record
            for record in self._records.values()
            if record.domain == domain and record.sip in wanted
        )

    def forget_node(self, node: str) -> None:
        """A lost switch's registrations go, and its claims: those whose member is the
        switch or starts with its name and ``:`` (as a lease running out would)."""
        for key in [key for key in self._records if key[0] == node]:
            del self._records[key]
        for claim, members in list(self.claims.items()):
            for member in [m for m in members if m == node or m.startswith(f"{node}:")]:
                self.unclaim(claim, member)

    def claim(self, key: str, member: str, limit: int) -> tuple[bool, tuple[str, ...]]:
        """One atomic step: add ``member`` if the set holds fewer than ``limit``; whether
        it is in now, and the set's members."""
        members = self.claims.setdefault(key, set())
        granted = member in members or len(members) < limit
        if granted:
            members.add(member)
        holders = tuple(sorted(members))
        if not members:
            del self.claims[key]
        return granted, holders

    def unclaim(self, key: str, member: str) -> None:
        members = self.claims.get(key)
        if members is not None:
            members.discard(member)
            if not members:
                del self.claims[key]

    def __len__(self) -> int:
        return len(self._records)


@dataclass(slots=True)
class Delivery:
    """What waits for one switch: frames from another, or the answer to a question."""

    sender: str
    target: str
    frames: list[NodeFrame] = field(default_factory=list)
    question: Lookup | Claim | None = None


def _nowhere(node: str, actions: list[Action]) -> None:
    """The default sink: local actions are dropped."""


class MemoryBus:
    def __init__(self, sink: Callable[[str, list[Action]], None] = _nowhere) -> None:
        self.book = MemoryBook()
        self.switches: dict[str, Switch] = {}
        self.pending: list[Delivery] = []
        self.sink = sink
        self.delivered = 0

    def join(self, node: str, switch: Switch) -> None:
        self.switches[node] = switch

    # -- from the switches ---------------------------------------------------------------------

    def carry(self, node: str, actions: list[Action]) -> list[Action]:
        """Keep the cluster actions of ``node`` for delivery; return the rest."""
        batches: dict[str, Delivery] = {}
        local: list[Action] = []
        for action in actions:
            if not isinstance(action, _CLUSTER):
                local.append(action)
            elif isinstance(action, Forward):
                batch = batches.get(action.node)
                if batch is None:
                    batch = batches[action.node] = Delivery(node, action.node)
                    self.pending.append(batch)
                batch.frames.append(action.frame)
            elif isinstance(action, Unclaim):
                self.book.unclaim(action.key, action.member)
            else:
                self.pending.append(Delivery(node, node, question=action))
        return local

    def feed(self, node: str, actions: list[Action]) -> None:
        """Actions a switch returned: cluster ones wait, local ones go to the sink."""
        local = self.carry(node, actions)
        if local:
            self.sink(node, local)

    # -- the test decides ------------------------------------------------------------------------

    def step(self, index: int = 0) -> Delivery:
        """Deliver ``pending[index]``, or rather the oldest that waits on the same way
        (sender to target): one switch's frames to another keep their order, as in a
        stream; only different ways overtake each other."""
        chosen = self.pending[index]
        way = (chosen.sender, chosen.target)
        index = next(i for i, d in enumerate(self.pending) if (d.sender, d.target) == way)
        delivery = self.pending.pop(index)
        switch = self.switches.get(delivery.target)
        if switch is not None:
            self.delivered += 1
            self.feed(delivery.target, self._deliver(switch, delivery))
        return delivery

    def _deliver(self, switch: Switch, delivery: Delivery) -> list[Action]:
        question = delivery.question
        if isinstance(question, Lookup):
            found = self.book.find(question.domain, question.sips)
            return switch.looked_up(LookedUp(question.request, found))
        if isinstance(question, Claim):
            granted, holders = self.book.claim(question.key, question.member, question.limit)
            return switch.claimed(Claimed(question.request, granted, holders))
        return switch.from_nodes(delivery.sender, delivery.frames)

    def drop(self, index: int = 0) -> Delivery:
        return self.pending.pop(index)

    def run(self, limit: int = 100_000) -> int:
        """Deliver in order until nothing waits; returns how many were delivered."""
        count = 0
        while self.pending:
            if count >= limit:
                raise RuntimeError(f"the bus did not settle after {limit} deliveries")
            self.step()
            count += 1
        return count

    def lose(self, node: str) -> None:
        """Switch ``node`` dies: its registrations leave the book, what it sent or was
        sent is lost, and the others hear ``node_down`` (in the order they joined)."""
        self.switches.pop(node, None)
        self.book.forget_node(node)
        self.pending = [
            delivery for delivery in self.pending if node not in (delivery.sender, delivery.target)
        ]
        for name, switch in list(self.switches.items()):
            self.feed(name, switch.node_down(node))
