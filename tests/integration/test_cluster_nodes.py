"""Hub nodes as separate processes on one private Redis: start-up refusals, a node killed
with SIGKILL, a node cut off from Redis by a proxy the test owns, and Redis restarting
without its data (SCALE.md "Failures")."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.cluster_services import cluster_services
from tests.conftest import postgres_database
from tests.integration.cluster_processes import LEASE, ClusterNodes, cluster
from tests.integration.processes import free_port
from tests.integration.test_startup_errors import assert_one_line, serve
from tests.signaling.bus.test_cross_node_presence import notify, watch
from tests.support import Phone
from tests.tcp_proxy import tcp_proxy


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
        config = "[messages]\nenabled = false\n[cluster]\n"
        config += f"redis = {json.dumps(redis)}\ndatabase = {json.dumps(database)}\n"
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


async def test_a_partitioned_node_fences_itself_and_serves_across_again_once_restarted(
    tmp_path: Path,
) -> None:
    """Node b's Redis connections hang (a proxy the test pauses) for longer than the
    others need to declare it dead: b fences itself first (the lease is 1.5 s: b at 1.2 s,
    a at 2.1 s at the earliest), a ends the call and tells bob's watcher ``closed`` once;
    back, b says it was declared dead and stays down until restarted; restarted, bob is
    reached across again."""
    async with cluster_services() as services, tcp_proxy(services.redis.port) as proxy:
        proxied = {"b": f"redis://127.0.0.1:{proxy.port}/0"}
        names = ("a", "b")
        nodes = ClusterNodes(
            tmp_path, services.redis.url, services.database, names, redis_for=proxied
        )
        try:
            await nodes.start()
            await _partitioned(nodes, proxy.pause, proxy.heal)
        except BaseException:
            print(nodes.logs())
            raise
        finally:
            proxy.heal()
            nodes.stop()


async def _partitioned(
    nodes: ClusterNodes, pause: Callable[[], None], heal: Callable[[], None]
) -> None:
    alice, bob = await nodes.phone("a", "alice"), await nodes.phone("b", "bob")
    carol = await nodes.phone("a", "carol")
    assert (await watch(carol, 1, "bob"))["status"] == "open"
    theirs = await call(alice, bob, 1)
    await exchange(alice, bob, 1, theirs, "before")
    pause()
    await _until_metric(nodes, "b", 'switchboard_bus_standing{standing="fenced"}', 1)
    assert (await bob.sig(theirs, "rel"))["sig"]["cau"]["num"] == 41
    released = await alice.next(timeout=LEASE * 4)  # a declares b dead
    assert released["sig"]["type"] == "rel" and released["sig"]["cau"]["num"] == 41
    assert await carol.fty(1) == notify("closed")
    await _until_metric(nodes, "a", "switchboard_bus_nodes", 1)
    heal()
    await _until_metric(nodes, "b", 'switchboard_bus_standing{standing="dead"}', 1)
    async with httpx.AsyncClient() as http:
        answer = await http.get(f"{nodes.http('b')}/healthz?ready=1")
    assert answer.status_code == 503 and answer.json()["checks"]["bus"] == "down"
    log = nodes.nodes["b"].log.read_text()
    assert log.index("fences itself") < log.index("declared dead by the others")
    await carol.sync()  # closed once, and no ghost
    nodes.nodes["b"].stop()
    await nodes.nodes["b"].start()  # a new run: its name was free
    bob = await nodes.phone("b", "bob")
    assert await carol.fty(1) == notify("open", "available")
    theirs = await call(alice, bob, 2)
    await exchange(alice, bob, 2, theirs, "after")


async def _until_metric(nodes: ClusterNodes, name: str, metric: str, value: float) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(200):
            page = (await http.get(f"{nodes.http(name)}/metrics")).text
            lines = [line for line in page.splitlines() if line.startswith(f"{metric} ")]
            if lines and float(lines[0].split()[-1]) == value:
                return
            await asyncio.sleep(0.05)
    raise AssertionError(f"node {name}: {metric} never {value}")
