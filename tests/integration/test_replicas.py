"""Replicas of the messages service on one PostgreSQL, as processes (docs/protocol.md
12.41): devices on hubs linked to different replicas see each other's badges, read
marks and group changes; a hub whose replica is killed with SIGKILL fails over to the
other through a balancer, resends its outbox there, and nothing is stored twice.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from signaling.appwebsocket.client import AppWebsocketClient
from tests.integration.faults import run_fault
from tests.integration.processes import DOMAIN, Account, SplitServers, stopping
from tests.integration.test_faults import seed
from tests.integration.test_group_causality import call_group
from tests.integration.test_messages import ask, call_offline, read_chat, say_stored, session
from tests.support import Phone

WAIT = 15.0
"""Seconds to wait for something that takes milliseconds (processes on a busy machine)."""


async def linked(servers: SplitServers) -> None:
    """Until every hub's link to its replica is logged in."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    async with httpx.AsyncClient(timeout=5) as http:
        for hub in servers.hubs:
            while True:
                health = (await http.get(f"http://127.0.0.1:{hub.port}/healthz")).json()
                if health["checks"].get("messages_link") == "up":
                    break
                assert loop.time() < deadline, f"hub link not up: {health}"
                await asyncio.sleep(0.05)


async def device(url: str, account: Account, *, register: bool = True) -> Phone:
    client = await AppWebsocketClient.connect(url, max_size=None)
    await client.login(password=account.password, sip=account.sip, domain=DOMAIN)
    phone = Phone(client, account.sip)
    if register:
        result = await phone.register()
        assert result.get("mt") == "RegisterResult" and "err" not in result, result
    return phone


async def badge(phone: Phone, call: int, count: int) -> None:
    """Until the self-subscription on ``call`` shows ``count`` unread."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        item = await phone.fty(call)
        if item.get("note") == f"#badge:{count}":
            return
        assert loop.time() < deadline, f"no #badge:{count}, last {item}"


async def joined(phone: Phone, sip: str, numbers: range) -> int:
    """Call group ``sip`` until the hub knows it (the change crosses replicas a moment
    after its result); returns the refusals before the call went through."""
    for refusals, number in enumerate(numbers):
        if await call_group(phone, number, sip) is None:
            return refusals
        await asyncio.sleep(0.02)
    raise AssertionError(f"never joined {sip}")


async def test_devices_on_hubs_of_two_replicas_see_each_others_changes(
    tmp_path: Path, postgres_url: str
) -> None:
    servers = SplitServers(tmp_path / "run", postgres_url, replicas=2, links=(0, 1))
    hub_a, hub_b = (servers.url_of(hub) for hub in servers.hubs)
    with stopping(servers):
        try:
            await servers.start()
            await linked(servers)
            bob = await device(hub_b, servers.bob)  # on the hub linked to replica b
            await bob.signal(
                9, {"type": "setup", "cd": {"sip": "bob"}, "fty": [{"type": "presence_subscribe"}]}
            )
            await bob.sig(9, "conn")
            await badge(bob, 9, 0)

            alice = await device(hub_a, servers.alice)  # linked to replica a
            await call_offline(alice, "bob")  # hub a knows no device of bob's
            await say_stored(alice, 1, "stored through replica a", "x1")
            await badge(bob, 9, 1)  # a's Badge, told by b

            reader = await device(hub_b, servers.bob, register=False)
            await session(reader)
            (message,) = await read_chat(reader, "alice")
            await badge(bob, 9, 0)
            (result,) = await ask(reader, "SetRead", id=message["id"])
            assert result["mt"] == "SetReadResult", result
            assert await alice.fty(1) == {"type": "im_seen", "seq": 1}  # b's Seen, told by a

            (group,) = await ask(reader, "WriteGroup", dn="Across replicas")
            (added,) = await ask(reader, "WriteMember", grp=group["id"], member="alice")
            assert added["mt"] == "WriteMemberResult", added
            await joined(alice, group["sip"], range(10, 200))  # b's GroupInd, told by a
        except BaseException as exc:
            exc.add_note(servers.logs())
            raise


async def test_a_hub_failing_over_to_another_replica_stores_each_id_once(
    tmp_path: Path, postgres_url: str
) -> None:
    outcome = await run_fault("replica", postgres_url, tmp_path / "run", seed())
    assert outcome.defects() == [], outcome.report()
