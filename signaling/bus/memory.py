"""The in-memory bus: several ``Switch`` objects in one process, for deterministic tests.

Theory of operation: nothing is delivered on its own. What the switches send each other
waits in ``pending``, one ``Delivery`` per sender, target and event (the frames one event
of a switch forwarded to one other switch travel together, as one stream entry would).
The test decides what happens next: ``step`` delivers the oldest, ``step(i)`` another
way's (switch to switch; each way keeps its own order, as a stream does), ``drop(i)``
loses one, ``run`` delivers until nothing is left, ``lose`` takes a switch out as a dead
node (its registrations leave the book, what it sent or was sent is lost, every other
switch hears ``node_down``; its registrations' snapshots stay, as they would in Redis
for the resume grace). ``Lookup``, ``Recall`` and
``Claim`` are answered from the book when they are delivered, not when asked, so a test
can order them against registrations and other claims; ``decide(i)`` runs a claim in the
book at once and leaves its answer waiting (Redis ran it; the reply is on its way, and
frames on other ways may overtake it). Presence works as on Redis: a
``PresenceShare`` is written to the book at once, and every switch that follows the user
(``PresenceWatch``) gets a read of its shares delivered, as the announcement of the change
and the read after it; the read, too, answers from the book when delivered. A registration
is findable as soon as it is written, so ``WhenFindable`` holds nothing here. Logins
are counted in one ``LoginThrottle`` of the book, by its shared form (``gate``,
``forgive``), on the bus's ``clock``: a ``CheckLogin`` is answered when delivered, and
visitor accounts are in the book while some switch keeps them (once the last lets go,
the account is gone at once, where Redis would wait for its expiry). Local
actions of every switch (``Send``, ``Close``, ``Store``...) go to ``sink``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from signaling.appwebsocket.throttle import LoginThrottle
from signaling.core.actions import (
    Action,
    CheckLogin,
    Claim,
    Claimed,
    ForgiveLogin,
    Forward,
    KeepVisitor,
    LoginChecked,
    LookedUp,
    Lookup,
    PresenceShare,
    PresenceShares,
    PresenceWatch,
    Recall,
    Recalled,
    Unclaim,
    VisitorRecord,
    VisitorReleased,
    WhenFindable,
)
from signaling.core.nodes.frames import DeviceRecord, NodeFrame, Snapshot
from signaling.core.switch import Switch

__all__ = ["Delivery", "MemoryBook", "MemoryBus"]

_CLUSTER = (Forward, Lookup, Recall, Claim, Unclaim, WhenFindable, PresenceShare, PresenceWatch)
_SHARED = (CheckLogin, ForgiveLogin, KeepVisitor, VisitorReleased)

UserKey = tuple[str, str]


class MemoryBook:
    """Registrations by user, their snapshots and the claim sets, as Redis holds them."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, int], DeviceRecord] = {}
        self.snapshots: dict[str, tuple[Snapshot, float | None]] = {}
        """Registrations' snapshots by token hash, with their expiry (not counted down:
        the tests look at it)."""
        self.taken: dict[str, tuple[Snapshot, float | None]] = {}
        """Snapshots a ``Recall`` took, as Redis keeps them marked taken: until their
        switch drops them or writes them again, or the taker gives them back."""
        self.claims: dict[str, set[str]] = {}
        self.presence: dict[UserKey, dict[str, bool]] = {}
        """Each user's shares: switch -> online there."""
        self.published: dict[UserKey, tuple[str, str]] = {}
        """Each user's last published activity and note, while it has shares."""
        self.throttle = LoginThrottle()
        """Every switch's logins, counted together (the defaults of ``[login]``)."""
        self.visitors: dict[UserKey, VisitorRecord] = {}
        """The visitor accounts some switch keeps."""
        self.keepers: dict[UserKey, set[str]] = {}
        """The switches that keep each visitor account."""

    def publish(self, record: DeviceRecord) -> None:
        self._records[record.node, record.ref] = record

    def withdraw(self, node: str, ref: int) -> None:
        self._records.pop((node, ref), None)

    def keep(self, key: str, snapshot: Snapshot, expiry: float | None) -> None:
        self.taken.pop(key, None)
        self.snapshots[key] = (snapshot, expiry)

    def drop(self, key: str) -> None:
        self.snapshots.pop(key, None)
        self.taken.pop(key, None)

    def recall(self, key: str, domain: str, sip: str) -> Snapshot | None:
        """Take the snapshot under ``key`` if it is (domain, sip)'s, as the Redis script
        does: in one step, marked taken (``taken``) rather than removed."""
        kept = self.snapshots.get(key)
        if kept is None or (kept[0].domain, kept[0].sip) != (domain, sip):
            return None
        self.taken[key] = self.snapshots.pop(key)
        return kept[0]

    def give_back(self, key: str, request: int) -> None:
        """A taken snapshot that was not used is takeable again, unless its switch
        dropped or wrote it since (one question at most holds a key's mark here, so the
        question's number is not compared as Redis compares it)."""
        kept = self.taken.pop(key, None)
        if kept is not None:
            self.snapshots[key] = kept

    def find(self, domain: str, sips: Iterable[str]) -> tuple[DeviceRecord, ...]:
        wanted = set(sips)
        return tuple(
            record
            for record in self._records.values()
            if record.domain == domain and record.sip in wanted
        )

    def forget_node(self, node: str) -> list[UserKey]:
        """A lost switch's registrations go, and its claims: those whose member is the
        switch or starts with its name and ``:`` (as a lease running out would), and its
        presence shares; returns the users whose shares changed."""
        for key in [key for key in self._records if key[0] == node]:
            del self._records[key]
        users = [user for user, shares in self.presence.items() if node in shares]
        for user in users:
            self.share(node, PresenceShare(*user, None))
        for claim, members in list(self.claims.items()):
            for member in [m for m in members if m == node or m.startswith(f"{node}:")]:
                self.unclaim(claim, member)
        return users

    def share(self, node: str, share: PresenceShare) -> None:
        """Switch ``node``'s share of a user, as the Redis script writes it."""
        user = (share.domain, share.sip)
        shares = self.presence.setdefault(user, {})
        if share.online is None:
            shares.pop(node, None)
        else:
            shares[node] = share.online
            if share.published is not None:
                self.published[user] = share.published
        if not shares:
            del self.presence[user]
            self.published.pop(user, None)

    def shares(self, user: UserKey, reader: str) -> PresenceShares:
        """A user's shares as switch ``reader`` reads them: the others'."""
        shares = self.presence.get(user, {})
        others = tuple(sorted((node, on) for node, on in shares.items() if node != reader))
        return PresenceShares(user[0], user[1], others, self.published.get(user))

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
    question: Lookup | Recall | Claim | CheckLogin | None = None
    answer: Claimed | None = None
    """A claim already run in the book (``decide``), its answer not yet delivered."""
    read: UserKey | None = None
    """A user's presence shares to read for the target (it follows the user)."""


