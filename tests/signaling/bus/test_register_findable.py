"""A registration can be found on every node before its RegisterResult (docs/protocol.md
12.39): the answer waits for the pipeline that writes the registration to Redis, and for
``cluster.answer_wait`` at most. Real uvicorn servers on loopback, a private Redis."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator

from tests.redis_server import RedisServer
from tests.signaling.bus.test_cross_node_presence import nodes


@contextlib.contextmanager
def stopped(redis: RedisServer) -> Iterator[None]:
    """Redis takes connections and commands but answers nothing meanwhile."""
    assert redis.process is not None
    os.kill(redis.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(redis.process.pid, signal.SIGCONT)


async def test_a_call_set_up_right_after_register_on_another_node_finds_the_device() -> None:
    async with nodes("a", "b") as (_, (a, b)):
        alice = await a.phone("alice")
        for number in range(1, 201):
            bob = await b.phone("bob")  # returns once RegisterResult came
            await alice.setup(number, "bob")
            answer = await alice.sig(number)
            assert answer["sig"]["type"] == "call_proc", (number, answer)
            offer, _ = await bob.offered()
            await alice.signal(number, {"type": "rel", "cau": {"loc": 1, "num": 16}})
            await bob.sig(offer, "rel")
            await bob.client.close()
        await alice.sync()
        assert b.hub.bus.stats.late_answers == 0  # type: ignore[union-attr]


async def test_register_is_answered_after_answer_wait_when_redis_does_not_answer() -> None:
    async with nodes("a", "b", answer_wait=0.3) as (redis, (a, b)):
        with stopped(redis):
            bob = await b.phone("bob")  # answered, though Redis has not taken the write
        assert b.hub.bus.stats.late_answers == 1  # type: ignore[union-attr]
        alice = await a.phone("alice")  # once Redis answers again, the device is found
        await alice.setup(1, "bob")
        await alice.sig(1, "call_proc")
        await bob.offered()


async def test_a_connection_that_closes_while_its_answer_waits_costs_nothing() -> None:
    async with nodes("a", answer_wait=0.3) as (redis, (a,)):
        with stopped(redis):
            client = await a.connect()
            await client.login(password="bob-demo", sip="bob")
            await client.send({"api": "PbxSignal", "mt": "Register", "src": "reg"})
            await client.close()
            for _ in range(100):
                if not a.hub.connection_count:
                    break
                await asyncio.sleep(0.01)
        bob = await a.phone("bob")  # the node goes on as before
        await bob.sync()
        assert a.hub.held()["send_queues"] == 0
