"""Running the app under uvicorn with the WebSocket settings the protocol needs."""

from __future__ import annotations

import socket
from typing import Any

import uvicorn

from config import Config

from .liveness import ping_settings, protocol_for

__all__ = ["uvicorn_config"]


def uvicorn_config(
    app: Any, config: Config, *, log_level: str = "info", **overrides: Any
) -> uvicorn.Config:
    """A uvicorn config that enforces ``limits.max_frame`` (close 1009, PROTOCOL §1.1)."""
    options: dict[str, Any] = {
        "host": config.server.host,
        "port": config.server.port,
        "ws": protocol_for(config.limits.idle_timeout),
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
    options.update(overrides)
    return uvicorn.Config(app, **options)


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