def _nowhere(node: str, actions: list[Action]) -> None:
    """The default sink: local actions are dropped."""


def _no_time() -> float:
    return 0.0


class MemoryBus:
    def __init__(
        self,
        sink: Callable[[str, list[Action]], None] = _nowhere,
        clock: Callable[[], float] = _no_time,
    ) -> None:
        """``clock``: the time the shared login throttle counts in (the switches')."""
        self.book = MemoryBook()
        self.clock = clock
        self.switches: dict[str, Switch] = {}
        self.pending: list[Delivery] = []
        self.sink = sink
        self.delivered = 0
        self.following: dict[UserKey, set[str]] = {}
        """The switches that follow each user's presence (``PresenceWatch``)."""

    def join(self, node: str, switch: Switch) -> None:
        """A switch joins: it and every other meet (``node_up``, as the heartbeats that
        find a new node do) and what they tell each other then is delivered at once."""
        others = list(self.switches.items())
        self.switches[node] = switch
        before = len(self.pending)
        for name, other in others:
            self.feed(name, other.node_up(node))
            self.feed(node, switch.node_up(name))
        while len(self.pending) > before:
            self.step(before)

    # -- from the switches ---------------------------------------------------------------------

    def carry(self, node: str, actions: list[Action]) -> list[Action]:
        """Keep the cluster actions of ``node`` for delivery; return the rest."""
        batches: dict[str, Delivery] = {}
        local: list[Action] = []
        for action in actions:
            if isinstance(action, _SHARED):
                self._shared(node, action)
            elif not isinstance(action, _CLUSTER):
                local.append(action)
            elif isinstance(action, Forward):
                batch = batches.get(action.node)
                if batch is None:
                    batch = batches[action.node] = Delivery(node, action.node)
                    self.pending.append(batch)
                batch.frames.append(action.frame)
            elif isinstance(action, Unclaim):
                self.book.unclaim(action.key, action.member)
            elif isinstance(action, PresenceShare | PresenceWatch):
                self._presence(node, action)
            elif isinstance(action, Lookup | Recall | Claim):
                self.pending.append(Delivery(node, node, question=action))
            # WhenFindable: the book is written already, nothing waits
        return local

    def _shared(
        self, node: str, action: CheckLogin | ForgiveLogin | KeepVisitor | VisitorReleased
    ) -> None:
        if isinstance(action, CheckLogin):
            self.pending.append(Delivery(node, node, question=action))
        elif isinstance(action, ForgiveLogin):
            clock = self.clock()
            self.book.throttle.forgive(action.address, action.account, clock, action.taken)
        elif isinstance(action, KeepVisitor):
            user = (action.record.domain, action.record.sip)
            self.book.visitors[user] = action.record
            self.book.keepers.setdefault(user, set()).add(node)
        else:
            user = (action.domain, action.sip)
            keepers = self.book.keepers.get(user, set())
            keepers.discard(node)
            if not keepers:
                self.book.keepers.pop(user, None)
                self.book.visitors.pop(user, None)

    def _presence(self, node: str, action: PresenceShare | PresenceWatch) -> None:
        user = (action.domain, action.sip)
        if isinstance(action, PresenceShare):
            self.book.share(node, action)
            self._announce(node, user)
        elif action.on:
            self.following.setdefault(user, set()).add(node)
            self.pending.append(Delivery(node, node, read=user))
        else:
            followers = self.following.get(user, set())
            followers.discard(node)
            if not followers:
                self.following.pop(user, None)

    def _announce(self, writer: str, user: UserKey) -> None:
        """A user's shares changed: every switch following it reads them again."""
        for node in sorted(self.following.get(user, ())):
            self.pending.append(Delivery(writer, node, read=user))

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

    def decide(self, index: int = 0) -> None:
        """Run the claim ``pending[index]`` in the book now; its answer stays pending."""
        delivery = self.pending[index]
        question = delivery.question
        assert isinstance(question, Claim), delivery
        granted, holders = self.book.claim(question.key, question.member, question.limit)
        delivery.question, delivery.answer = None, Claimed(question.request, granted, holders)

    def _deliver(self, switch: Switch, delivery: Delivery) -> list[Action]:
        if delivery.answer is not None:
            return switch.claimed(delivery.answer)
        if delivery.read is not None:
            return switch.presence_shares(self.book.shares(delivery.read, delivery.target))
        question = delivery.question
        if isinstance(question, Lookup):
            found = self.book.find(question.domain, question.sips)
            return switch.looked_up(LookedUp(question.request, found))
        if isinstance(question, Claim):
            granted, holders = self.book.claim(question.key, question.member, question.limit)
            return switch.claimed(Claimed(question.request, granted, holders))
        if isinstance(question, CheckLogin):
            return switch.login_checked(self._login_checked(question))
        if isinstance(question, Recall):
            kept = self.book.recall(question.key, question.domain, question.sip)
            return switch.recalled(Recalled(question.request, kept))
        return switch.from_nodes(delivery.sender, delivery.frames)

    def _login_checked(self, question: CheckLogin) -> LoginChecked:
        address, account, charge = question.address, question.account, question.charge
        verdict = self.book.throttle.gate(address, account, self.clock(), charge=charge)
        visitor = self.book.visitors.get(question.visitor) if question.visitor else None
        return LoginChecked(question.conn, verdict, visitor)

    def answer_logins(self) -> None:
        """Deliver the answers to every ``CheckLogin`` waiting, and nothing else (Redis
        answers them on a connection of their own, in no order with the rest)."""
        checks = [d for d in self.pending if isinstance(d.question, CheckLogin)]
        for delivery in checks:
            self.pending.remove(delivery)
            switch = self.switches.get(delivery.target)
            if switch is not None:
                self.feed(delivery.target, self._deliver(switch, delivery))

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
        changed = self.book.forget_node(node)
        self.pending = [
            delivery for delivery in self.pending if node not in (delivery.sender, delivery.target)
        ]
        for user, followers in list(self.following.items()):
            followers.discard(node)
            if not followers:
                del self.following[user]
        for name, switch in list(self.switches.items()):
            self.feed(name, switch.node_down(node))
        for user in changed:  # the survivor that cleans up announces the change
            self._announce(node, user)
