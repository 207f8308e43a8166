"""Group calls and stored chat across hub nodes that are separate processes, linked to
one messages service on PostgreSQL (issue 17's tests): a group set up on two nodes at the
same instant is one call, and ``kill -9`` of a call's home loses no message acknowledged
``stored`` and stores none twice once the node runs again on its own disk."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg

from signaling.bus import keys
from tests.integration.cluster_processes import DOMAIN, cluster, gone
from tests.integration.test_group_causality import groups_of
from tests.integration.test_messages import ask, session
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
            await gone(redis, keys.claim_set(f"group-home:{DOMAIN}:{group}"))
        for phone in (alice, bob):
            await phone.sync()


async def write(phone: Phone, count: int) -> None:
    """``count`` messages with ids, a little apart, so that some are on their way
    whenever the home is killed."""
    for n in range(count):
        await phone.say(1, f"message {n}", id=f"m{n}")
        await asyncio.sleep(0.002)


async def written_rows(database: str) -> Counter[tuple[str, str]]:
    """How many rows the messages service holds of each client id Bob wrote, in each
    member's copy of the group's chat."""
    connection = await asyncpg.connect(database)
    try:
        records = await connection.fetch(
            "SELECT topic, client_id FROM messages WHERE author = 'bob' AND client_id IS NOT NULL"
        )
    finally:
        await connection.close()
    return Counter((str(record["topic"]), str(record["client_id"])) for record in records)


async def test_kill_9_of_the_home_node_stores_what_was_acked_stored_exactly_once(
    tmp_path: Path,
) -> None:
    """The group's call is homed on a; Bob on b is alone in it, so each message he
    writes is acknowledged ``stored`` once it is on a's disk. Node a is killed while he
    writes: Bob's call ends with 41; restarted on its disk, a hands the service what it
    had journaled; every message acknowledged ``stored`` is then in the database once."""
    async with cluster(tmp_path, "a", "b", messages=True) as (_, nodes):
        alice, bob = await nodes.phone("a", "alice"), await nodes.phone("b", "bob")
        group = await team(alice, bob)
        await join(alice, 1, group)  # the call is homed on a
        await join(bob, 1, group)
        await alice.signal(1, {"type": "rel"})
        await alice.sync()
        writing = asyncio.create_task(write(bob, WRITTEN))
        stored: list[str] = []
        while True:
            frame = await bob.sig(1)
            if frame["sig"]["type"] == "rel":
                assert frame["sig"]["cau"]["num"] == 41
                break
            (ack,) = frame["sig"]["fty"]
            assert (ack["type"], ack["state"]) == ("im_ack", "stored"), ack
            stored.append(ack["id"])
            if len(stored) == WRITTEN // 3:
                nodes.nodes["a"].kill()
        await writing
        assert WRITTEN // 3 <= len(stored) < WRITTEN
        await nodes.nodes["a"].start()  # on its own data directory, after its lease
        wanted = {(member, id) for member in ("alice", "bob") for id in stored}
        for _ in range(500):
            rows = await written_rows(nodes.database)
            if wanted <= set(rows):
                break
            await asyncio.sleep(0.02)
        assert wanted <= set(rows), sorted(wanted - set(rows))[:5]
        assert set(rows.values()) == {1}, rows.most_common(3)
