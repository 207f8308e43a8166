"""Group calls and stored chat across hub nodes that are separate processes, linked to
one messages service on PostgreSQL (issue 17's tests): a group set up on two nodes at the
same instant is one call."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from signaling.bus import keys
from tests.integration.cluster_processes import DOMAIN, cluster
from tests.integration.test_group_causality import groups_of
from tests.integration.test_messages import ask, session
from tests.redis_server import RedisServer
from tests.signaling.bus.test_fence import join
from tests.support import Phone

JsonObject = dict[str, Any]

ROUNDS = 50
WRITTEN = 300
"""Messages Bob writes into the group while its home is killed."""


async def team(alice: Phone, bob: Phone) -> str:
    """Alice makes a group with Bob in it; both of their nodes know it (Bob's answer
    to ``ReadGroups`` comes after the service told his hub, docs 12.23). Its sip."""
    for phone in (alice, bob):
        await session(phone)
    (created,) = await ask(alice, "WriteGroup", dn="Team")
    assert created["mt"] == "WriteGroupResult", created
    (added,) = await ask(alice, "WriteMember", grp=created["id"], member="bob", admin=False)
    assert added["mt"] == "WriteMemberResult", added
    assert created["sip"] in await groups_of(bob)
    return str(created["sip"])


async def no_home(redis: RedisServer, group: str) -> None:
    """Until the group's home is let go (its last device left its call)."""
    client = redis.client()
    try:
        for _ in range(500):
            if not await client.exists(keys.claim_set(f"group-home:{DOMAIN}:{group}")):
                return
            await asyncio.sleep(0.01)
    finally:
        await client.aclose()
    raise AssertionError(f"group {group} keeps its home")


async def test_a_group_set_up_on_two_nodes_at_the_same_instant_is_one_call(tmp_path: Path) -> None:
    async with cluster(tmp_path, "a", "b", messages=True) as (redis, nodes):
        alice, bob = await nodes.phone("a", "alice"), await nodes.phone("b", "bob")
        group = await team(alice, bob)
        for number in range(1, ROUNDS + 1):
            confs = await asyncio.gather(join(alice, number, group), join(bob, number, group))
            assert confs[0] == confs[1]
            await alice.say(number, f"round {number}", id=f"r{number}")
            assert (await bob.fty(number))["data"] == f"round {number}"
            assert (await alice.fty(number))["state"] == "delivered"
            for phone in (alice, bob):
                await phone.signal(number, {"type": "rel"})
            await no_home(redis, group)
        for phone in (alice, bob):
            await phone.sync()
