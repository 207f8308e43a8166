"""Presence across hub nodes on a private Redis (docs/protocol.md 12.39): real uvicorn
servers on loopback, real WebSocket clients, the Redis bus between them; and the bus's
side of it against Redis alone."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from config import ClusterConfig, Config
from signaling.bus import keys
from signaling.bus.redis_bus import RedisBus
from signaling.core.actions import PresenceShare, PresenceShares, PresenceWatch
from signaling.core.nodes.presence_shares import SharedPresence
from tests.cluster_services import ClusterServices, node_config, running_nodes
from tests.redis_server import RedisServer, private_redis
from tests.support import Phone, RunningServer

JsonObject = dict[str, Any]

BOB = ("example.com", "bob")


@contextlib.asynccontextmanager
async def nodes(
    *names: str, **cluster: Any
) -> AsyncIterator[tuple[RedisServer, list[RunningServer]]]:
    def config(services: ClusterServices, name: str) -> Config:
        return node_config(services, name, **cluster)

    async with running_nodes(config, *names) as (services, servers):
        yield services.redis, servers


async def watch(phone: Phone, number: int, to: str) -> JsonObject:
    """``phone`` subscribes to ``to``'s presence: the first notify."""
    setup = {"type": "setup", "cd": {"sip": to}, "fty": [{"type": "presence_subscribe"}]}
    await phone.signal(number, setup)
    await phone.sig(number, "conn")
    return await phone.fty(number)


async def publish(phone: Phone, number: int, activity: str, note: str) -> None:
    """On ``phone``'s subscription to itself."""
    item = {"type": "presence_publish", "activity": activity, "note": note}
    await phone.signal(number, {"type": "facility", "fty": [item]})


def notify(status: str, activity: str = "", note: str = "") -> JsonObject:
    return {"type": "presence_notify", "status": status, "activity": activity, "note": note}


def shares(server: RunningServer) -> SharedPresence:
    found = server.hub.switch.presence._shares
    assert found is not None
    return found


async def until(condition: Callable[[], Any], what: str, seconds: float = 20.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never: {what}")


async def until_redis(redis: RedisServer, check: Callable[[Any], Any], what: str) -> None:
    client = redis.client()
    try:
        for _ in range(1000):
            if await check(client):
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"never: {what}")
    finally:
        await client.aclose()


# -- presence -----------------------------------------------------------------------------------


async def test_a_subscriber_sees_a_user_on_another_node_come_publish_and_leave() -> None:
    async with nodes("a", "b") as (_, (a, b)):
        alice = await a.phone("alice")
        assert await watch(alice, 1, "bob") == notify("closed")
        bob = await b.phone("bob")
        assert await alice.fty(1) == notify("open", "available")
        await watch(bob, 2, "bob")
        await publish(bob, 2, "dnd", "in a meeting")
        assert await alice.fty(1) == notify("open", "dnd", "in a meeting")
        await bob.client.close()  # cleanly: offline at once
        assert await alice.fty(1) == notify("closed")
        await alice.sync()


async def test_a_new_subscription_to_a_user_online_elsewhere_starts_open() -> None:
    async with nodes("a", "b") as (_, (a, b)):
        bob = await b.phone("bob")
        await watch(bob, 2, "bob")
        await publish(bob, 2, "away", "lunch")
        alice = await a.phone("alice")
        await until(lambda: b.hub.bus.stats.presence_writes >= 2, "bob's publish written")  # type: ignore[union-attr]
        assert await watch(alice, 1, "bob") == notify("open", "away", "lunch")
        await alice.sync()


async def test_leaving_one_of_two_nodes_is_no_change_for_any_subscriber() -> None:
    async with nodes("a", "b", "c") as (_, (a, b, c)):
        alice, carol = await a.phone("alice"), await c.phone("carol")
        bob_a, bob_b = await a.phone("bob"), await b.phone("bob")
        assert (await watch(alice, 1, "bob"))["status"] == "open"
        assert (await watch(carol, 1, "bob"))["status"] == "open"
        b_run = b.hub.bus.address  # type: ignore[union-attr]
        await until(lambda: shares(c)._views[BOB].shares.get(b_run), "c reads bob on b")
        await bob_b.client.close()
        await until(lambda: b_run not in shares(c)._views[BOB].shares, "c reads bob left b")
        await alice.sync()  # no notify: bob is still online on a
        await carol.sync()
        await bob_a.client.close()
        assert await alice.fty(1) == notify("closed")
        assert await carol.fty(1) == notify("closed")


async def test_a_node_that_stops_renewing_has_its_users_closed_once() -> None:
    async with nodes("a", "b", "c") as (redis, (a, b, c)):
        alice = await a.phone("alice")
        await b.phone("bob")
        await b.phone("dave")
        dave_c = await c.phone("dave")
        assert (await watch(alice, 1, "bob"))["status"] == "open"
        assert (await watch(alice, 2, "dave"))["status"] == "open"
        bus = b.hub.bus
        assert bus is not None
        for task in bus._tasks:  # b stops renewing and reading, as a killed process would
            task.cancel()
        assert await alice.fty(1) == notify("closed")
        janitor = keys.janitor(bus.address)
        await until_redis(redis, lambda r: _is(r.get(janitor), b"done"), "b cleaned up")
        # a later change on another user reaches alice after anything the cleanup caused
        await watch(dave_c, 3, "dave")
        await publish(dave_c, 3, "busy", "marker")
        assert await alice.fty(2) == notify("open", "busy", "marker")
        await alice.sync()


