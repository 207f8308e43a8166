"""The composition root: builds the switch, hub and routes from one ``Config``.

``create_app`` is what ``switchboard serve``, the tests and the benchmarks start; the
Starlette lifespan starts and stops the hub's background task.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute

from config import Config
from signaling.appwebsocket.digest import new_challenge
from signaling.core.clock import Clock, SystemClock
from signaling.core.switch import Switch
from signaling.endpoint import pbx_websocket
from signaling.hub import Hub

__all__ = ["create_app"]

HUB_WEBSOCKET_PATH = "/PBX0/APPS/websocket"


def create_app(
    config: Config,
    *,
    clock: Clock | None = None,
    make_challenge: Callable[[], str] = new_challenge,
) -> Starlette:
    switch = Switch(config, clock or SystemClock(), make_challenge=make_challenge)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        hub = Hub(switch, send_queue=config.limits.send_queue)
        app.state.hub = hub
        await hub.start()
        # Everything alive now (modules, config, routes) lives as long as the process:
        # keep it out of the collector's full passes, which otherwise walk it all and
        # stall the relay for tens of milliseconds (docs/benchmarks.md).
        gc.freeze()
        try:
            yield
        finally:
            await hub.stop()

    app = Starlette(
        routes=[
            WebSocketRoute(HUB_WEBSOCKET_PATH, pbx_websocket),
            Route("/healthz", healthz),
        ],
        lifespan=lifespan,
    )
    app.state.switch = switch
    return app


async def healthz(request: Request) -> JSONResponse:
    """Liveness: the process serves requests and the hub runs."""
    hub: Hub | None = getattr(request.app.state, "hub", None)
    return JSONResponse(
        {"status": "ok" if hub is not None else "starting"},
        status_code=200 if hub is not None else 503,
    )
