"""What the sans-I/O core asks the I/O layer to do."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Action", "Close", "Send"]


@dataclass(slots=True)  # not frozen: one is built per relayed frame (see messages.py)
class Send:
    """Send ``text`` (one JSON frame) to connection ``conn``."""

    conn: int
    text: str


@dataclass(frozen=True, slots=True)
class Close:
    """Close connection ``conn`` with a WebSocket close code, after what is queued."""

    conn: int
    code: int
    reason: str


Action = Send | Close
