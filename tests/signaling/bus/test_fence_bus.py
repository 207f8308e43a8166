"""A node that cannot renew its lease fences itself before the others may declare it dead
(SCALE.md decision 5, docs/protocol.md 12.39), at the bus: two buses on a private
``redis-server``, the fenced one reaching it through a TCP proxy the test cuts, each with a
recording peer in place of its hub, so that what crosses can be read."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import replace

from signaling.bus import keys
from signaling.bus.fence import TABLE, Standing
from signaling.bus.redis_bus import RedisBus
from signaling.core.actions import Claim, Claimed, Forward, Lookup
from signaling.core.nodes.frames import DeviceGone
from tests.redis_server import RedisServer, private_redis
from tests.signaling.bus.test_redis_bus_edges import Recorder, cluster, until
from tests.tcp_proxy import TcpProxy, tcp_proxy

LEASE, HEARTBEAT = 1.5, 0.3
"""Fenced after 1.2 s without a renewal; declared dead after 2.1 s at the earliest."""


@contextlib.asynccontextmanager
async def fenced_pair(
    heartbeat: float = HEARTBEAT,
) -> AsyncIterator[
    tuple[RedisServer, TcpProxy, tuple[RedisBus, Recorder], tuple[RedisBus, Recorder]]
]:
    """Buses a (straight to Redis) and b (through the proxy)."""
    async with private_redis() as redis, tcp_proxy(redis.port) as proxy:
        config = cluster(redis, lease=LEASE, heartbeat=heartbeat)
        via_proxy = replace(config, redis=f"redis://127.0.0.1:{proxy.port}/0")
        seen_a, seen_b = Recorder(), Recorder()
        a, b = RedisBus(config, "a"), RedisBus(via_proxy, "b")
        await a.start(seen_a)
        await b.start(seen_b)
        try:
            await until(lambda: a.nodes == 2 and b.nodes == 2, "each knows the other")
            yield redis, proxy, (a, seen_a), (b, seen_b)
        finally:
            proxy.heal()
            for node in (b, a):
                await asyncio.wait_for(node.stop(), 30)


def test_the_fence_s_table_is_whole_and_dead_is_for_good() -> None:
    events = {event for _, event in TABLE}
    assert set(TABLE) == {(standing, event) for standing in Standing for event in events}
    assert {TABLE[Standing.DEAD, event] for event in events} == {Standing.DEAD}
    assert TABLE[Standing.FENCED, "renewed"] is Standing.UP


async def test_a_fenced_run_sends_nothing_and_on_its_return_the_other_drops_what_it_missed() -> (
    None
):
    """b is cut off and fences itself; a, which has not declared it dead, writes to b
    meanwhile. Back, b resets a: a ends its calls with b (not its presence), and b drops
    what a wrote before it heard of the reset. Frames after it cross both ways, once."""
    async with fenced_pair() as (redis, proxy, (a, seen_a), (b, seen_b)):
        a.take(Forward(b.address, DeviceGone(1, 16)))
        b.take(Forward(a.address, DeviceGone(7, 16)))
        await until(lambda: len(seen_b.frames) == len(seen_a.frames) == 1, "the first frames")
        proxy.cut()
        await until(lambda: b.standing is Standing.FENCED, "b fences itself")
        assert seen_b.down == [a.address]  # b ended its calls with a, as after a's death
        assert not a._lease.dead  # type: ignore[union-attr]  # too early for a to declare it
        assert not b.up
        b.take(Forward(a.address, DeviceGone(8, 16)))  # a call b ended: never sent
        a.take(Forward(b.address, DeviceGone(2, 16)))  # about a call b ended: dropped later
        proxy.heal()
        await until(lambda: b.standing is Standing.UP, "b is back")
        await until(lambda: seen_a.resets == [b.address], "a hears b's reset")
        assert seen_a.down == [] and not a._lease.dead  # type: ignore[union-attr]
        a.take(Forward(b.address, DeviceGone(3, 16)))
        b.take(Forward(a.address, DeviceGone(9, 16)))
        await until(lambda: len(seen_b.frames) == len(seen_a.frames) == 2, "both cross")
        assert [frame for _, frame in seen_b.frames] == [DeviceGone(1, 16), DeviceGone(3, 16)]
        assert [frame for _, frame in seen_a.frames] == [DeviceGone(7, 16), DeviceGone(9, 16)]
        assert (b.stats.fences, b.stats.rejoins, b.stats.fenced_frames) == (1, 1, 1)
        assert (a.stats.resets, b.stats.stale, a.stats.gaps, b.stats.gaps) == (1, 1, 0, 0)
        client = redis.client()
        try:  # a copy of the reset (a resent pipeline) changes nothing
            await client.xadd(keys.inbox(a.address), {"n": b.address, "r": 1})
            b.take(Forward(a.address, DeviceGone(10, 16)))
            await until(lambda: len(seen_a.frames) == 3, "the next frame")
            assert seen_a.resets == [b.address] and a.stats.gaps == 0
            assert not await client.exists(keys.janitor(b.address))
        finally:
            await client.aclose()


async def test_a_frame_sent_in_the_turn_the_run_comes_back_follows_its_reset() -> None:
    """What the switch sends in the turn of the renewal that brought its run back (it
    meets the other runs then, ``node_up``), before the writer ran, leaves after the
    reset, numbered from 1 again: neither dropped nor taken for a gap."""
    async with fenced_pair() as (_, _proxy, (a, seen_a), (b, _seen_b)):
        b._fence._lapsed()  # as when the bound passes without a renewal that worked
        assert b.standing is Standing.FENCED
        b._fence.renewed(time.monotonic())  # and the next one works: back, in this turn
        b.take(Forward(a.address, DeviceGone(5, 16)))
        await until(lambda: seen_a.frames, "the frame crosses")
        assert seen_a.resets == [b.address]
        assert [frame for _, frame in seen_a.frames] == [DeviceGone(5, 16)]
        assert a.stats.gaps == 0 and seen_a.down == []


async def test_while_fenced_lookups_find_nothing_elsewhere_and_claims_wait_for_the_return() -> None:
    # fenced 1.0 s after b's last renewal, declared dead 2.5 s after it at the earliest
    async with fenced_pair(heartbeat=0.5) as (_, proxy, (a, _seen_a), (b, seen_b)):
        found: list[object] = []
        seen_b.looked_up = found.append  # type: ignore[method-assign]
        proxy.cut()
        await until(lambda: b.standing is Standing.FENCED, "b fences itself")
        assert b.written().done()  # a RegisterResult goes at once: nobody can look now
        b.take(Lookup(1, "example.com", ("bob",)))
        b.take(Claim(2, "max_chats:example.com:alice", f"{b.address}:chat", 1))
        await until(lambda: found, "the lookup is answered")
        assert [answer.devices for answer in found] == [()]  # type: ignore[attr-defined]
        await asyncio.sleep(0.2)
        assert seen_b.claims == []  # one atomic step in Redis: it waits for Redis
        proxy.heal()
        await until(lambda: seen_b.claims, "the claim is answered once b is back")
        assert seen_b.claims == [Claimed(2, True, (f"{b.address}:chat",))]
        assert b.up and a.up


async def test_a_run_back_after_the_others_declared_it_dead_stays_fenced() -> None:
    """Cut off longer than the lease and two heartbeats: a declares b dead and cleans up
    after it once; back, b learns it, refuses claims and writes nothing more."""
    async with fenced_pair() as (redis, proxy, (a, seen_a), (b, seen_b)):
        proxy.cut()
        await until(lambda: b.standing is Standing.FENCED, "b fences itself")
        assert seen_a.down == []  # b fenced itself first
        await until(lambda: seen_a.down == [b.address], "a declares b dead")
        client = redis.client()
        try:
            await until_done(client, keys.janitor(b.address))
            proxy.heal()
            await until(lambda: b.standing is Standing.DEAD, "b learns it was declared dead")
            b.take(Claim(3, "max_chats:example.com:alice", f"{b.address}:chat", 1))
            await until(lambda: seen_b.claims, "the claim is answered")
            assert seen_b.claims == [Claimed(3, False, ())]
            b.take(Forward(a.address, DeviceGone(4, 16)))
            await asyncio.sleep(3 * HEARTBEAT)
            assert seen_a.frames == [] and seen_a.resets == []
            assert not await client.exists(keys.lease("b"))  # the name is free for a restart
            assert not await client.exists(keys.claim_set("max_chats:example.com:alice"))
            assert not b.up and b.stats.rejoins == 0
        finally:
            await client.aclose()


async def until_done(client: object, janitor: str) -> None:
    for _ in range(500):
        if await client.get(janitor) == b"done":  # type: ignore[attr-defined]
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the janitor never finished")
