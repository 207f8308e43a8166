"""A count of recent events per key over a sliding window (e.g. visitor accounts an
address made within the hour, PROTOCOL §9.1).

``full(key, now)`` says whether ``limit`` events of the key happened within the last
``window`` seconds; ``add(key, now)`` records one. Memory is bounded: a key keeps at most
``limit`` times, is dropped once its newest event left the window, and past ``max_keys``
the key with the oldest newest event goes first. Keys are kept in order of their newest
event, so dropping expired ones only ever looks at the front.
"""

from __future__ import annotations

from collections import deque

__all__ = ["SlidingWindow"]


class SlidingWindow:
    def __init__(self, limit: int, window: float, max_keys: int = 100_000) -> None:
        self._limit = limit
        self._window = window
        self._max_keys = max_keys
        self._seen: dict[str, deque[float]] = {}

    def full(self, key: str, now: float) -> bool:
        self._sweep(now)
        times = self._seen.get(key)
        if not times:
            return False
        while times[0] <= now - self._window:
            times.popleft()  # the newest is within the window, or _sweep had dropped the key
        return len(times) >= self._limit

    def add(self, key: str, now: float) -> None:
        self._sweep(now)
        times = self._seen.pop(key, None) or deque(maxlen=self._limit)
        times.append(now)
        self._seen[key] = times  # re-inserted: the dict stays in order of newest event
        while len(self._seen) > self._max_keys:
            del self._seen[next(iter(self._seen))]

    def __len__(self) -> int:
        return len(self._seen)

    def _sweep(self, now: float) -> None:
        seen = self._seen
        while seen:
            key = next(iter(seen))
            if seen[key][-1] > now - self._window:
                return
            del seen[key]
