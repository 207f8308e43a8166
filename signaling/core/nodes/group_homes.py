"""One home per group: which switch runs a group's live call (PROTOCOL §7.6, docs 12.28).

Theory of operation: a group has one live call, so in a cluster it must have one home.
The first switch to set up the group's call claims the home in the shared state (a set
per group that holds at most one switch). Its members' setups then run there; a switch
whose claim is refused learns which switch holds it and sends its device's ``setup``
there (``Join``), keeping a proxy leg for it. The home gives the claim back when the
group's live call ends (or when a setup it claimed for made none, e.g. a non-member's),
so the next setup may make the call anywhere. A ``Join`` that reaches a switch that is no
longer the home is answered ``rel`` 41, as a lost link would end the call; the client
sets it up again. A ``Join`` may also reach the home before the home has Redis's answer to
its own claim (the answer and the inbox come on different connections): it waits for
that answer, then runs as any other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from ..actions import Claimed
from ..outbox import Outbox

__all__ = ["GroupHomes", "GroupKey"]

GroupKey = tuple[str, str]
"""(domain, the group's sip)."""

Waiting = TypeVar("Waiting")


class GroupHomes(Generic[Waiting]):
    def __init__(self, outbox: Outbox, node: str, requests: Iterator[int]) -> None:
        self._out = outbox
        self._node = node
        self._requests = requests
        self._mine: set[GroupKey] = set()
        """Groups whose home this switch holds."""
        self._asked: dict[int, tuple[GroupKey, Waiting]] = {}
        self._early: dict[GroupKey, list[Callable[[], None]]] = {}
        """What came for a group while this switch's claim of it was unanswered."""

    def held(self) -> int:
        return len(self._mine) + len(self._asked) + len(self._early)

    def mine(self, group: GroupKey) -> bool:
        return group in self._mine

    def ask(self, group: GroupKey, waiting: Waiting) -> None:
        """Claim the group's home; ``waiting`` comes back with the answer."""
        request = next(self._requests)
        self._asked[request] = (group, waiting)
        self._out.claim(request, _key(group), self._node, 1)

    def claiming(self, group: GroupKey) -> bool:
        """Whether this switch asked for the group's home and awaits the answer."""
        return any(asked == group for asked, _ in self._asked.values())

    def after_answer(self, group: GroupKey, run: Callable[[], None]) -> None:
        """``run`` once this switch's claim of ``group`` is answered: another switch was
        refused the home because this one holds it, and sent its device's ``Join`` here
        before Redis's answer to this switch's own claim arrived."""
        self._early.setdefault(group, []).append(run)

    def answered(
        self, answer: Claimed
    ) -> tuple[Waiting, str | None, list[Callable[[], None]]] | None:
        """What waited for this claim, the home elsewhere (None: this switch is home
        now), and what came for the group meanwhile (``after_answer``), to run after it;
        None for another part's claim."""
        asked = self._asked.pop(answer.request, None)
        if asked is None:
            return None
        group, waiting = asked
        early = self._early.pop(group, [])
        if answer.granted:
            self._mine.add(group)
            return waiting, None, early
        homes = [holder for holder in answer.holders if holder != self._node]
        return waiting, homes[0] if homes else None, early

    def ended(self, group: GroupKey) -> None:
        """The group's live call here is over: its home is free again."""
        if group in self._mine:
            self._mine.discard(group)
            self._out.unclaim(_key(group), self._node)


def _key(group: GroupKey) -> str:
    return f"group-home:{group[0]}:{group[1]}"
