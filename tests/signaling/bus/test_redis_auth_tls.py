"""``[cluster] redis`` with a password and over TLS (issue 17's interface: "Redis AUTH and
``rediss://`` work when given"): two in-process nodes on a private ``redis-server`` that
asks for a password, or speaks TLS only, see each other's users (presence reaches a
subscriber on the other node through Redis's data and pub/sub connections alike)."""

from __future__ import annotations

import contextlib
import secrets
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError

from tests.cluster_services import ClusterServices, node_config
from tests.conftest import postgres_database
from tests.integration.test_tls import self_signed
from tests.redis_server import RedisServer, private_redis
from tests.signaling.bus.test_cross_node_presence import notify, watch
from tests.support import running_server


async def _bob_seen_across(redis: RedisServer) -> None:
    async with (
        postgres_database("switchboard_cluster") as database,
        contextlib.AsyncExitStack() as stack,
    ):
        services = ClusterServices(redis, database)
        a, b = [
            await stack.enter_async_context(running_server(node_config(services, name)))
            for name in ("a", "b")
        ]
        alice = await a.phone("alice")
        assert await watch(alice, 1, "bob") == notify("closed")
        await b.phone("bob")
        assert await alice.fty(1) == notify("open", "available")


async def test_nodes_on_a_redis_that_asks_for_a_password() -> None:
    async with private_redis(password=secrets.token_hex(16)) as redis:
        stranger = aioredis.Redis.from_url(f"redis://127.0.0.1:{redis.port}/0")
        try:  # the password is needed
            with pytest.raises(AuthenticationError):
                await stranger.ping()
        finally:
            await stranger.aclose()
        await _bob_seen_across(redis)


async def test_nodes_on_a_redis_that_speaks_tls_only(tmp_path: Path) -> None:
    async with private_redis(tls=self_signed(tmp_path)) as redis:
        assert redis.url.startswith("rediss://")
        await _bob_seen_across(redis)
