"""A bare Starlette WebSocket echo and a bare JSON relay: what our stack does without us.

``bench/relay.py`` runs it next to Switchboard to answer one question: how many frames per
second can uvicorn + Starlette + websockets move at all when the application does nothing
but hand every text frame straight back? Whatever the relay loses against this number is
spent in Switchboard's own code (JSON, protocol state, per-connection send queues).

Its second route, ``/relay/{pair}``, is the naive relay Switchboard is measured against:
the two connections that open the same ``pair`` are each other's peer, and every text frame
is parsed and re-encoded (``json``) and sent to the peer, awaited in the sender's own
reader loop. No login, no state, no acknowledgement, no send queue.

Its third route, ``/fanout/{group}``, is the naive fan-out the hub's group chat is measured
against: every connection that opens the same ``group`` is a member, and every text frame
from one of them is parsed and re-encoded (``json``) once and sent to each of the others in
turn, awaited in the sender's reader loop (1-to-9 for a group of 10).

Run it like the server, so that the two differ only in the application::

    .venv/bin/python bench/echo_app.py --config bench.toml --port 9001

The launcher below builds its uvicorn settings with ``signaling.server.uvicorn_config``,
the very function ``switchboard serve`` uses (ws="websockets-sansio", the same
``ws_max_size``, ping interval, loop "auto", one process), with the access log off.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

__all__ = ["ECHO_PATH", "FANOUT_PATH", "RELAY_PATH", "app"]

ECHO_PATH = "/echo"
RELAY_PATH = "/relay"
FANOUT_PATH = "/fanout"

_rooms: dict[str, list[WebSocket]] = {}
"""The connections of each pair, by the pair's name in the path."""

_groups: dict[str, list[WebSocket]] = {}
"""The connections of each fan-out group, by the group's name in the path."""


async def echo(websocket: WebSocket) -> None:
    """Send every text frame back as it came; read the same way Switchboard's endpoint does.

    ``websocket.receive()`` (not ``receive_text``) mirrors ``signaling.endpoint`` so both
    sides pay for the same ASGI plumbing per frame. Binary frames are ignored.
    """
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is not None:
                await websocket.send_text(text)
    except (WebSocketDisconnect, RuntimeError):
        return


async def relay(websocket: WebSocket) -> None:
    """The pair's other party gets every text frame, parsed and encoded again."""
    await _forward(websocket, _rooms, websocket.path_params["pair"])


async def fanout(websocket: WebSocket) -> None:
    """Every other member of the group gets every text frame, parsed and encoded again
    once for all of them."""
    await _forward(websocket, _groups, websocket.path_params["group"])


async def _forward(websocket: WebSocket, rooms: dict[str, list[WebSocket]], name: str) -> None:
    """Parse every text frame, encode it again and send it to the room's other members.

    The connection joins its room before the handshake completes, so once every client
    has its upgrade answered each finds the others. A frame with nobody else is dropped.
    """
    room = rooms.setdefault(name, [])
    room.append(websocket)
    try:
        await websocket.accept()
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                continue
            out = json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
            for peer in room:
                if peer is not websocket:
                    await peer.send_text(out)
    except (WebSocketDisconnect, RuntimeError, OSError):
        return
    finally:
        room.remove(websocket)
        if not room:
            rooms.pop(name, None)


app = Starlette(
    routes=[
        WebSocketRoute(ECHO_PATH, echo),
        WebSocketRoute(RELAY_PATH + "/{pair}", relay),
        WebSocketRoute(FANOUT_PATH + "/{group}", fanout),
    ]
)


def main(argv: list[str] | None = None) -> None:
    """Serve ``app`` with Switchboard's uvicorn settings (see the module docstring)."""
    import uvicorn

    from config import load_config
    from signaling.server import uvicorn_config

    parser = argparse.ArgumentParser(description="bare uvicorn + Starlette echo server")
    parser.add_argument("--config", type=Path, help="Switchboard TOML (for ws_max_size)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    options = uvicorn_config(
        app,
        config,
        log_level=args.log_level,
        host=args.host,
        port=args.port,
        access_log=False,
    )
    uvicorn.Server(options).run()


if __name__ == "__main__":
    main()
