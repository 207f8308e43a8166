"""Per-connection limits: a token bucket for the message rate (PROTOCOL §4.11)."""

from __future__ import annotations

import math

__all__ = ["TokenBucket"]


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; each message takes one.

    ``take(now)`` returns 0 when the message may pass, else the milliseconds until a
    token is back (the ``retry_after_ms`` the client is told).
    """

    __slots__ = ("_burst", "_last", "_rate", "_tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last = now

    def take(self, now: float) -> int:
        tokens = self._tokens + (now - self._last) * self._rate
        if tokens > self._burst:
            tokens = self._burst
        self._last = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return 0
        self._tokens = tokens
        return max(1, math.ceil((1.0 - tokens) / self._rate * 1000.0))
