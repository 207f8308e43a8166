"""What the nodes of a cluster share, made for one test: a private ``redis-server`` and a
scratch PostgreSQL database (``[cluster] redis`` and ``database``), the config of an
in-process node on them, and such nodes running."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

from config import Config
from tests.conftest import postgres_database
from tests.redis_server import RedisServer, private_redis
from tests.support import RunningServer, make_config, running_server

__all__ = ["ClusterServices", "cluster_services", "node_config", "running_nodes"]


@dataclass(frozen=True)
class ClusterServices:
    redis: RedisServer
    database: str
    """The PostgreSQL url of ``[cluster] database``."""


@contextlib.asynccontextmanager
async def cluster_services() -> AsyncIterator[ClusterServices]:
    async with private_redis() as redis, postgres_database("switchboard_cluster") as database:
        yield ClusterServices(redis, database)


def node_config(
    services: ClusterServices, node: str, config: Config | None = None, **cluster: Any
) -> Config:
    """Node ``node`` of a cluster on ``services`` (from ``config``, by default the test
    config without the messages service): a short lease, and rate limits out of the way
    (the test clock does not move, so a token bucket would never refill)."""
    config = config or make_config(messages=False, burst=5000, rate_close_after=5000)
    timing = {"lease": 1.5, "heartbeat": 0.3, **cluster}
    return replace(
        config,
        server=replace(config.server, node=node),
        cluster=replace(
            config.cluster, redis=services.redis.url, database=services.database, **timing
        ),
    )


@contextlib.asynccontextmanager
async def running_nodes(
    config: Callable[[ClusterServices, str], Config], *names: str
) -> AsyncIterator[tuple[ClusterServices, list[RunningServer]]]:
    """Fresh services and an in-process node on them for each of ``names``, each
    configured by ``config`` (e.g. ``node_config``)."""
    async with cluster_services() as services, contextlib.AsyncExitStack() as stack:
        running = [
            await stack.enter_async_context(running_server(config(services, name)))
            for name in names
        ]
        yield services, running
