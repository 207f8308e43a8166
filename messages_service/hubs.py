"""The logged-in hub connections, which every notification goes to (PROTOCOL §12.10).

Several hub nodes may be connected at once (DESIGN "Scaled"); each one gets every
``Badge``, ``Seen`` and ``GroupInd`` and decides itself whether a user of its own is
concerned. Sending never blocks: each connection queues its frames (see ``connection``).

With replicas of the service (docs/protocol.md 12.41) ``relay`` hands every notification
made here to the other replicas too, after this replica's own hubs have it, and
``deliver`` gives this replica's hubs what another replica made (never relayed again).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["HubConnections", "Peer"]

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]


class Peer(Protocol):
    """What this module needs of a connection."""

    def send(self, message: JsonObject) -> None: ...

    def close(self, code: int) -> None: ...

    async def wait_closed(self) -> None: ...


class HubConnections:
    def __init__(self) -> None:
        self._peers: set[Peer] = set()
        self._connected: set[Peer] = set()
        self.relay: Callable[[JsonObject], None] | None = None
        """Where notifications go besides this replica's hubs (``replicas``), if anywhere."""

    def connected(self, peer: Peer) -> None:
        """A WebSocket is open (logged in or not): ``close_all`` must reach it."""
        self._connected.add(peer)

    def logged_in(self, peer: Peer) -> None:
        self._peers.add(peer)

    def gone(self, peer: Peer) -> None:
        self._peers.discard(peer)
        self._connected.discard(peer)

    def broadcast(self, message: JsonObject) -> None:
        """A notification made here: to every hub of this replica, then to the others."""
        for peer in list(self._peers):
            peer.send(message)
        if self.relay is not None:
            self.relay(message)

    def deliver(self, message: JsonObject) -> None:
        """A notification another replica made: to every hub of this one."""
        for peer in list(self._peers):
            peer.send(message)

    def close_logged_in(self, code: int) -> None:
        """Close every logged-in hub's connection (it reconnects and asks its state again)."""
        for peer in list(self._peers):
            peer.close(code)

    def __len__(self) -> int:
        return len(self._peers)

    async def close_all(self, code: int, timeout: float) -> None:
        """Close every connection with ``code`` and wait (at most ``timeout``) until
        each has finished."""
        peers = list(self._connected)
        for peer in peers:
            peer.close(code)
        if not peers:
            return
        waiting = [asyncio.ensure_future(peer.wait_closed()) for peer in peers]
        _, pending = await asyncio.wait(waiting, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("%d connection(s) did not close in %.1f s", len(pending), timeout)
