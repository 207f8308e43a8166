"""Redis blips and partitions of one hub node (SCALE.md "Failures", docs/protocol.md 12.39):
real uvicorn servers on loopback, real WebSocket clients, a private ``redis-server``, and
node b reaching it through a TCP proxy the test owns.

Times are the defaults scaled down (lease 10 s and heartbeat 2 s by default):

- the blip: 2 s with the defaults is a heartbeat, a fifth of the lease; here lease 2.5 s,
  heartbeat 0.5 s, blip 0.5 s (a quarter of each);
- the partition: 15 s with the defaults is longer than the others need to declare a node
  dead (the lease and two to three heartbeats, 14-16 s after its last renewal); here lease
  2.5 s, heartbeat 0.5 s, and the partition lasts 3.75 s and in any case until the others
  have declared b dead and cleaned up after it;
- a cut off that b comes back from: longer than ``lease - heartbeat`` (b fences itself)
  and healed as soon as it has, well before the others may declare it dead; here lease
  3 s and heartbeat 1 s (b fences at 2 s, the others may declare it dead at 5 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest

from signaling.bus import keys
from signaling.bus.fence import Standing
from signaling.bus.redis_bus import RedisBus
from tests.cluster_services import ClusterServices, cluster_services, node_config
from tests.signaling.bus.test_cross_node import call_across
from tests.signaling.bus.test_cross_node_presence import notify, until, watch
from tests.support import Phone, RunningServer, running_server
from tests.tcp_proxy import TcpProxy, tcp_proxy

JsonObject = dict[str, Any]

SCALED = {"lease": 2.5, "heartbeat": 0.5}
BLIP = 0.5
PARTITION = 3.75


@dataclass
class Cluster:
    services: ClusterServices
    proxy: TcpProxy
    servers: dict[str, RunningServer]
    restart_b: Callable[[], Awaitable[RunningServer]]
    """Stop node b and start it again (a new run), straight to Redis this time."""


@contextlib.asynccontextmanager
async def cluster(*names: str, **timing: float) -> AsyncIterator[Cluster]:
    """Nodes ``names`` straight to Redis and node b through the proxy (``servers["b"]``);
    ``timing``: the lease and heartbeat."""
    async with (
        cluster_services() as services,
        tcp_proxy(services.redis.port) as proxy,
        contextlib.AsyncExitStack() as stack,
    ):
        servers = {
            name: await stack.enter_async_context(
                running_server(node_config(services, name, **timing))
            )
            for name in names
        }
        config = node_config(services, "b", **timing)
        proxied = f"redis://127.0.0.1:{proxy.port}/0"
        first_b = contextlib.AsyncExitStack()
        stack.push_async_callback(first_b.aclose)
        servers["b"] = await first_b.enter_async_context(
            running_server(replace(config, cluster=replace(config.cluster, redis=proxied)))
        )

        async def restart_b() -> RunningServer:
            await first_b.aclose()
            servers["b"] = await stack.enter_async_context(running_server(config))
            return servers["b"]

        await until(lambda: all(bus(s).nodes == len(servers) for s in servers.values()), "met")
        yield Cluster(services, proxy, servers, restart_b)
        proxy.heal()


def bus(server: RunningServer) -> RedisBus:
    found = server.hub.bus
    assert found is not None
    return found


def dead(server: RunningServer) -> set[str]:
    lease = bus(server)._lease
    assert lease is not None
    return lease.dead


async def talk(phone: Phone, call: int, prefix: str, count: int) -> list[str]:
    ids = [f"{prefix}{n}" for n in range(count)]
    for message_id in ids:
        await phone.say(call, message_id, id=message_id)
    return ids


async def hear(phone: Phone, call: int, messages: int, acks: int) -> tuple[list[JsonObject], list]:
    """What ``phone`` gets on ``call`` until ``messages`` messages and ``acks`` acked ids
    have come: the messages, and the acked ids in order."""
    heard: list[JsonObject] = []
    acked: list[str] = []
    while len(heard) < messages or len(acked) < acks:
        item = await phone.fty(call)
        if item["type"] == "im_message":
            heard.append(item)
        else:
            assert item["type"] == "im_ack" and item["state"] == "delivered", item
            acked += item.get("ids") or [item["id"]]
    return heard, acked


async def health(server: RunningServer) -> tuple[int, JsonObject]:
    async with httpx.AsyncClient() as http:
        answer = await http.get(f"{server.http}/healthz?ready=1")
    return answer.status_code, answer.json()


async def metric(server: RunningServer, name: str) -> float:
    async with httpx.AsyncClient() as http:
        page = (await http.get(f"{server.http}/metrics")).text
    (line,) = [line for line in page.splitlines() if line.startswith(f"{name} ")]
    return float(line.split()[-1])


# -- a blip -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["cut", "pause"])
async def test_a_redis_blip_loses_nothing_flickers_nothing_and_kills_nobody(fault: str) -> None:
    """``cut``: b's connections to Redis break and new ones are refused; ``pause``: they
    hang. Either way for a heartbeat: every message with an id is delivered once, in seq
    order, and acked once; no node is declared dead or fences itself; no presence
    subscriber hears anything; and a user who leaves afterwards is ``closed`` once."""
    async with cluster("a", **SCALED) as nodes:
        proxy, a, b = nodes.proxy, nodes.servers["a"], nodes.servers["b"]
        alice, bob, theirs = await call_across(a, b)  # homed on a
        carol, dave = await a.phone("carol"), await b.phone("dave")
        assert (await watch(carol, 1, "bob"))["status"] == "open"
        assert (await watch(dave, 1, "alice"))["status"] == "open"
        sent_a = await talk(alice, 1, "a-before-", 40)
        sent_b = await talk(bob, theirs, "b-before-", 40)
        getattr(proxy, fault)()
        sent_a += await talk(alice, 1, "a-during-", 40)
        sent_b += await talk(bob, theirs, "b-during-", 40)
        await asyncio.sleep(BLIP)
        proxy.heal()
        sent_a += await talk(alice, 1, "a-after-", 40)
        sent_b += await talk(bob, theirs, "b-after-", 40)
        to_bob, acked_b = await hear(bob, theirs, len(sent_a), len(sent_b))
        to_alice, acked_a = await hear(alice, 1, len(sent_b), len(sent_a))
        assert [m["data"] for m in to_bob] == acked_a == sent_a  # each once, in order
        assert [m["data"] for m in to_alice] == acked_b == sent_b
        seqs = sorted(m["seq"] for m in to_bob + to_alice)
        assert seqs == list(range(1, len(sent_a) + len(sent_b) + 1))  # contiguous, unique
        for phone in (alice, bob, carol, dave):
            await phone.sync()  # nothing twice, and no presence notify
        for server in (a, b):
            stats = bus(server).stats
            assert (stats.fences, stats.gaps, stats.resets, stats.stale) == (0, 0, 0, 0)
            assert not dead(server) and bus(server).up
        await bob.client.close()
        assert await carol.fty(1) == notify("closed")
        await carol.sync()


# -- a cut off the node comes back from --------------------------------------------------------


async def test_a_node_cut_off_fences_itself_keeps_its_own_calls_and_comes_back() -> None:
    async with cluster("a", lease=3.0, heartbeat=1.0) as nodes:
        proxy, a, b = nodes.proxy, nodes.servers["a"], nodes.servers["b"]
        alice, bob, theirs = await call_across(a, b)  # homed on a
        dave = await b.phone("dave")
        await dave.setup(1, "bob")  # a call on b alone
        await dave.sig(1, "call_proc")
        local, _ = await bob.offered()
        await bob.signal(local, {"type": "conn"})
        await dave.sig(1, "conn")
        carol = await a.phone("carol")
        assert (await watch(carol, 1, "bob"))["status"] == "open"
        assert (await watch(dave, 3, "alice"))["status"] == "open"
        proxy.cut()
        await until(lambda: bus(b).standing is Standing.FENCED, "b fences itself")
        assert not dead(a)  # before anyone may declare it dead
        assert (await bob.sig(theirs, "rel"))["sig"]["cau"]["num"] == 41  # homed on a: over
        assert await dave.fty(3) == notify("closed")  # b knows nothing of a any more
        assert await health(b) == (
            503,
            {"status": "degraded", "checks": {"bus": "down", "directory": "up"}},
        )
        await dave.say(1, "still here", id="local-1")  # b's own calls go on
        assert (await bob.fty(local))["data"] == "still here"
        assert (await dave.fty(1))["id"] == "local-1"
        await dave.setup(2, "alice")  # alice is on a only: as if she were offline
        assert (await dave.sig(2, "rel"))["sig"]["cau"]["num"] == 18
        assert await metric(b, 'switchboard_bus_standing{standing="fenced"}') == 1
        proxy.heal()
        await until(lambda: bus(b).standing is Standing.UP, "b is back")
        assert (await alice.sig(1, "rel"))["sig"]["cau"]["num"] == 41  # a ends its side too
        assert await dave.fty(3) == notify("open", "available")  # read again once back
        assert not dead(a) and not dead(b)
        assert (bus(b).stats.fences, bus(b).stats.rejoins, bus(a).stats.resets) == (1, 1, 1)
        await alice.setup(2, "bob")  # new calls across work again
        await alice.sig(2, "call_proc")
        number, _ = await bob.offered()
        await bob.signal(number, {"type": "conn"})
        await alice.sig(2, "conn")
        await alice.say(2, "again", id="again")
        assert (await bob.fty(number))["data"] == "again"
        assert (await alice.fty(2))["state"] == "delivered"
        await bob.say(number, "back", id="back")
        assert (await alice.fty(2))["data"] == "back"
        assert (await bob.fty(number))["id"] == "back"
        await until(lambda: bus(b).up, "b is up")
        assert await health(b) == (
            200,
            {"status": "ok", "checks": {"bus": "up", "directory": "up"}},
        )
        assert await metric(b, 'switchboard_bus_standing{standing="up"}') == 1
        assert await metric(b, "switchboard_bus_fences_total") == 1
        assert await metric(b, "switchboard_bus_rejoins_total") == 1
        assert await metric(a, "switchboard_bus_resets_total") == 1
        for phone in (alice, bob, carol, dave):
            await phone.sync()  # carol never heard bob go: he never did


# -- a partition the others declare the node dead in ----------------------------------------------


async def test_a_partitioned_node_fences_itself_first_then_is_cleaned_up_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="signaling.bus")
    async with cluster("a", "c", **SCALED) as nodes:
        services, proxy = nodes.services, nodes.proxy
        a, b, c = nodes.servers["a"], nodes.servers["b"], nodes.servers["c"]
        alice, bob, theirs = await call_across(a, b)  # homed on a
        carol, dave = await c.phone("carol"), await b.phone("dave")
        assert (await watch(alice, 2, "bob"))["status"] == "open"
        assert (await watch(carol, 1, "bob"))["status"] == "open"
        await dave.setup(1, "bob")  # a call on b alone
        await dave.sig(1, "call_proc")
        local, _ = await bob.offered()
        await bob.signal(local, {"type": "conn"})
        await dave.sig(1, "conn")
        run = bus(b).address
        proxy.pause()  # b's Redis connections hang, as across a broken network
        paused = time.monotonic()
        await until(lambda: run in dead(a) and run in dead(c), "a and c declare b dead")
        janitor = keys.janitor(run)
        client = services.redis.client()
        try:
            for _ in range(500):
                if await client.get(janitor) == b"done":
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("nobody cleaned up after b")
        finally:
            await client.aclose()
        messages = [record.getMessage() for record in caplog.records]
        fenced = [n for n, text in enumerate(messages) if "fences itself" in text]
        declared = [n for n, text in enumerate(messages) if f"node run {run} is gone" in text]
        assert fenced and declared and fenced[0] < declared[0]  # b fenced itself first
        assert len(declared) == 2  # a and c each ended its calls with b
        assert sum(f"cleaned up after {run}" in text for text in messages) == 1  # one janitor
        heard = {m["call"]: m["sig"] for m in [await alice.next(), await alice.next()]}
        assert heard == {  # in either order: the presence at once, the call after its grace
            1: {"type": "rel", "cau": {"loc": 1, "num": 41}},
            2: {"type": "facility", "fty": [notify("closed")]},
        }
        assert await carol.fty(1) == notify("closed")
        assert (await bob.sig(theirs, "rel"))["sig"]["cau"]["num"] == 41
        await dave.say(1, "during", id="during")  # b's own calls go on
        assert (await bob.fty(local))["data"] == "during"
        assert (await dave.fty(1))["id"] == "during"
        await asyncio.sleep(max(0.0, PARTITION - (time.monotonic() - paused)))
        proxy.heal()
        await until(lambda: bus(b).standing is Standing.DEAD, "b learns it was declared dead")
        assert await health(b) == (
            503,
            {"status": "degraded", "checks": {"bus": "down", "directory": "up"}},
        )
        assert any("declared dead by the others" in r.getMessage() for r in caplog.records)
        await dave.say(1, "after", id="after")  # and after
        assert (await bob.fty(local))["data"] == "after"
        assert (await dave.fty(1))["id"] == "after"
        for phone in (alice, bob, carol, dave):
            await phone.sync()  # closed once: no ghost comes back
        assert not await _exists(services, keys.registrations("example.com", "bob"))
        assert not await _exists(services, keys.presence("example.com", "bob"))


async def _exists(services: ClusterServices, key: str) -> bool:
    client = services.redis.client()
    try:
        return bool(await client.exists(key))
    finally:
        await client.aclose()


# -- a group's home across a partition ------------------------------------------------------------

TEAM = {
    "mt": "GroupInd",
    "domain": "example.com",
    "id": 1,
    "sip": "group-1",
    "dn": "Team",
    "members": [{"sip": "alice", "admin": True}, {"sip": "bob", "admin": False}],
}
HOME = keys.claim_set("group-home:example.com:group-1")


async def join(phone: Phone, number: int, group: str = "group-1") -> str:
    """``phone`` sets up the group's call: answered at once, wherever its home is. The
    call's ``confId``."""
    await phone.setup(number, group)
    proceeding = await phone.sig(number, "call_proc")
    await phone.sig(number, "conn")
    conf: str = proceeding["sig"]["confId"]
    return conf


