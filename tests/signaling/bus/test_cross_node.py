"""Two hub nodes sharing a private Redis (SCALE.md): real uvicorn servers on loopback,
real WebSocket clients, the Redis bus between them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from tests.cluster_services import ClusterServices, cluster_services, node_config
from tests.support import Phone, RunningServer, running_server

JsonObject = dict[str, Any]


@contextlib.asynccontextmanager
async def two_nodes() -> AsyncIterator[tuple[ClusterServices, RunningServer, RunningServer]]:
    async with (
        cluster_services() as services,
        running_server(node_config(services, "a")) as a,
        running_server(node_config(services, "b")) as b,
    ):
        yield services, a, b


async def call_across(a: RunningServer, b: RunningServer) -> tuple[Phone, Phone, int]:
    """alice on node a calls bob on node b; bob answers."""
    alice, bob = await a.phone("alice"), await b.phone("bob")
    await alice.setup(1, "bob")
    await alice.sig(1, "call_proc")
    number, offer = await bob.offered()
    assert offer["type"] == "setup"
    await bob.signal(number, {"type": "conn"})
    await alice.sig(1, "conn")
    return alice, bob, number


async def test_a_chat_between_users_on_two_nodes() -> None:
    async with two_nodes() as (_, a, b):
        alice, bob, number = await call_across(a, b)
        await alice.say(1, "hello from a", id="m1")
        relayed = await bob.fty(number)
        assert (relayed["type"], relayed["data"], relayed["seq"]) == (
            "im_message",
            "hello from a",
            1,
        )
        ack = await alice.fty(1)
        assert (ack["type"], ack["id"], ack["seq"], ack["state"]) == (
            "im_ack",
            "m1",
            1,
            "delivered",
        )
        await bob.say(number, "and back from b", id="r1")
        relayed = await alice.fty(1)
        assert (relayed["data"], relayed["seq"]) == ("and back from b", 2)
        assert (await bob.fty(number))["id"] == "r1"
        await alice.signal(1, {"type": "rel", "cau": {"loc": 1, "num": 16}})
        assert (await bob.sig(number, "rel"))["sig"]["cau"]["num"] == 16


async def test_a_thousand_messages_across_nodes_keep_their_order_and_acks() -> None:
    async with two_nodes() as (_, a, b):
        alice, bob, number = await call_across(a, b)
        for n in range(1000):
            await alice.say(1, f"message {n}", id=f"m{n}")
        seqs = [(await bob.fty(number))["seq"] for _ in range(1000)]
        assert seqs == list(range(1, 1001))
        acked: list[str] = []
        while len(acked) < 1000:
            ack = await alice.fty(1)
            assert ack["type"] == "im_ack" and ack["state"] == "delivered"
            acked += ack.get("ids") or [ack["id"]]
        assert acked == [f"m{n}" for n in range(1000)]
        await alice.sync()
        await bob.sync()


async def test_the_callee_s_node_dying_ends_the_call_on_the_other() -> None:
    async with two_nodes() as (_, a, b):
        alice, _bob, _number = await call_across(a, b)
        bus = b.hub.bus
        assert bus is not None
        # node b stops renewing its lease and reading, as a killed process would
        for task in bus._tasks:
            task.cancel()
        released = await alice.sig(1, "rel")
        assert released["sig"]["cau"]["num"] == 41
        await alice.sync()


async def test_a_node_started_after_the_other_reaches_its_users() -> None:
    async with cluster_services() as services, running_server(node_config(services, "a")) as a:
        bob_waits = await a.phone("bob")
        async with running_server(node_config(services, "b")) as b:
            alice = await b.phone("alice")
            await alice.setup(1, "bob")
            await alice.sig(1, "call_proc")
            number, _ = await bob_waits.offered()
            await bob_waits.signal(number, {"type": "conn"})
            await alice.sig(1, "conn")


async def test_health_and_metrics_show_the_bus() -> None:
    async with two_nodes() as (services, a, b), httpx.AsyncClient() as http:
        alice, bob, number = await call_across(a, b)
        await alice.say(1, "counted", id="c1")
        await bob.fty(number)
        await alice.fty(1)
        health = (await http.get(f"{a.http}/healthz?ready=1")).json()
        assert health == {"status": "ok", "checks": {"bus": "up", "directory": "up"}}
        for _ in range(100):  # node a learns of b at its next heartbeat
            page = (await http.get(f"{a.http}/metrics")).text
            if _metric(page, "switchboard_bus_nodes") == 2:
                break
            await asyncio.sleep(0.05)
        assert _metric(page, 'switchboard_bus_frames_total{way="out"}') >= 2  # conn... message
        assert _metric(page, 'switchboard_bus_frames_total{way="in"}') >= 1
        assert _metric(page, "switchboard_bus_nodes") == 2
        assert _metric(page, "switchboard_bus_up") == 1
        services.redis.kill()  # the bus is down: a balancer must send clients elsewhere
        for _ in range(100):
            answer = await http.get(f"{a.http}/healthz?ready=1")
            if answer.status_code == 503:
                break
            await asyncio.sleep(0.05)
        assert answer.status_code == 503
        assert answer.json() == {
            "status": "degraded",
            "checks": {"bus": "down", "directory": "up"},
        }


def _metric(page: str, name: str) -> float:
    (line,) = [line for line in page.splitlines() if line.startswith(f"{name} ")]
    return float(line.split()[-1])


async def test_trace_flags_switched_on_one_node_switch_on_every_node() -> None:
    async with two_nodes() as (services, a, b):
        tracer_b = b.hub.tracer
        assert not tracer_b.signalling
        a.hub.tracer.set_flags({"signalling": True, "pbx": True})  # as PUT /admin/trace does
        for _ in range(100):
            if tracer_b.signalling and tracer_b.pbx:
                break
            await asyncio.sleep(0.02)
        assert tracer_b.signalling and tracer_b.pbx
        b.hub.tracer.set_flags({"pbx": False})
        for _ in range(100):
            if not a.hub.tracer.pbx:
                break
            await asyncio.sleep(0.02)
        assert not a.hub.tracer.pbx and a.hub.tracer.signalling
        # a node started now takes the cluster's flags, not its config's
        async with running_server(node_config(services, "c")) as c:
            assert c.hub.tracer.signalling and not c.hub.tracer.pbx
