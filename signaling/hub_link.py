"""One connection's outbound side while it has something to send: a bounded queue and
the task that writes it (PROTOCOL §1.6: 4008 on overflow; DESIGN "Principles").

The hub makes a ``Link`` for a connection's first frame and drops it once everything is
sent. Besides frames and the close, the queue may hold a *gate*, a future: what follows
it waits until it is done (a RegisterResult in a cluster waits for Redis, docs 12.39),
while what was queued before it still goes.
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

__all__ = ["CloseItem", "Gate", "Link", "Peer", "close_quietly"]

log = logging.getLogger(__name__)


class Peer(Protocol):
    """The part of a Starlette WebSocket the hub uses."""

    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


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
