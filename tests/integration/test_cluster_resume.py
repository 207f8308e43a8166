"""Resume on any node (docs 12.43; SCALE.md decision 7) with hub nodes as separate
processes on one private Redis: a client whose link drops comes back on another node
while its peer keeps writing and misses nothing, sees nothing twice; a client whose node
is killed with SIGKILL resumes on another node within the grace and its call goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from tests.cluster_services import cluster_services
from tests.integration.cluster_processes import LEASE, ClusterNodes
from tests.support import acks_until_delivered, answer_resumed, answered_call

GRACE = 20.0


@contextlib.asynccontextmanager
async def cluster(tmp_path: Path, *names: str) -> AsyncIterator[ClusterNodes]:
    async with cluster_services() as services:
        nodes = ClusterNodes(tmp_path, services.redis.url, services.database, names, grace=GRACE)
        try:
            await nodes.start()
            yield nodes
        except BaseException:
            print(nodes.logs())
            raise
        finally:
            nodes.stop()


async def test_resume_on_another_node_while_the_peer_keeps_writing(tmp_path: Path) -> None:
    async with cluster(tmp_path, "a", "b", "c") as nodes:
        alice, bob = await nodes.phone("a", "alice"), await nodes.phone("b", "bob")
        conf, number = await answered_call(alice, bob)
        for n in range(1, 21):
            await alice.say(1, f"before {n}", id=f"m{n}")
        seen = [(await bob.fty(number))["seq"] for _ in range(20)]
        assert seen == list(range(1, 21))
        bob.client._ws.transport.abort()  # a network blink: the link is gone, no close

        async def keep_writing() -> None:
            for n in range(21, 221):
                await alice.say(1, f"meanwhile {n}", id=f"m{n}")
                await asyncio.sleep(0.002)

        writer = asyncio.create_task(keep_writing())
        again, result = await nodes.resume("c", bob, {conf: seen[-1]})
        assert result["resumed"] is True
        number = await answer_resumed(again, conf)
        await writer
        seqs = [(await again.fty(number))["seq"] for _ in range(200)]
        assert seqs == list(range(21, 221))  # no gap, no duplicate
        states = await acks_until_delivered(alice, 220)
        assert all(got in (["delivered"], ["held", "delivered"]) for got in states.values())
        await again.say(number, "from node c", id="r1")
        assert (await alice.fty(1))["seq"] == 221
        assert (await again.fty(number))["state"] == "delivered"
        await alice.sync()
        await again.sync()


async def test_the_callee_resumes_elsewhere_after_its_node_is_killed(tmp_path: Path) -> None:
    async with cluster(tmp_path, "a", "b", "c") as nodes:
        alice, bob = await nodes.phone("a", "alice"), await nodes.phone("b", "bob")
        conf, number = await answered_call(alice, bob)
        await alice.say(1, "before", id="m1")
        assert (await bob.fty(number))["seq"] == 1
        assert (await alice.fty(1))["state"] == "delivered"
        nodes.nodes["b"].kill()
        await alice.say(1, "while b is gone", id="m2")
        await _nodes_seen(nodes, "a", 2)  # node a declared b dead: bob's call waits for him
        again, result = await nodes.resume("c", bob, {conf: 1})
        assert result["resumed"] is True
        number = await answer_resumed(again, conf)
        assert (await again.fty(number))["seq"] == 2
        assert await acks_until_delivered(alice, 1) == {"m2": ["held", "delivered"]}
        await alice.say(1, "after", id="m3")
        assert (await again.fty(number))["seq"] == 3
        await again.say(number, "bob on node c", id="r1")
        frames = [await alice.fty(1) for _ in range(2)]
        assert [(f["type"], f["seq"]) for f in frames] == [("im_ack", 3), ("im_message", 4)]
        assert (await again.fty(number))["state"] == "delivered"
        await alice.sync()
        await again.sync()


async def _nodes_seen(nodes: ClusterNodes, name: str, count: int) -> None:
    """Until node ``name`` counts ``count`` live nodes (its heartbeat declared one dead)."""
    async with httpx.AsyncClient() as http:
        for _ in range(int(LEASE * 4 / 0.05)):
            page = (await http.get(f"{nodes.http(name)}/metrics")).text
            lines = [
                line for line in page.splitlines() if line.startswith("switchboard_bus_nodes ")
            ]
            if lines and float(lines[0].split()[-1]) == count:
                return
            await asyncio.sleep(0.05)
    raise AssertionError(f"node {name} never counted {count} nodes")
