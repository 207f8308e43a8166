"""Reading a frame's JSON fast and exactly as ``json`` reads it: shared by the hub's codec
and the messages service's connection.

orjson reads a frame in a fraction of ``json``'s time and to the same value, but for
two things: an integer beyond 64 bits, which orjson reads as a float where ``json``
keeps it an integer, and what orjson refuses (NaN, 1e400, lone surrogates, nesting too
deep), which ``json`` may accept or refuses in its own words. ``loads`` gives orjson only
frames without a long number, and hands everything else to the caller's ``json``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["loads"]

_DIGITS_ONLY = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
"""A ``bytes.translate`` table: every ASCII digit becomes ``0``, every other byte a blank."""
_LONG_NUMBER = b"0" * 19
"""Any integer beyond 64 bits is a run of at least 19 digits (a JSON number has no
leading zeros)."""


def loads(text: str, fallback: Callable[[str], Any]) -> Any:
    """``text`` read by orjson where it reads exactly what ``json`` reads, else by
    ``fallback`` (a ``json`` decoder), whose errors pass through.

    A long number is looked for as 19 ASCII digits in a row anywhere in the frame (in a
    string too, which only costs that frame the slower ``fallback``): the frame's bytes
    put through a translation table and a substring search, both in C, a tenth of what a
    regular expression's scan costs (docs/benchmarks.md). UTF-8 never puts an ASCII byte
    inside another character, so the digits of the bytes are those of the text. ``find``,
    not ``in``: on bytes, ``in`` first tries its operand as an integer, and raising and
    clearing that TypeError cost more than the search."""
    if text.encode("utf-8", "surrogatepass").translate(_DIGITS_ONLY).find(_LONG_NUMBER) < 0:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return fallback(text)
