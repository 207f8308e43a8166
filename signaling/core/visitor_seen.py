"""When each visitor was last seen, and whether that was recently (docs 12.37).

An operator of a live-helper desk wants to see who visited in the last few minutes, not
only who is connected now. So a visitor's presence carries ``last_seen`` (ms since the
epoch) and ``recent``: while the visitor is online ``last_seen`` is now and ``recent``
true; once offline, ``last_seen`` is when they went, and ``recent`` stays true for
``[presence] recent_window`` after it. A timer tells the watchers when the window
closes, so ``recent`` turns false without anyone asking.

A visitor is known from the moment its account is made (that is its first visit) until
the account ends: one small record and at most one timer per visitor account.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .clock import Clock
from .registry import UserKey
from .timers import Timer, TimerQueue

__all__ = ["VisitorsSeen"]

JsonObject = dict[str, Any]


@dataclass(slots=True)
class _Seen:
    last_ms: int
    until: float
    """Monotonic time at which the visitor stops counting as recent."""
    timer: Timer | None = None


class VisitorsSeen:
    def __init__(
        self,
        *,
        timers: TimerQueue,
        clock: Clock,
        window: float,
        window_over: Callable[[UserKey], None],
    ) -> None:
        self._timers = timers
        self._clock = clock
        self._window = window
        self._window_over = window_over
        """Told when a visitor who is offline stops being recent (its watchers learn it)."""
        self._seen: dict[UserKey, _Seen] = {}

    def made(self, key: UserKey) -> None:
        """A visitor account was made: the page that made it is a visit."""
        self._stop(key)
        self._seen[key] = _Seen(0, 0.0)
        self.went(key)

    def went(self, key: UserKey) -> None:
        """The visitor went offline now: recent for one window from here."""
        seen = self._seen.get(key)
        if seen is None:
            return
        self._stop(key)
        seen.last_ms = int(self._clock.wall() * 1000)
        seen.until = self._clock.monotonic() + self._window
        seen.timer = self._timers.arm(seen.until, lambda: self._over(key, seen))

    def came(self, key: UserKey) -> None:
        """The visitor is online again: recent while online, no timer needed."""
        self._stop(key)

    def ended(self, key: UserKey) -> None:
        """The visitor account is gone: nothing of it is kept."""
        self._stop(key)
        self._seen.pop(key, None)

    def fields(self, key: UserKey, online: bool) -> JsonObject | None:
        """What a ``presence_notify`` of this user adds; None when it is no visitor."""
        seen = self._seen.get(key)
        if seen is None:
            return None
        if online:
            return {"last_seen": int(self._clock.wall() * 1000), "recent": True}
        return {"last_seen": seen.last_ms, "recent": self._clock.monotonic() < seen.until}

    def __len__(self) -> int:
        return len(self._seen)

    def _stop(self, key: UserKey) -> None:
        seen = self._seen.get(key)
        if seen is not None and seen.timer is not None:
            seen.timer.cancel()
            seen.timer = None

    def _over(self, key: UserKey, seen: _Seen) -> None:
        if self._seen.get(key) is seen and seen.timer is not None:
            seen.timer = None
            self._window_over(key)
