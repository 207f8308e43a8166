"""Durations and sizes as people write them in a config file: ``"30s"``, ``"256K"``.

Both parsers also accept plain numbers (seconds, bytes) because that is what an older file or
a quick environment override will contain. Sizes are always binary: ``K`` and ``KiB`` both
mean 1024, so ``"256K"`` is exactly the 262144 a WebSocket frame limit is usually set to.
Errors are ``ValueError`` with a message meant to follow ``"<dotted key>: "``.
"""

from __future__ import annotations

import math
import re

from .errors import shown_value

__all__ = ["parse_duration", "parse_size"]

_DURATION = re.compile(r"(?P<number>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>ms|s|m|h)?", re.IGNORECASE)
_SECONDS_PER_UNIT = {"": 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

_SIZE = re.compile(r"(?P<number>\d+)\s*(?P<unit>b|k|kib|m|mib|g|gib)?", re.IGNORECASE)
_BYTES_PER_UNIT = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gib": 1024**3,
}


def parse_duration(value: str | int | float) -> float:
    """Seconds from ``30``, ``1.5``, ``"500ms"``, ``"30s"``, ``"2m"``, ``"1h"`` or ``"30"``.

    Negative, infinite and NaN durations are rejected: no timer in the hub means anything
    sensible with them, and accepting them would only move the error to run time.
    """
    if isinstance(value, bool):
        raise ValueError(_expected_duration(value))
    if isinstance(value, int | float):
        return _non_negative_seconds(float(value), value)
    if isinstance(value, str):
        return _duration_from_text(value)
    raise ValueError(_expected_duration(value))


def parse_size(value: str | int) -> int:
    """Bytes from ``1024``, ``"1024"``, ``"1024B"``, ``"64k"``, ``"256KiB"``, ``"10M"``, ``"1G"``.

    Only whole numbers of a unit are accepted (no ``"1.5M"``), so every size has one exact
    byte value and no rounding question arises.
    """
    if isinstance(value, bool):
        raise ValueError(_expected_size(value))
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a size must not be negative, got {value}")
        return value
    if isinstance(value, str):
        return _size_from_text(value)
    raise ValueError(_expected_size(value))


def _duration_from_text(text: str) -> float:
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        if text.strip().startswith("-"):
            raise ValueError(f"a duration must not be negative, got {shown_value(text)}")
        raise ValueError(_expected_duration(text))
    unit = (match["unit"] or "").lower()
    return _non_negative_seconds(float(match["number"]) * _SECONDS_PER_UNIT[unit], text)


def _non_negative_seconds(seconds: float, original: object) -> float:
    if not math.isfinite(seconds):
        raise ValueError(_expected_duration(original))
    if seconds < 0:
        raise ValueError(f"a duration must not be negative, got {shown_value(original)}")
    return seconds


def _size_from_text(text: str) -> int:
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        if text.strip().startswith("-"):
            raise ValueError(f"a size must not be negative, got {shown_value(text)}")
        raise ValueError(_expected_size(text))
    unit = (match["unit"] or "").lower()
    return int(match["number"]) * _BYTES_PER_UNIT[unit]


def _expected_duration(value: object) -> str:
    return f'expected a duration like "30s", got {shown_value(value)}'


def _expected_size(value: object) -> str:
    return f'expected a size like "256K", got {shown_value(value)}'
