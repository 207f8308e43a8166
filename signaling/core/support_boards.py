"""Who watches each queue's board, and what they are told (PROTOCOL §9.3, docs 12.46).

Theory of operation: a connection of one of a queue's agents subscribes to its board
and gets every chat of the queue (``QueueInd``), then each update on the ``src`` it
subscribed with. A standalone switch holds every support chat, so its own chats are
the whole board. In a cluster a chat lives on its home switch (the visitor's), and an
agent's board may be on any switch: the updates of the chats homed here go to the other
switches too, and a board here also lists, and follows, the chats homed elsewhere. That
is the ``SharedBoards`` a switch is given: ``LocalBoards`` (nothing to share) alone,
the cluster's (``nodes.boards``) in a cluster, which also carries a Queue request about
a chat homed elsewhere to its home.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from .frames import board as board_update
from .messages import Inbound
from .outbox import Outbox
from .registry import Registration

__all__ = ["Boards", "LocalBoards", "QueueRequest", "SharedBoards"]

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class QueueRequest:
    """A ``Take``, ``Transfer`` or ``Close`` (§9.4) naming a chat not homed here."""

    conn: int
    inbound: Inbound
    reg: Registration | None
    domain: str
    sip: str
    named: str
    """The chat as the request names it (a ``confId``, or a leg's ``callId``)."""


class SharedBoards(Protocol):
    def tell(self, domain: str, queue: str, mt: str, body: JsonObject, kept: bool) -> None:
        """An update of a chat homed here, for the boards of the other switches; ``kept``:
        the chat stays on that queue's board."""

    def chats(self, domain: str, queue: str) -> list[JsonObject]:
        """The chats of the queue homed on other switches."""

    def ask(self, request: QueueRequest) -> bool:
        """Send the request to the home of the chat it names: False when no other switch
        is known to hold that chat (then it is ``not_found``)."""

    def agent_changed(self, domain: str, sip: str, queues: list[str]) -> None:
        """Agent ``sip`` of ``queues`` may take chats now: the switches holding waiting
        chats of those queues offer them again."""


class LocalBoards:
    """A standalone switch: every chat is here, nothing to tell or ask."""

    __slots__ = ()

    def tell(self, domain: str, queue: str, mt: str, body: JsonObject, kept: bool) -> None:
        pass

    def chats(self, domain: str, queue: str) -> list[JsonObject]:
        return []

    def ask(self, request: QueueRequest) -> bool:
        return False

    def agent_changed(self, domain: str, sip: str, queues: list[str]) -> None:
        pass


class Boards:
    """The board subscriptions of this switch's connections."""

    def __init__(self, outbox: Outbox, shared: SharedBoards) -> None:
        self._out = outbox
        self._shared = shared
        self._boards: dict[tuple[str, str], dict[int, object]] = {}
        """(domain, queue sip) -> {connection: the src of its Subscribe}."""

    def follow(
        self, conn: int, src: object, domain: str, queue: str, here: Iterable[JsonObject]
    ) -> None:
        """``conn`` subscribes: it gets the queue's chats, those homed here (``here``)
        and elsewhere, then every update."""
        self._boards.setdefault((domain, queue), {})[conn] = src
        for chat in [*here, *self._shared.chats(domain, queue)]:
            self._out.send(conn, board_update(src, "QueueInd", {"chat": chat}))

    def unfollow(self, conn: int, domain: str, queue: str) -> None:
        board = self._boards.get((domain, queue))
        if board is not None and board.pop(conn, None) is not None and not board:
            del self._boards[(domain, queue)]

    def update(self, domain: str, queue: str, mt: str, body: JsonObject) -> None:
        """An update of a chat homed here: for this switch's boards and the others'."""
        self.here(domain, queue, mt, body)
        kept = mt != "ChatClosed" and body["chat"]["queue"] == queue
        self._shared.tell(domain, queue, mt, body, kept)

    def here(self, domain: str, queue: str, mt: str, body: JsonObject) -> None:
        """An update for the boards of this switch's connections only."""
        for conn, src in self._boards.get((domain, queue), {}).items():
            self._out.send(conn, board_update(src, mt, body))

    def connection_closed(self, conn: int) -> None:
        for key, board in list(self._boards.items()):
            if board.pop(conn, None) is not None and not board:
                del self._boards[key]

    def __len__(self) -> int:
        return len(self._boards)
