"""Where the core collects what it wants sent; the I/O layer drains it after each event."""

from __future__ import annotations

from typing import Any

from .actions import Ack, Action, Close, Notify, Send, Store, StoredAck, ToService
from .codec import encode

__all__ = ["Outbox"]


class Outbox:
    __slots__ = ("_actions", "_pending")

    def __init__(self) -> None:
        self._actions: list[Action] = []
        self._pending: dict[int, int] = {}

    def send(self, conn: int, message: dict[str, Any]) -> None:
        self.send_text(conn, encode(message))

    def send_text(self, conn: int, text: str) -> None:
        """Send a frame the caller already encoded (the relay builds its own). Connection
        0 is a detached registration's (§4.9): nothing can reach it, so nothing is sent."""
        if not conn:
            return
        self._actions.append(Send(conn, text))
        self._pending[conn] = self._pending.get(conn, 0) + 1

    def ack(self, ack: Ack) -> None:
        """An ``im_ack`` the I/O layer may join with its neighbours (docs/protocol.md 12.31)."""
        if not ack.conn:
            return
        self._actions.append(ack)
        self._pending[ack.conn] = self._pending.get(ack.conn, 0) + 1

    def pending(self, conn: int) -> int:
        """Frames for ``conn`` collected since the last drain (not yet in its queue)."""
        return self._pending.get(conn, 0)

    def close(self, conn: int, code: int, reason: str) -> None:
        self._actions.append(Close(conn, code, reason))

    def to_service(self, message: dict[str, Any]) -> None:
        self._actions.append(ToService(message))

    def store(self, post: dict[str, Any], ack: StoredAck | None) -> None:
        self._actions.append(Store(post, ack))

    def notify(self, event: str, data: dict[str, Any]) -> None:
        self._actions.append(Notify(event, data))

    def drain(self) -> list[Action]:
        actions, self._actions = self._actions, []
        self._pending.clear()
        return actions
