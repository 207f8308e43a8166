"""Deadlines that are all the same delay after a stamp, kept with one timer for the lot.

Theory of operation: the hub closes a connection that has not logged in ``login.timeout``
after it opened, and ends a detached registration ``signaling.resume_grace`` after its
connection dropped (silence is the transport's business: ``appwebsocket.liveness``).
Each of these is a fixed delay after a stamp, so the order in which keys were last
stamped is the order in which they fall due. A dict keeps exactly that order: ``touch``
moves a key to the end, the first key is always the next to fall due. One ``Timer`` in
the ``TimerQueue`` waits for the first key; when it fires, every key that is due is
handed to ``expired`` and the timer is armed again for the new first key.

So a waiting connection costs one dict entry here, not a timer, a heap entry and a
closure of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from .clock import Clock
from .timers import Timer, TimerQueue

__all__ = ["Expiry"]

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class Expiry(Generic[K]):
    """Keys that fall due ``delay`` seconds after they were last ``touch``-ed."""

    __slots__ = ("_clock", "_delay", "_expired", "_stamps", "_timer", "_timers")

    def __init__(
        self, timers: TimerQueue, clock: Clock, delay: float, expired: Callable[[K], None]
    ) -> None:
        self._timers = timers
        self._clock = clock
        self._delay = delay
        self._expired = expired
        self._stamps: dict[K, float] = {}
        self._timer: Timer | None = None

    def touch(self, key: K, now: float) -> None:
        """(Re)start ``key``'s delay at ``now``; ``now`` never goes back between calls."""
        stamps = self._stamps
        if stamps:
            stamps.pop(key, None)
        else:
            self._arm(now + self._delay)
        stamps[key] = now

    def discard(self, key: K) -> None:
        """Forget ``key``; the shared timer is cancelled when the last key goes."""
        stamps = self._stamps
        if stamps.pop(key, None) is not None and not stamps and self._timer is not None:
            self._timer.cancel()  # the handle stays: the next touch may revive it

    def _arm(self, deadline: float) -> None:
        """The first key came: the cancelled timer again if the queue still holds it (a
        login after another would otherwise leave one cancelled entry each), else anew.
        A revived timer may fire early; ``_fire`` then just waits for the first key."""
        timer = self._timer
        if timer is None or not self._timers.revive(timer, self._fire):
            self._timer = self._timers.arm(deadline, self._fire)

    def __contains__(self, key: object) -> bool:
        return key in self._stamps

    def __len__(self) -> int:
        return len(self._stamps)

    def _fire(self) -> None:
        """Hand every due key to ``expired``, oldest first, then wait for the next one."""
        self._timer = None
        stamps, delay = self._stamps, self._delay
        now = self._clock.monotonic()
        due: list[K] = []
        for key, stamp in stamps.items():
            if stamp + delay > now:  # the very sum the timer was armed with
                break
            due.append(key)
        for key in due:
            del stamps[key]
        if stamps:
            first = next(iter(stamps.values()))
            self._timer = self._timers.arm(first + delay, self._fire)
        for key in due:
            try:
                self._expired(key)
            except Exception:
                log.exception("internal error when a deadline fell due")
