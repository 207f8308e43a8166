"""The Redis bus at its edges: runs that die, Redis restarting or hanging, entries that
break the switch. Each bus runs against a private ``redis-server`` with a recording peer
in place of the hub, so that what crosses (and what is left in Redis) can be read."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from config import ClusterConfig
from signaling.bus import keys
from signaling.bus.codec import encode_frames
from signaling.bus.outbound import Batch
from signaling.bus.redis_bus import RedisBus
from signaling.core.actions import Claim, Claimed, Forward, LookedUp, Recall, Recalled
from signaling.core.nodes.frames import DeviceGone, DeviceRecord, NodeFrame, Snapshot
from tests.redis_server import RedisServer, private_redis

USER = ("example.com", "bob")


@dataclass
class Recorder:
    """What the bus hands to its hub; ``broken`` frames make ``from_nodes`` raise once."""

    frames: list[tuple[str, NodeFrame]] = field(default_factory=list)
    claims: list[Claimed] = field(default_factory=list)
    recalls: list[Recalled] = field(default_factory=list)
    down: list[str] = field(default_factory=list)
    resets: list[str] = field(default_factory=list)
    broken: set[NodeFrame] = field(default_factory=set)

    def from_nodes(self, sender: str, frames: list[NodeFrame]) -> None:
        for frame in frames:
            if frame in self.broken:
                self.broken.discard(frame)
                raise KeyError("a switch that could not take this frame")
            self.frames.append((sender, frame))

    def looked_up(self, answer: LookedUp) -> None:
        pass

    def claimed(self, answer: Claimed) -> None:
        self.claims.append(answer)

    def recalled(self, answer: Recalled) -> None:
        self.recalls.append(answer)

    def node_down(self, address: str) -> None:
        self.down.append(address)

    def node_up(self, address: str) -> None:
        pass

    def node_reset(self, address: str) -> None:
        self.resets.append(address)


def cluster(redis: RedisServer, **timing: float) -> ClusterConfig:
    values: dict[str, Any] = {"lease": 1.5, "heartbeat": 0.3, **timing}
    return ClusterConfig(redis=redis.url, **values)


@contextlib.asynccontextmanager
async def bus(
    redis: RedisServer, name: str, **timing: float
) -> AsyncIterator[tuple[RedisBus, Recorder]]:
    peer = Recorder()
    node = RedisBus(cluster(redis, **timing), name)
    await node.start(peer)
    try:
        yield node, peer
    finally:
        await asyncio.wait_for(node.stop(), 30)


async def until(condition: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never: {what}")


def kill(node: RedisBus) -> None:
    """The run stops renewing and reading, as a process killed with SIGKILL would."""
    for task in node._tasks:
        task.cancel()


async def test_a_dead_run_s_inbox_stays_gone_after_its_cleanup() -> None:
    """A survivor that has not noticed the death yet (its heartbeat is slower) still
    forwards to the dead run; its XADD must not bring back the inbox the janitor deleted,
    for nobody would ever delete it again."""
    async with (
        private_redis() as redis,
        bus(redis, "a") as (a, _),
        bus(redis, "c", lease=300, heartbeat=100) as (c, _),
    ):
        b = RedisBus(cluster(redis), "b")
        await b.start(Recorder())
        kill(b)
        client = redis.client()
        try:
            janitor = keys.janitor(b.address)
            for _ in range(500):  # its key exists while it cleans, and says done after
                if await client.get(janitor) == b"done":
                    break
                await asyncio.sleep(0.02)
            await until(lambda: b.address in a._lease.dead, "a declares b dead")  # type: ignore[union-attr]
            assert not await client.exists(keys.inbox(b.address))
            sent = c.stats.entries_out
            c.take(Forward(b.address, DeviceGone(7, 16)))  # c has not noticed yet
            await until(lambda: c.stats.entries_out > sent, "c tried to send it")
            await c._lease._declare_dead(b.address)  # type: ignore[union-attr]  # c's turn
            assert not await client.exists(keys.inbox(b.address)), "a dead run's inbox leaks"
        finally:
            await client.aclose()
            await b.stop()


async def test_a_claim_survives_redis_restarting_empty() -> None:
    """docs/operations.md: "Nothing of a node is kept in Redis that the node cannot write
    again". A granted claim (an agent's max_chats, a group's home) must be held again
    after Redis restarted empty, or a second node is granted it too."""
    async with private_redis() as redis, bus(redis, "a") as (a, seen_a):
        a.take(Claim(1, "max_chats:example.com:agent", "a:chat-1", 1))
        await until(lambda: len(seen_a.claims) == 1, "a's claim answered")
        assert seen_a.claims[0].granted
        a.book.publish(_record(a.address))
        redis.kill()
        await redis.start()
        client = redis.client()
        try:
            for _ in range(500):  # a writes its lease, registrations and claims again
                if await client.exists(keys.lease("a")):
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("a never wrote its lease again")
            await until(lambda: a._writer.settled.is_set(), "a wrote what it holds")
            async with bus(redis, "b") as (b, seen_b):
                b.take(Claim(1, "max_chats:example.com:agent", "b:chat-2", 1))
                await until(lambda: len(seen_b.claims) == 1, "b's claim answered")
                assert not seen_b.claims[0].granted, "the agent's one chat slot was given twice"
        finally:
            await client.aclose()


async def test_a_run_the_others_declared_dead_is_not_up() -> None:
    """A run whose heartbeat stalled past its lease is dead for the others for good: they
    ended its calls and drop its frames. When its heartbeat comes back it must not go on
    as if Redis had only restarted (``up`` true for the balancer, frames sent into the
    void)."""
    async with (
        private_redis() as redis,
        bus(redis, "a") as (a, seen_a),
        bus(redis, "b") as (b, _),
    ):
        heartbeat = b._tasks[2]
        heartbeat.cancel()  # b's loop is stuck, or b is cut off from Redis
        await until(lambda: b.address in seen_a.down, "a declares b dead", seconds=20)
        b._tasks[2] = asyncio.get_running_loop().create_task(b._heartbeat_loop())
        b.take(Forward(a.address, DeviceGone(3, 16)))
        await asyncio.sleep(1.0)  # a few of b's heartbeats
        delivered = [frame for sender, frame in seen_a.frames if sender == b.address]
        assert b.up is False or delivered, "b is up, and a drops everything b sends"


async def test_stop_returns_when_redis_does_not_answer() -> None:
    """A Redis that accepts connections but answers nothing (a stopped process, a black
    hole in the network): the node's shutdown must still end."""
    async with private_redis() as redis:
        node = RedisBus(cluster(redis), "a")
        await node.start(Recorder())
        assert redis.process is not None
        os.kill(redis.process.pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(0.5)
            await asyncio.wait_for(node.stop(), 10)
        finally:
            os.kill(redis.process.pid, signal.SIGCONT)


async def test_a_frame_the_switch_cannot_take_does_not_stop_the_reader() -> None:
    """The bus is trusted, but one entry that makes the switch raise must cost that entry
    only: the frames after it still arrive, and ``up`` tells the truth."""
    async with (
        private_redis() as redis,
        bus(redis, "a") as (a, seen_a),
        bus(redis, "b") as (b, _),
    ):
        bad, good = DeviceGone(1, 16), DeviceGone(2, 16)
        seen_a.broken.add(bad)
        b.take(Forward(a.address, bad))
        await until(lambda: not seen_a.broken, "a read the bad entry")
        b.take(Forward(a.address, good))
        for _ in range(250):
            if seen_a.frames:
                break
            await asyncio.sleep(0.02)
        assert seen_a.frames == [(b.address, good)] or not a.up, (
            "a's reader died silently and a still says it is up"
        )


async def test_a_claim_is_answered_and_the_bus_goes_on() -> None:
    """A ``Claim`` (an agent's max_chats, a group's home) is answered, and frames written
    after it still leave: the claim script must really be queued on the pipeline."""
    async with (
        private_redis() as redis,
        bus(redis, "a") as (a, seen_a),
        bus(redis, "b") as (b, seen_b),
    ):
        b.take(Claim(1, "max_chats:example.com:agent", "b:chat", 1))
        b.take(Forward(a.address, DeviceGone(5, 16)))
        for _ in range(250):
            if seen_a.frames and seen_b.claims:
                break
            await asyncio.sleep(0.02)
        writer = b._tasks[0]
        assert not writer.done(), f"the writer died: {writer.exception()!r}"
        assert seen_b.claims == [Claimed(1, True, ("b:chat",))]
        assert seen_a.frames == [(b.address, DeviceGone(5, 16))]


async def test_one_command_redis_refuses_does_not_stall_the_bus() -> None:
    """A command Redis answers with an error (here a registrations key of the wrong type)
    is not a broken connection: resending the same pipeline for ever holds back every
    frame of the node."""
    async with (
        private_redis() as redis,
        bus(redis, "a") as (a, seen_a),
        bus(redis, "b") as (b, _),
    ):
        client = redis.client()
        try:
            await client.set(keys.registrations("example.com", "bob"), "not a hash")
        finally:
            await client.aclose()
        b.book.publish(_record(b.address))
        await asyncio.sleep(0.2)
        b.take(Forward(a.address, DeviceGone(5, 16)))
        for _ in range(250):
            if seen_a.frames:
                break
            await asyncio.sleep(0.02)
        assert seen_a.frames == [(b.address, DeviceGone(5, 16))], "the bus is stuck"


async def test_a_snapshot_is_taken_once_by_its_user_and_nothing_else_stalls() -> None:
    """A ``Recall`` takes a snapshot once, and only for the user it is of; a snapshot
    that is not one, or a key of the wrong type, finds nothing and costs nothing else."""
    async with (
        private_redis() as redis,
        bus(redis, "a") as (a, _),
        bus(redis, "b") as (b, seen_b),
    ):
        kept = Snapshot("example.com", "bob", "phone", frozenset(), a.address, 1, ("c.1",))
        a.book.keep("k1", kept, None)
        a.book.keep("k2", kept, 30.0)
        client = redis.client()
        try:
            for _ in range(250):
                if await client.exists(keys.token("k1"), keys.token("k2")) == 2:
                    break
                await asyncio.sleep(0.02)
            assert await client.pttl(keys.token("k1")) == -1  # a connection holds it
            assert 0 < await client.pttl(keys.token("k2")) <= 30_000
            await client.set(keys.token("k3"), "not a snapshot")
            await client.hset(keys.token("k4"), "not", "a string")  # type: ignore[misc]
            asked = [("k1", "alice"), ("k1", "bob"), ("k1", "bob"), ("k3", "bob"), ("k4", "bob")]
            for request, (key, sip) in enumerate(asked, 1):
                b.take(Recall(request, key, "example.com", sip))
            b.take(Forward(a.address, DeviceGone(5, 16)))
            await until(lambda: len(seen_b.recalls) == 5, "the answers")
            found = sorted((answer.request, answer.snapshot) for answer in seen_b.recalls)
            assert found == [(1, None), (2, kept), (3, None), (4, None), (5, None)]
            taken = await client.get(keys.token("k1"))
            assert taken.startswith(b"taken " + b.address.encode())  # until a lets it go
            a.book.drop("k2")
            for _ in range(250):
                if not await client.exists(keys.token("k2")):
                    break
                await asyncio.sleep(0.02)
            index = await client.smembers(keys.node_tokens(a.address))
            assert index == {keys.token("k1").encode()}  # until a lets its registration go
        finally:
            await client.aclose()


async def test_a_recall_asked_again_gets_its_snapshot_and_one_given_back_is_good_again() -> None:
    """A pipeline resent after a broken connection asks its recall again: the snapshot
    it took is still its own, and nobody else's. Given back (its client left), another
    node can take it; given back after its node dropped it, it stays gone."""
    async with (
        private_redis() as redis,
        bus(redis, "a") as (a, _),
        bus(redis, "b") as (b, _),
        bus(redis, "c") as (c, seen_c),
    ):
        kept = Snapshot("example.com", "bob", "phone", frozenset(), a.address, 1, ())
        a.book.keep("k1", kept, 30.0)
        a.book.keep("k2", kept, None)
        await until(lambda: a._writer.settled.is_set(), "a wrote both")
        outbound = b._writer.outbound
        assert outbound is not None
        batch = Batch()
        batch.questions += [Recall(1, "k1", *USER), Recall(2, "k2", *USER)]
        for _ in range(2):  # the pipeline, and the copy a broken connection resends
            _, results = await outbound.execute(batch)
            answers = outbound.answers(batch, results, set())
            assert answers == [Recalled(1, kept), Recalled(2, kept)]
        c.take(Recall(1, "k1", *USER))
        await until(lambda: len(seen_c.recalls) == 1, "c's answer")
        assert seen_c.recalls[0] == Recalled(1, None)
        client = redis.client()
        try:
            assert 0 < await client.pttl(keys.token("k1")) <= 30_000  # taken, as it was
            a.book.drop("k2")
            await until(lambda: a._writer.settled.is_set(), "a dropped k2")
            b.book.give_back("k1", 1)
            b.book.give_back("k2", 2)
            await until(lambda: b._writer.settled.is_set(), "b gave both back")
            assert await client.exists(keys.token("k2")) == 0
        finally:
            await client.aclose()
        c.take(Recall(2, "k1", *USER))
        await until(lambda: len(seen_c.recalls) == 2, "c's second answer")
        assert seen_c.recalls[1] == Recalled(2, kept)


async def test_a_copy_of_an_entry_is_delivered_once() -> None:
    """The number per (sender, target) drops the copy a resent pipeline leaves."""
    async with (
        private_redis() as redis,
        bus(redis, "a") as (a, seen_a),
        bus(redis, "b") as (b, _),
    ):
        b.take(Forward(a.address, DeviceGone(1, 16)))
        await until(lambda: len(seen_a.frames) == 1, "the first entry")
        client = redis.client()
        try:  # what a pipeline resent after a broken connection writes again
            entry = {"n": b.address, "s": 1, "f": encode_frames([DeviceGone(1, 16)])}
            await client.xadd(keys.inbox(a.address), entry)  # type: ignore[arg-type]
        finally:
            await client.aclose()
        b.take(Forward(a.address, DeviceGone(2, 16)))
        await until(lambda: len(seen_a.frames) >= 2, "the second entry")
        assert [frame for _, frame in seen_a.frames] == [DeviceGone(1, 16), DeviceGone(2, 16)]


def _record(node: str) -> DeviceRecord:

    return DeviceRecord(node, 1, "example.com", "bob", "hw", frozenset({"NO_MEDIA_CALL"}))
