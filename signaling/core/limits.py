"""Per-connection limits: a token bucket for the message rate (PROTOCOL §4.11)."""

from __future__ import annotations

import math
from typing import Protocol

__all__ = ["Level", "TokenBucket"]


class Level(Protocol):
    """What one connection keeps of its bucket: the tokens left when last counted."""

    tokens: float
    counted: float
    """When ``tokens`` was counted (the clock's monotonic time)."""


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; each message takes one.

    One bucket describes the rule for every connection; each connection keeps only its
    ``Level`` (two numbers in its own slots), so an idle connection holds no bucket
    object of its own. ``take(level, now)`` returns 0 when the message may pass, else
    the milliseconds until a token is back (the ``retry_after_ms`` the client is told).
    """

    __slots__ = ("_burst", "_rate")

    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = float(burst)

    def fill(self, level: Level, now: float) -> None:
        """A new connection starts with a full bucket."""
        level.tokens = self._burst
        level.counted = now

    def take(self, level: Level, now: float) -> int:
        tokens = level.tokens + (now - level.counted) * self._rate
        if tokens > self._burst:
            tokens = self._burst
        level.counted = now
        if tokens >= 1.0:
            level.tokens = tokens - 1.0
            return 0
        level.tokens = tokens
        return max(1, math.ceil((1.0 - tokens) / self._rate * 1000.0))