async def homes(services: ClusterServices) -> set[str]:
    client = services.redis.client()
    try:
        return {member.decode() for member in await client.smembers(HOME)}
    finally:
        await client.aclose()


async def test_a_partition_never_gives_a_group_two_homes_and_a_restart_rejoins_it() -> None:
    """The group's home is on b. Partitioned, b fences itself and nobody else may take the
    home until b is declared dead and cleaned up after; then a takes it. Back, b writes
    nothing (it was declared dead); restarted, its members join the call homed on a."""
    async with cluster("a", **SCALED) as nodes:
        services, proxy, a, b = nodes.services, nodes.proxy, nodes.servers["a"], nodes.servers["b"]
        for server in (a, b):
            server.hub.from_service(dict(TEAM))
        alice, bob = await a.phone("alice"), await b.phone("bob")
        on_b = await join(bob, 1)
        assert await join(alice, 1) == on_b  # one call, homed on b
        run = bus(b).address
        assert await homes(services) == {run}
        proxy.pause()
        await until(lambda: bus(b).standing is Standing.FENCED, "b fences itself")
        assert await homes(services) == {run}  # nobody else may take it yet
        await until(lambda: run in dead(a), "a declares b dead")
        assert (await alice.sig(1, "rel"))["sig"]["cau"]["num"] == 41
        await until_async(lambda: _no_homes(services), "b's home is cleaned up")
        on_a = await join(alice, 2)
        assert on_a != on_b and await homes(services) == {bus(a).address}
        proxy.heal()
        await until(lambda: bus(b).standing is Standing.DEAD, "b learns it was declared dead")
        assert await homes(services) == {bus(a).address}
        b = await nodes.restart_b()
        b.hub.from_service(dict(TEAM))  # as its messages service tells it at start
        bob = await b.phone("bob")
        assert await join(bob, 1) == on_a  # the group's one call, homed on a
        await bob.say(1, "back on a new run", id="new-run")
        assert (await alice.fty(2))["data"] == "back on a new run"
        assert (await bob.fty(1))["state"] == "delivered"
        await alice.setup(3, "bob")  # and calls across reach b's users again
        await alice.sig(3, "call_proc")
        number, _ = await bob.offered()
        await bob.signal(number, {"type": "conn"})
        await alice.sig(3, "conn")
        assert await homes(services) == {bus(a).address}


async def _no_homes(services: ClusterServices) -> bool:
    return not await homes(services)


async def until_async(check: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(500):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never: {what}")
