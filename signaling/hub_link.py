"""Every connection's outbound side: its socket and, while it has something to send, a
bounded queue and the task that writes it (PROTOCOL §1.6: 4008 on overflow; DESIGN
"Principles").

``SendQueues`` holds them for every open connection. It is built before the switch and
the hub and given to both: the switch asks it whether a connection's queue would
overflow (``congested``), the hub fills the queues. The hub makes a connection's
``Link`` for its first frame and drops it once everything is sent. Besides frames and
the close, the queue may hold a *gate*, a future: what follows it waits until it is
done (a RegisterResult in a cluster waits for Redis, docs 12.39), while what was queued
before it still goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Protocol

from starlette.websockets import WebSocketDisconnect, WebSocketDisconnected

from signaling.appwebsocket import closecodes
from tracing.logs import connection_task_name

__all__ = ["CloseItem", "Gate", "Link", "Peer", "SendQueues", "WirePeer", "close_quietly"]

log = logging.getLogger(__name__)


class Peer(Protocol):
    """The part of a Starlette WebSocket the hub uses."""

    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


class WirePeer(Peer, Protocol):
    """A peer the hub may also write to synchronously (``signaling.hub_socket``): frames written
    while ``writable_now`` go out at the end of this turn of the loop, without a task."""

    writable_now: bool

    def write_text(self, text: str) -> None: ...


CloseItem = tuple[int, str]
Gate = asyncio.Future[None]
"""In a connection's queue: what follows waits until it is done (docs 12.39)."""


class Link:
    """One connection's outbound side while it has something to send: a bounded FIFO and
    the task draining it (PROTOCOL §1.6: 4008 on overflow).

    Made for the first frame and dropped, with its queue and task, once everything is
    sent, so an idle connection costs none of them; one that is closing keeps its link
    until it is gone, so that nothing more is queued for it."""

    __slots__ = ("closing", "conn_id", "items", "links", "peer", "writer")

    def __init__(self, peer: Peer, conn_id: int, links: dict[int, Link]) -> None:
        self.peer = peer
        self.conn_id = conn_id
        self.links = links
        """The hub's links, which this one leaves when it has sent everything."""
        self.items: deque[str | CloseItem | Gate] = deque()
        self.closing = False
        self.writer: asyncio.Task[None] | None = None

    def push(self, item: str | CloseItem | Gate, limit: int) -> bool:
        """Queue a frame (or the close); False when ``limit`` frames already wait."""
        items = self.items
        if len(items) >= limit:
            return False
        items.append(item)
        if self.writer is None:
            # Named after the connection: its log lines are about this connection, not
            # the one whose event caused the frame.
            name = connection_task_name(self.conn_id)
            self.writer = asyncio.get_running_loop().create_task(self._write(), name=name)
        return True

    def stop(self) -> None:
        self.items.clear()
        if self.writer is not None:
            self.writer.cancel()

    async def _write(self) -> None:
        items, peer = self.items, self.peer
        try:
            while items:
                item = items.popleft()
                if isinstance(item, str):
                    await peer.send_text(item)
                elif isinstance(item, tuple):
                    items.clear()
                    await peer.close(*item)
                else:
                    await item
        except asyncio.CancelledError:
            raise
        except (OSError, WebSocketDisconnect, WebSocketDisconnected) as exc:
            # The peer went away mid-send; its reader sees that too and detaches.
            log.debug("send failed: %r", exc)
            self.closing = True
            items.clear()
        except Exception:
            # Never leave a live connection deaf: close it so the client reconnects.
            log.exception("a frame could not be sent; closing the connection with 1011")
            await close_quietly(peer, closecodes.WS_1011_INTERNAL_ERROR, "internal error")
        finally:
            self.writer = None
            if not items and not self.closing and self.links.get(self.conn_id) is self:
                del self.links[self.conn_id]


async def close_quietly(peer: Peer, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await peer.close(code, reason)


class SendQueues:
    """Every open connection's socket and, while it has frames waiting or is closing, its
    ``Link``, by connection id; at most ``limit`` frames wait for one connection."""

    __slots__ = ("limit", "links", "peers", "wired")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.peers: dict[int, Peer] = {}
        self.wired: dict[int, WirePeer] = {}
        """The peers among them that take synchronous writes."""
        self.links: dict[int, Link] = {}
        """Connections with frames waiting to be sent, or closing (see ``Link``)."""

    def congested(self, conn_id: int, pending: int) -> bool:
        """Would the connection's queue overflow with ``pending`` more frames (those the
        switch's current event already made for it) and one more? What the switch asks."""
        if conn_id not in self.peers:
            return False
        link = self.links.get(conn_id)
        return (0 if link is None else len(link.items)) + pending >= self.limit

    def add(self, conn_id: int, peer: Peer) -> None:
        self.peers[conn_id] = peer
        if hasattr(peer, "write_text"):
            self.wired[conn_id] = peer  # type: ignore[assignment]

    def remove(self, conn_id: int) -> Link | None:
        """The connection is gone; its link, if it had one, is returned to be stopped."""
        self.peers.pop(conn_id, None)
        self.wired.pop(conn_id, None)
        return self.links.pop(conn_id, None)

    def link(self, conn_id: int) -> Link | None:
        """The connection's link, made now if it has none; None if it is gone."""
        link = self.links.get(conn_id)
        if link is not None:
            return link
        peer = self.peers.get(conn_id)
        if peer is None:
            return None
        link = self.links[conn_id] = Link(peer, conn_id, self.links)
        return link
