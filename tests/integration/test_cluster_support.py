"""Live support across hub nodes that are separate processes (issue 17's tests, docs
12.46): a chat homed on one node with its agents on others is picked once, an agent full
with a chat of one node is not offered a chat of another, the board and the Queue API work
from any node, and each support event reaches the webhook once from the whole cluster."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

from signaling.bus import keys
from tests.integration.cluster_processes import DOMAIN, ClusterNodes, Tenant, cluster
from tests.integration.test_cluster_calls import one_winner
from tests.integration.test_support import queue_request, update, visit
from tests.integration.webhook_receiver import webhook_receiver
from tests.redis_server import RedisServer
from tests.support import Phone

JsonObject = dict[str, Any]

ROUNDS = 20
TAKEN = {"loc": 1, "num": 26}


def desk(*agents: str, **settings: str) -> Tenant:
    """Customers carol and dave; ``agents`` answer the queue ``desk`` (alice can take one
    chat at a time), where writing into a ringing chat takes it."""
    users: dict[str, dict[str, Any]] = {"carol": {}, "dave": {}}
    users.update({sip: {"max_chats": 1} if sip == "alice" else {} for sip in agents})
    lines = [
        f'[tenants."{DOMAIN}".queues.desk]',
        'dn = "Help desk"',
        f"agents = {json.dumps(list(agents))}",
        "take_on_write = true",
    ]
    for section, url in settings.items():
        lines += [f"[{section}]", f'url = "{url}"', 'secret = "cluster-hook-secret"']
    return Tenant(users=users, settings=tuple(lines))


async def board(nodes: ClusterNodes, name: str, sip: str) -> tuple[Phone, list[JsonObject]]:
    """A connection of agent ``sip`` on node ``name`` watching the desk's board: what it
    listed (``QueueInd``), the ``SubscribeResult`` last."""
    watcher = await nodes.login(name, sip)
    await watcher.client.send({"api": "Queue", "mt": "Subscribe", "src": "board", "queue": "desk"})
    listed = [await watcher.next()]
    while listed[-1]["mt"] != "SubscribeResult":
        listed.append(await watcher.next())
    return watcher, listed


async def answered(phone: Phone, src: str) -> JsonObject:
    reply = await phone.next()
    assert (reply.get("api"), reply.get("src")) == ("Queue", src), reply
    return reply


async def test_a_chat_with_its_agents_on_other_nodes_is_picked_once_and_max_chats_holds(
    tmp_path: Path,
) -> None:
    async with cluster(tmp_path, "a", "b", "c", tenant=desk("alice", "bob")) as (redis, nodes):
        carol, alice, bob = (
            await nodes.phone("a", "carol"),
            await nodes.phone("b", "alice"),
            await nodes.phone("c", "bob"),
        )
        for number in range(1, ROUNDS + 1):
            await pick(carol, (alice, bob), number)
        # alice takes a chat homed on a; one homed on b, her own node, goes to bob only
        conf, _ = await visit(carol, ROUNDS + 1)
        mine, _ = await alice.offered()
        theirs, _ = await bob.offered()
        await alice.signal(mine, {"type": "conn"})
        await carol.sig(ROUNDS + 1, "conn")
        assert (await bob.sig(theirs, "rel"))["sig"]["cau"] == TAKEN
        dave = await nodes.phone("b", "dave")
        waiting, _ = await visit(dave, 1)
        second, _ = await bob.offered()
        assert await chats_of(redis, "alice") == {f"a.{conf}"}  # her claim was refused
        await alice.sync()  # and nothing was offered to her
        # nor may she take it: b counts none of her chats, her claim set counts a's
        await alice.client.send({"api": "Queue", "mt": "Take", "src": "t", "confId": waiting})
        refused = await answered(alice, "t")
        assert (refused["mt"], refused["code"]) == ("Error", "unavailable"), refused
        await bob.signal(second, {"type": "conn"})
        await dave.sig(1, "conn")
        for phone, number in ((carol, ROUNDS + 1), (dave, 1)):
            await phone.signal(number, {"type": "rel"})
        await alice.sig(mine, "rel")
        await bob.sig(second, "rel")


async def test_a_waiting_chat_is_offered_when_an_agent_comes_online_or_frees_up_elsewhere(
    tmp_path: Path,
) -> None:
    """Carol's chat (homed on a) waits with no agent online; alice comes online on b and
    is offered it. Dave's chat (homed on c) waits while alice is full; when carol's chat
    ends on a, alice has room again and c offers her dave's."""
    async with cluster(tmp_path, "a", "b", "c", tenant=desk("alice", "bob")) as (redis, nodes):
        carol, dave = await nodes.phone("a", "carol"), await nodes.phone("c", "dave")
        conf, _ = await visit(carol, 1)
        alice = await nodes.phone("b", "alice")
        first, offer = await alice.offered()
        assert offer["confId"] == conf
        await alice.signal(first, {"type": "conn"})
        await carol.sig(1, "conn")
        watcher, _ = await board(nodes, "a", "bob")
        other, _ = await visit(dave, 1)
        await alice.sync()  # full: her claim is refused
        waiting = await update(watcher, "ChatWaiting")  # a knows dave's chat (nodes just
        assert waiting["chat"]["confId"] == other  # started meet within a heartbeat)
        await carol.signal(1, {"type": "rel"})
        await alice.sig(first, "rel")
        second, offer = await alice.offered()
        assert offer["confId"] == other
        await alice.signal(second, {"type": "conn"})
        await dave.sig(1, "conn")
        assert await chats_of(redis, "alice") == {f"c.{other}"}
        await dave.signal(1, {"type": "rel"})
        await alice.sig(second, "rel")
        await alice.sync()
        await watcher.client.close()


