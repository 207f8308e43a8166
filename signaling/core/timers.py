"""A sans-I/O timer queue: the core arms timers, the I/O layer asks when to wake.

The asyncio glue sleeps until ``next_deadline()`` (or until poked), then calls
``pop_due(now)`` and runs the callbacks. Nothing here reads a clock: ``now`` comes in.
Cancelling marks the entry; the heap drops it lazily.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

__all__ = ["Timer", "TimerQueue"]


def _noop() -> None:
    pass


class Timer:
    """Handle of an armed timer; ``cancel()`` is idempotent."""

    __slots__ = ("callback", "cancelled", "deadline", "queued")

    def __init__(self, deadline: float, callback: Callable[[], None]) -> None:
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False
        self.queued = True
        """Its entry is still in the heap (cancelled or not)."""

    def cancel(self) -> None:
        # Drop the callback too: the heap keeps the entry until its deadline, and the
        # closure would keep a released call (and its held messages) alive that long.
        self.cancelled = True
        self.callback = _noop


class TimerQueue:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()
        self.armed = 0
        """Timers armed or revived so far. The earliest deadline comes sooner only when
        this grows, so the I/O layer asks for ``next_deadline`` only then, not after
        every event (most arm nothing: a relayed message does not)."""

    def arm(self, deadline: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(deadline, callback)
        heapq.heappush(self._heap, (deadline, next(self._order), timer))
        self.armed += 1
        return timer

    def revive(self, timer: Timer, callback: Callable[[], None]) -> bool:
        """Arm a cancelled ``timer`` again, at its old deadline, if its heap entry is still
        there; False if it is gone (then arm a new one). A holder that cancels and re-arms
        often (``Expiry``) thus leaves no cancelled entries behind until their deadline."""
        if not timer.queued:
            return False
        timer.cancelled = False
        timer.callback = callback
        self.armed += 1
        return True

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)[2].queued = False
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> list[Timer]:
        """Remove and return the live timers whose deadline is ``<= now``, earliest first."""
        due: list[Timer] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            timer = heapq.heappop(heap)[2]
            timer.queued = False
            if not timer.cancelled:
                due.append(timer)
                timer.cancelled = True  # fired: a late cancel() must not matter
        return due

    def __len__(self) -> int:
        return sum(1 for entry in self._heap if not entry[2].cancelled)

    @property
    def held(self) -> int:
        """Entries in the heap, cancelled ones included: what the queue holds in memory."""
        return len(self._heap)
