"""Running the app under uvicorn with the WebSocket settings the protocol needs.

``serve`` is what ``switchboard serve`` runs: the app's start-up (the messages database
opened and migrated, the outbox recovered, the hub's tasks started) completes *before*
uvicorn serves a single request, so that a start-up that fails raises its own exception
to the caller, which turns it into one line (``signaling.cli``), and ``ready`` (the
banner) runs only once the server really answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette

from config import Config

from .appwebsocket.liveness import ping_settings
from .appwebsocket.transport import endpoints_of, transport_protocol_for

__all__ = ["bound_socket", "loop_factory", "serve", "uvicorn_config"]


def uvicorn_config(
    app: Any, config: Config, *, log_level: str = "info", **overrides: Any
) -> uvicorn.Config:
    """A uvicorn config that enforces ``limits.max_frame`` (close 1009, PROTOCOL §1.1)."""
    options: dict[str, Any] = {
        "host": config.server.host,
        "port": config.server.port,
        # The AppWebsockets (the hub's, the messages service's) on the raw transport,
        # everything else through ASGI.
        "ws": transport_protocol_for(config.limits.idle_timeout, endpoints_of(app)),
        "ws_max_size": config.limits.max_frame,
        # permessage-deflate keeps ~40 KiB per connection (docs/benchmarks.md): opt-in.
        "ws_per_message_deflate": config.limits.compression,
        **ping_settings(config.limits.idle_timeout),
        "lifespan": "on",
        "log_level": log_level,
        # uvicorn's loggers go through the root logger configured by tracing.logs
        # (text or JSON lines, with the connection), not handlers of their own.
        "log_config": None,
        "server_header": False,
        # uvicorn's access log would write every url, capability keys and signatures
        # included; HTTP requests are traced (redacted) under the "http" flag instead.
        "access_log": False,
        "timeout_graceful_shutdown": 5,
    }
    if config.server.tls_cert:  # HTTPS and wss:// on the one port (docs/operations.md)
        options["ssl_certfile"] = config.server.tls_cert
        options["ssl_keyfile"] = config.server.tls_key
    options.update(overrides)
    return uvicorn.Config(app, **options)


def loop_factory(app: Any, config: Config) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop uvicorn itself would run ``serve`` on (``loop="auto"``: uvloop when
    it is installed), for callers that run ``serve`` under their own ``asyncio.Runner``."""
    return uvicorn_config(app, config).get_loop_factory()


def bound_socket(host: str, port: int) -> socket.socket:
    """A listening socket, so callers know the port before the server starts (port 0)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets that say so, and
    # without it Nagle delays the second of two small frames by ~40 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    # Listening before uvicorn serves lets the hub's link to an in-process messages
    # service connect during start-up: the kernel queues it until the server accepts.
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


async def serve(
    app: Starlette, config: Config, sock: socket.socket, *, ready: Callable[[], None]
) -> None:
    """Start ``app`` up, serve it on ``sock`` until SIGINT or SIGTERM, then shut it down.

    The lifespan runs here rather than inside uvicorn, whose lifespan turns any start-up
    exception into a logged traceback and ``sys.exit(3)``; here the exception reaches the
    caller untouched. Our lifespans yield no state, so none is lost by not going through
    uvicorn's lifespan protocol."""
    async with app.router.lifespan_context(app):
        server = _Server(uvicorn_config(app, config, lifespan="off"), ready)
        await server.serve(sockets=[sock])


class _Server(uvicorn.Server):
    """uvicorn's server, saying when it is ready and stopping without re-raising the
    signal that stopped it (uvicorn does, which would cancel the lifespan's shutdown)."""

    def __init__(self, config: uvicorn.Config, ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.should_exit:
            self._ready()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        stops = (signal.SIGINT, signal.SIGTERM)
        for number in stops:
            loop.add_signal_handler(number, self.handle_exit, number, None)
        try:
            yield
        finally:
            for number in stops:
                loop.remove_signal_handler(number)