async def pick(visitor: Phone, agents: tuple[Phone, ...], number: int) -> None:
    """Every agent answers the visitor's chat at once: one wins; each other's ``conn``
    is told ``already_taken``, as on one node."""
    await visit(visitor, number)
    offers = {agent: (await agent.offered())[0] for agent in agents}
    await one_winner(visitor, number, offers, "already_taken")


async def chats_of(redis: RedisServer, agent: str) -> set[str]:
    """The chats of the agent's claim set (``max_chats`` across nodes), by home name."""
    client = redis.client()
    try:
        members = await client.smembers(keys.claim_set(f"max_chats:{DOMAIN}:{agent}"))
    finally:
        await client.aclose()
    return {f"{m.decode().split('.')[0]}.{m.decode().rsplit(':', 1)[1]}" for m in members}


async def test_the_board_and_the_queue_api_work_on_nodes_that_are_not_the_chat_s_home(
    tmp_path: Path,
) -> None:
    async with cluster(tmp_path, "a", "b", "c", tenant=desk("alice", "bob")) as (_, nodes):
        carol, alice, bob = (
            await nodes.phone("a", "carol"),
            await nodes.phone("b", "alice"),
            await nodes.phone("c", "bob"),
        )
        early, listed = await board(nodes, "b", "alice")
        assert [frame["mt"] for frame in listed] == ["SubscribeResult"]
        conf, _ = await visit(carol, 1)
        offer, _ = await alice.offered()
        other, _ = await bob.offered()
        assert (await update(early, "ChatWaiting"))["chat"]["confId"] == conf
        late, listed = await board(nodes, "c", "bob")
        assert [(f["mt"], f.get("chat", {}).get("confId")) for f in listed] == [
            ("QueueInd", conf),
            ("SubscribeResult", None),
        ]
        await queue_request(alice, "Take", "t1", confId=conf)  # from b: the home is a
        taken = await answered(alice, "t1")
        assert (taken["mt"], taken["confId"], taken["call"]) == ("TakeResult", conf, offer)
        await carol.sig(1, "conn")
        assert (await bob.sig(other, "rel"))["sig"]["cau"] == TAKEN
        for watcher in (early, late):
            assert (await update(watcher, "ChatTaken"))["agent"] == "alice"
        await carol.say(1, "my kettle", id="c1")
        assert (await alice.fty(offer))["data"] == "my kettle"
        assert (await carol.fty(1))["state"] == "delivered"
        await queue_request(alice, "Transfer", "t2", confId=conf, to="bob")
        assert (await alice.sig(offer, "rel"))["sig"]["cau"]["num"] == 16
        assert (await answered(alice, "t2"))["mt"] == "TransferResult"
        again, _ = await bob.offered()
        await bob.say(again, "bob here", id="b1")  # writing takes it, from c
        assert (await bob.fty(again))["data"] == "my kettle"  # what was said before
        assert (await bob.fty(again))["state"] == "delivered"
        assert (await carol.fty(1))["type"] == "name_identification"
        assert (await carol.fty(1))["data"] == "bob here"
        for watcher in (early, late):
            assert (await update(watcher, "ChatTransferred"))["to"] == "bob"
            await update(watcher, "ChatWaiting")
            assert (await update(watcher, "ChatTaken"))["agent"] == "bob"
        await queue_request(bob, "Close", "t3", confId=conf)  # from c
        assert (await bob.sig(again, "rel"))["sig"]["cau"]["num"] == 16
        assert (await answered(bob, "t3"))["mt"] == "CloseResult"
        assert (await carol.sig(1, "rel"))["sig"]["cau"]["num"] == 16
        for watcher in (early, late):
            assert (await update(watcher, "ChatClosed"))["by"] == "bob"
        for phone in (carol, alice, bob, early, late):
            await phone.sync()


