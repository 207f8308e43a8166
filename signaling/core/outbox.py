"""Where the core collects what it wants sent; the I/O layer drains it after each event."""

from __future__ import annotations

from typing import Any

from .actions import Action, Close, Send
from .codec import encode

__all__ = ["Outbox"]


class Outbox:
    __slots__ = ("_actions",)

    def __init__(self) -> None:
        self._actions: list[Action] = []

    def send(self, conn: int, message: dict[str, Any]) -> None:
        self._actions.append(Send(conn, encode(message)))

    def send_text(self, conn: int, text: str) -> None:
        """Send a frame the caller already encoded (the relay builds its own)."""
        self._actions.append(Send(conn, text))

    def close(self, conn: int, code: int, reason: str) -> None:
        self._actions.append(Close(conn, code, reason))

    def drain(self) -> list[Action]:
        actions, self._actions = self._actions, []
        return actions
