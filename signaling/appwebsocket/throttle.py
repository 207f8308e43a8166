"""Failed-login throttling per source address and per account (PROTOCOL §3.6).

A key (``addr:<ip>`` or ``acct:<domain>/<name>``) is blocked once it has collected
``failures`` failed logins within the last ``window`` seconds (a sliding window: it frees
up as soon as fewer than ``failures`` of them are that recent). Throttled attempts are not
counted themselves, so hammering a blocked key does not extend the block.
Memory is bounded: past ``max_keys`` the oldest keys are forgotten.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

__all__ = ["LoginThrottle"]


class LoginThrottle:
    def __init__(self, failures: int, window: float, max_keys: int = 100_000) -> None:
        self._failures = failures
        self._window = window
        self._max_keys = max_keys
        self._seen: dict[str, deque[float]] = {}

    def blocked(self, keys: Iterable[str], now: float) -> bool:
        return any(self._recent(key, now) >= self._failures for key in keys)

    def failed(self, keys: Iterable[str], now: float) -> None:
        for key in keys:
            times = self._seen.pop(key, None) or deque(maxlen=self._failures)
            times.append(now)
            self._seen[key] = times  # re-insert: dict order is least recently failed first
        while len(self._seen) > self._max_keys:
            del self._seen[next(iter(self._seen))]

    def _recent(self, key: str, now: float) -> int:
        times = self._seen.get(key)
        if not times:
            return 0
        while times and times[0] <= now - self._window:
            times.popleft()
        return len(times)

    def held(self) -> int:
        """Keys remembered now; only failed logins add them."""
        return len(self._seen)