async def test_each_support_event_reaches_the_webhook_once_from_the_whole_cluster(
    tmp_path: Path,
) -> None:
    """The chat's events come from its home, an agent's status from the agent's node.
    Each node sends its events in order, one at a time, so once every node's last event
    (an agent leaving) has arrived, whatever any node sent is in."""
    agents = {"a": "erin", "b": "alice", "c": "bob"}
    async with webhook_receiver() as hooks:
        tenant = desk(*agents.values(), webhooks=hooks.url)
        async with cluster(tmp_path, *agents, tenant=tenant) as (_, nodes):
            phones = {sip: await nodes.phone(name, sip) for name, sip in agents.items()}
            carol = await nodes.phone("a", "carol")
            await visit(carol, 1)
            offers = {sip: (await phone.offered())[0] for sip, phone in phones.items()}
            await phones["alice"].signal(offers["alice"], {"type": "conn"})
            await carol.sig(1, "conn")
            await carol.signal(1, {"type": "rel"})
            await phones["alice"].sig(offers["alice"], "rel")
            for sip, phone in phones.items():
                if sip != "alice":
                    assert (await phone.sig(offers[sip], "rel"))["sig"]["cau"] == TAKEN
                await phone.client.close()
            await hooks.until(3 * 3, "every agent's open and closed, the chat's three")
            for _ in range(500):
                if left(hooks.events) == set(agents.values()):
                    break
                await asyncio.sleep(0.01)
    told = Counter(tuple(told_of(event)) for event in hooks.events)
    assert told == Counter(
        [
            *(
                ("agent.status", sip, status)
                for sip in agents.values()
                for status in ("open", "closed")
            ),
            ("chat.waiting", "", ""),
            ("chat.taken", "alice", ""),
            ("chat.closed", "carol", ""),
        ]
    ), hooks.events


def left(events: list[JsonObject]) -> set[str]:
    return {
        event["data"]["agent"]
        for event in events
        if event["event"] == "agent.status" and event["data"]["status"] == "closed"
    }


def told_of(event: JsonObject) -> list[str]:
    data = event["data"]
    if event["event"] == "agent.status":
        return [event["event"], data["agent"], data["status"]]
    return [event["event"], data.get("agent") or data.get("by") or "", ""]
