"""The hub's client WebSocket on the transport: ``/PBX0/APPS/websocket`` (docs/protocol.md
12.29).

``hub_endpoint`` serves the path with ``signaling.appwebsocket.transport``: a complete text
message goes to ``hub.receive`` from the transport's ``data_received``, every frame of one
read is one batch for the hub (the acks they cause may leave as one, 12.31), and the hub
writes its frames synchronously while the transport has room. Past the high-water mark
its frames wait in the connection's bounded send queue, drained through ``send_text`` as
the buffer empties, and a client that lets the queue overflow is closed 4008 (``Hub``'s
policy, unchanged).
"""

from __future__ import annotations

from collections.abc import Coroutine
from functools import partial
from typing import Any

from starlette.applications import Starlette

from .appwebsocket import closecodes
from .appwebsocket.transport import CLOSED, Endpoint, Served, TransportSocket
from .hub import Hub

__all__ = ["hub_endpoint"]

_CLEAN_CLOSE = frozenset({1000, 1001})


def hub_endpoint(app: Starlette) -> Endpoint:
    """The hub's path, served by ``app.state.hub`` (set once the app has started)."""

    def serve(socket: TransportSocket) -> Served:
        hub: Hub | None = getattr(app.state, "hub", None)
        if hub is None:  # not started: nothing to attach to, come back later
            socket.close_now(closecodes.WS_1012_SERVICE_RESTART)
            return CLOSED
        conn_id = hub.attach(socket, socket.address())
        return Served(
            name=str(conn_id),
            text=partial(hub.receive, conn_id),
            texts=partial(hub.receive_all, conn_id),
            binary=partial(hub.receive_binary, conn_id),
            gone=partial(_detach, hub, conn_id),
            begin=hub.begin_batch,
            end=hub.end_batch,
        )

    return serve


def _detach(hub: Hub, conn_id: int, code: int) -> Coroutine[Any, Any, None]:
    """The hub hears of the close as the ASGI endpoint told it on ``websocket.disconnect``."""
    return hub.detach(conn_id, code in _CLEAN_CLOSE)
