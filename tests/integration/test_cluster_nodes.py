"""Hub nodes as separate processes on one private Redis: start-up refusals, a node killed
with SIGKILL, and Redis restarting without its data (SCALE.md "Failures")."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from tests.cluster_services import cluster_services
from tests.conftest import postgres_database
from tests.integration.cluster_processes import LEASE, ClusterNodes
from tests.integration.processes import free_port
from tests.integration.test_startup_errors import assert_one_line, serve
from tests.redis_server import RedisServer
from tests.support import Phone


@contextlib.asynccontextmanager
async def cluster(tmp_path: Path, *names: str) -> AsyncIterator[tuple[RedisServer, ClusterNodes]]:
    async with cluster_services() as services:
        redis = services.redis
        nodes = ClusterNodes(tmp_path, redis.url, services.database, names)
        try:
            await nodes.start()
            yield redis, nodes
        except BaseException:
            print(nodes.logs())
            raise
        finally:
            nodes.stop()


async def call(caller: Phone, callee: Phone, number: int) -> int:
    """``caller`` calls ``callee`` on call ``number``; the callee answers. Its call number."""
    await caller.setup(number, callee.sip)
    await caller.sig(number, "call_proc")
    theirs, _ = await callee.offered()
    await callee.signal(theirs, {"type": "conn"})
    await caller.sig(number, "conn")
    return theirs


async def exchange(caller: Phone, callee: Phone, number: int, theirs: int, text: str) -> None:
    await caller.say(number, text, id=text)
    assert (await callee.fty(theirs))["data"] == text
    assert (await caller.fty(number))["state"] == "delivered"


async def test_a_second_node_of_a_live_node_s_name_is_refused(tmp_path: Path) -> None:
    async with cluster(tmp_path, "a") as (_, nodes):
        config = nodes.config.read_text()
        (tmp_path / "twin").mkdir()
        result = await asyncio.to_thread(serve, tmp_path / "twin", config, "--node", "a")
        assert_one_line(result, "server.node", "another live node is named 'a'")
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("switchboard: cannot start: server.node: another live node is")
        assert "'a'" in line and "--node NAME" in line


async def test_a_node_whose_redis_does_not_answer_is_refused(tmp_path: Path) -> None:
    async with postgres_database("switchboard_cluster") as database:
        redis = f"redis://127.0.0.1:{free_port()}/0"
        config = f"[cluster]\nredis = {json.dumps(redis)}\ndatabase = {json.dumps(database)}\n"
        result = await asyncio.to_thread(serve, tmp_path, config, "--node", "a")
    assert_one_line(result, "cluster.redis", "cannot reach Redis at ")
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("switchboard: cannot start: cluster.redis: cannot reach Redis at ")


async def test_chat_across_nodes_and_the_callee_s_node_killed(tmp_path: Path) -> None:
    async with cluster(tmp_path, "a", "b") as (_, nodes):
        alice, bob = await nodes.phone("a", "alice"), await nodes.phone("b", "bob")
        theirs = await call(alice, bob, 1)
        await exchange(alice, bob, 1, theirs, "before")
        async with httpx.AsyncClient() as http:
            health = (await http.get(f"{nodes.http('a')}/healthz?ready=1")).json()
        assert health["checks"]["bus"] == "up"
        nodes.nodes["b"].kill()
        # within a lease and a heartbeat node a ends the call as a lost link would
        released = await alice.next(timeout=LEASE * 4)
        assert released["sig"]["type"] == "rel" and released["sig"]["cau"]["num"] == 41
        # bob comes back on node b, started again once its old lease ran out
        await asyncio.sleep(LEASE)
        await nodes.nodes["b"].start()
        bob = await nodes.phone("b", "bob")
        theirs = await call(alice, bob, 2)
        await exchange(alice, bob, 2, theirs, "after")


async def test_redis_restarting_empty_loses_nothing_the_nodes_know(tmp_path: Path) -> None:
    async with cluster(tmp_path, "a", "b") as (redis, nodes):
        alice, bob = await nodes.phone("a", "alice"), await nodes.phone("b", "bob")
        redis.kill()
        await redis.start()  # the same port, no data: no leases, no registrations
        # each node writes its lease and its registrations again within a heartbeat or
        # two; a new call finds bob where he is
        client = redis.client()
        try:
            for _ in range(100):
                if await client.hlen("sb:reg:{cluster.test:bob}"):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("bob's registration was never written again")
        finally:
            await client.aclose()
        theirs = await call(alice, bob, 1)
        await exchange(alice, bob, 1, theirs, "after the restart")