async def _is(reply: Any, value: bytes) -> bool:
    return bool(await reply == value)


async def test_presence_is_right_again_after_redis_restarts_empty() -> None:
    """Every node writes its shares again; meanwhile nobody is told ``closed``."""
    async with nodes("a", "b") as (redis, (a, b)):
        bob = await b.phone("bob")
        await watch(bob, 2, "bob")
        alice = await a.phone("alice")
        assert (await watch(alice, 1, "bob"))["status"] == "open"
        redis.kill()
        await redis.start()
        bob_key = keys.presence(*BOB)
        await until_redis(redis, lambda r: r.hexists(bob_key, b.hub.bus.address), "b's share")  # type: ignore[union-attr]
        await publish(bob, 2, "away", "after the restart")
        assert await alice.fty(1) == notify("open", "away", "after the restart")
        await bob.client.close()
        assert await alice.fty(1) == notify("closed")
        await alice.sync()


async def test_a_node_whose_announcements_were_cut_reads_again() -> None:
    """Pub/sub drops what is published while a subscriber reconnects: a node reads every
    followed user again once its subscription is back."""
    async with nodes("a", "b") as (redis, (a, _)):
        alice = await a.phone("alice")
        assert (await watch(alice, 1, "bob"))["status"] == "closed"
        client = redis.client()
        try:  # a share whose announcement alice's node never hears
            await client.hset(keys.presence(*BOB), "z.00000000", "1")
            await client.client_kill_filter(_type="pubsub")
            assert await alice.fty(1) == notify("open", "available")
            await client.hdel(keys.presence(*BOB), "z.00000000")
            await client.publish(keys.presence_changes(*BOB), "z.00000000")
            assert await alice.fty(1) == notify("closed")
        finally:
            await client.aclose()


# -- the bus's side, against Redis alone -----------------------------------------------------------


@dataclass
class Seen:
    """What a bus hands its hub of presence (everything else is dropped)."""

    shares: list[PresenceShares] = field(default_factory=list)
    down: list[str] = field(default_factory=list)

    def from_nodes(self, sender: str, frames: list[Any]) -> None:
        pass

    def looked_up(self, answer: Any) -> None:
        pass

    def claimed(self, answer: Any) -> None:
        pass

    def presence_shares(self, answer: PresenceShares) -> None:
        self.shares.append(answer)

    def login_checked(self, answer: Any) -> None:
        pass

    def node_down(self, address: str) -> None:
        self.down.append(address)

    def node_up(self, address: str) -> None:
        pass

    def node_reset(self, address: str) -> None:
        pass


@contextlib.asynccontextmanager
async def bus(redis: RedisServer, name: str) -> AsyncIterator[tuple[RedisBus, Seen]]:
    seen = Seen()
    node = RedisBus(ClusterConfig(redis=redis.url, lease=1.5, heartbeat=0.3), name)
    await node.start(seen)
    try:
        yield node, seen
    finally:
        await asyncio.wait_for(node.stop(), 30)


async def test_a_read_leaves_out_the_shares_of_runs_known_dead() -> None:
    """The janitor may not have removed a dead run's shares yet: they must not count."""
    async with private_redis() as redis, bus(redis, "a") as (a, seen):
        client = redis.client()
        try:
            await client.hset(keys.presence(*BOB), mapping={"x.00000001": "1", "y.00000002": "0"})
        finally:
            await client.aclose()
        assert a._lease is not None
        a._lease.dead.add("x.00000001")
        a.take(PresenceWatch(*BOB, True))
        await until(lambda: seen.shares, "a read bob")
        assert seen.shares == [PresenceShares(*BOB, (("y.00000002", False),), None)]


async def test_the_last_share_takes_the_published_activity_with_it() -> None:
    async with private_redis() as redis, bus(redis, "a") as (a, _):
        a.take(PresenceShare(*BOB, True, ("dnd", "focus")))
        a.take(PresenceShare(*BOB, False))
        client = redis.client()
        try:
            await until_redis(redis, lambda r: r.hexists(keys.presence(*BOB), "p"), "written")
            stored = await client.hgetall(keys.presence(*BOB))
            assert stored == {a.address.encode(): b"0", b"p": b'["dnd","focus"]'}
            assert await client.smembers(keys.node_presence(a.address)) == {
                keys.presence(*BOB).encode()
            }
            a.take(PresenceShare(*BOB, None))
            await until_redis(redis, lambda r: _not(r.exists(keys.presence(*BOB))), "gone")
            assert not await client.exists(keys.node_presence(a.address))
        finally:
            await client.aclose()


async def _not(reply: Any) -> bool:
    return not await reply


async def test_the_janitor_removes_a_dead_run_s_shares_and_announces_it() -> None:
    async with private_redis() as redis, bus(redis, "a") as (a, seen), bus(redis, "b") as (b, _):
        b.take(PresenceShare(*BOB, True, ("away", "")))
        a.take(PresenceWatch(*BOB, True))
        await until(lambda: seen.shares and seen.shares[-1].shares, "a reads bob on b")
        for task in b._tasks:  # b stops renewing and reading, as a killed process would
            task.cancel()
        await until(lambda: b.address in seen.down, "a declares b dead")
        await until(lambda: not seen.shares[-1].shares, "a reads bob gone")
        assert seen.shares[-1] == PresenceShares(*BOB, (), None)
        await until_redis(redis, lambda r: _not(r.exists(keys.presence(*BOB))), "cleaned")
