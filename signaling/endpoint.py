"""The client WebSocket endpoint ``/PBX0/APPS/websocket`` (PROTOCOL §2).

It only moves frames between Starlette and the hub: text frames in, binary frames
refused, the close code passed on so the core can tell a clean close from a lost link.
"""

from __future__ import annotations

from starlette.websockets import WebSocket, WebSocketDisconnect

from signaling.hub import Hub
from tracing.logs import name_connection

__all__ = ["HUB_WEBSOCKET_PATH", "pbx_websocket"]

HUB_WEBSOCKET_PATH = "/PBX0/APPS/websocket"
"""Served by ``signaling.hub_socket`` without ASGI under ``switchboard serve``; this endpoint
serves it for any other ASGI server."""

_CLEAN_CLOSE = frozenset({1000, 1001})


async def pbx_websocket(websocket: WebSocket) -> None:
    hub: Hub = websocket.app.state.hub
    await websocket.accept()
    address = websocket.client.host if websocket.client else "unknown"
    conn_id = hub.attach(websocket, address)
    name_connection(conn_id)  # this task's log lines name the connection
    clean = False
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                clean = message.get("code", 1000) in _CLEAN_CLOSE
                break
            text = message.get("text")
            if text is not None:
                hub.receive(conn_id, text)
            else:
                hub.receive_binary(conn_id)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        await hub.detach(conn_id, clean)
