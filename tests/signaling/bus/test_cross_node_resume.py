"""Resume on another node (docs 12.43) over a private Redis: three in-process nodes, real
WebSocket clients. A client whose link drops reconnects to another node with its token
and the call goes on there, while its peer keeps writing: no gap, no duplicate. Redis
holds the registration's snapshot under the token's hash only; a node that stops
renewing leaves its snapshots to expire with the grace, and the clients of a node that
stops (killed or cleanly) resume elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from typing import Any

from config import Config
from tests.cluster_services import ClusterServices, node_config, running_nodes
from tests.support import (
    PASSWORDS,
    RunningServer,
    acks_until_delivered,
    answer_resumed,
    answered_call,
    make_config,
    resume_phone,
    running_server,
)

JsonObject = dict[str, Any]
GRACE = 30.0
CONFIG = make_config(messages=False, burst=5000, rate_close_after=5000, grace=GRACE)


def resuming_node(services: ClusterServices, name: str) -> Config:
    return node_config(services, name, CONFIG)


@contextlib.asynccontextmanager
async def three_nodes() -> AsyncIterator[
    tuple[ClusterServices, RunningServer, RunningServer, RunningServer]
]:
    async with running_nodes(resuming_node, "a", "b", "c") as (services, (a, b, c)):
        yield services, a, b, c


def token_key(token: str) -> str:
    return "sb:tok:" + hashlib.sha256(token.encode()).hexdigest()


async def test_a_client_resumes_on_another_node_while_its_peer_keeps_writing() -> None:
    async with three_nodes() as (services, a, b, c):
        alice, bob = await a.phone("alice"), await b.phone("bob")
        conf, number = await answered_call(alice, bob)
        for n in range(1, 11):
            await alice.say(1, f"before {n}", id=f"m{n}")
            assert (await bob.fty(number))["seq"] == n
        old_token = bob.resume_token
        bob.client._ws.transport.abort()  # the link is lost, no close

        async def keep_writing() -> None:
            for n in range(11, 61):
                await alice.say(1, f"meanwhile {n}", id=f"m{n}")
                await asyncio.sleep(0.002)

        writer = asyncio.create_task(keep_writing())
        again, result = await resume_phone(c, bob, PASSWORDS["bob"], {conf: 10})
        assert result["resumed"] is True
        number = await answer_resumed(again, conf)
        await writer
        seqs = [(await again.fty(number))["seq"] for _ in range(50)]
        assert seqs == list(range(11, 61))  # no gap, no duplicate
        states = await acks_until_delivered(alice, 60)
        assert all(got in (["delivered"], ["held", "delivered"]) for got in states.values())
        await again.say(number, "from c", id="r1")
        assert (await alice.fty(1))["seq"] == 61
        assert (await again.fty(number))["state"] == "delivered"
        await alice.sync()
        await again.sync()
        client = services.redis.client()
        try:
            kept = await client.keys("sb:tok:*")
            assert token_key(again.resume_token).encode() in kept
            assert token_key(old_token).encode() not in kept
            for key in kept:  # no token in the clear anywhere
                value = await client.get(key)
                assert old_token.encode() not in value and again.resume_token.encode() not in value
        finally:
            await client.aclose()


async def test_a_stopped_node_s_clients_resume_on_another_within_the_grace() -> None:
    """Node b stops renewing its lease and reading (as a killed process would): the
    janitor gives its snapshots the resume grace instead of removing them, and bob
    resumes on c; alice's call, homed on a, goes on."""
    async with three_nodes() as (services, a, b, c):
        alice, bob = await a.phone("alice"), await b.phone("bob")
        conf, number = await answered_call(alice, bob)
        await alice.say(1, "one", id="m1")
        assert (await bob.fty(number))["seq"] == 1
        assert (await alice.fty(1))["state"] == "delivered"
        bus = b.hub.bus
        assert bus is not None
        for task in bus._tasks:
            task.cancel()
        client = services.redis.client()
        try:
            janitor = f"sb:janitor:{bus.address}"
            for _ in range(200):
                if await client.get(janitor) == b"done":
                    break
                await asyncio.sleep(0.05)
            ttl = await client.pttl(token_key(bob.resume_token))
            assert 0 < ttl <= GRACE * 1000
        finally:
            await client.aclose()
        await alice.say(1, "two", id="m2")
        again, result = await resume_phone(c, bob, PASSWORDS["bob"], {conf: 1})
        assert result["resumed"] is True
        number = await answer_resumed(again, conf)
        assert (await again.fty(number))["seq"] == 2
        await alice.say(1, "three", id="m3")
        assert (await again.fty(number))["seq"] == 3
        await again.say(number, "still here", id="r1")
        frames = [await alice.fty(1) for _ in range(4)]
        assert [(f["type"], f.get("id"), f.get("state"), f["seq"]) for f in frames] == [
            ("im_ack", "m2", "held", 2),
            ("im_ack", "m2", "delivered", 2),
            ("im_ack", "m3", "delivered", 3),
            ("im_message", None, None, 4),
        ]
        await alice.sync()


async def test_the_clients_of_a_node_stopped_for_an_upgrade_resume_on_the_others() -> None:
    """Node b stops cleanly (closing its connections with 1012); bob resumes on c and
    his call, homed on a, goes on."""
    async with running_nodes(resuming_node, "a", "c") as (services, (a, c)):
        async with running_server(resuming_node(services, "b")) as b:
            alice, bob = await a.phone("alice"), await b.phone("bob")
            conf, number = await answered_call(alice, bob)
            await alice.say(1, "one", id="m1")
            assert (await bob.fty(number))["seq"] == 1
            assert (await alice.fty(1))["state"] == "delivered"
            b.phones.remove(bob)  # the node closes it, not the test
        assert (await bob.client.wait_closed())[0] == 1012
        await alice.say(1, "two", id="m2")
        again, result = await resume_phone(c, bob, PASSWORDS["bob"], {conf: 1})
        assert result["resumed"] is True
        number = await answer_resumed(again, conf)
        assert (await again.fty(number))["seq"] == 2
        acks = [await alice.fty(1) for _ in range(2)]
        assert [(ack["id"], ack["state"]) for ack in acks] == [("m2", "held"), ("m2", "delivered")]
        await again.say(number, "from c", id="r1")
        assert (await alice.fty(1))["seq"] == 3
        assert (await again.fty(number))["state"] == "delivered"
        await alice.sync()
        await again.sync()
