"""Deleting a whole chat (``DeleteChat``) and the queue's side of a stored support chat,
end to end over real WebSockets with the real messages service (docs/protocol.md 12.32).

alice and bob hold the ``messages`` licence in the demo tenant; carol gets it where a
test needs a licensed customer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from config import Config
from tests.integration.test_messages import (
    ask,
    call_offline,
    chats,
    licensed,
    read_chat,
    say_stored,
    session,
)
from tests.integration.test_support import desk_config, new_visitor, queue_request, visit
from tests.support import (
    PASSWORDS,
    Phone,
    RunningServer,
    drained,
    make_config,
    running_server,
)

JsonObject = dict[str, Any]


def delete_chat(config: Config, mode: str) -> Config:
    demo, *others = config.tenants
    return replace(config, tenants=(replace(demo, delete_chat=mode), *others))


async def until(phone: Phone, wanted: Callable[[JsonObject], bool]) -> JsonObject:
    """The next message ``wanted`` accepts; others (acks, presence) are passed over."""
    for _ in range(50):
        message = await phone.next()
        if wanted(message):
            return message
    raise AssertionError("never came")


def chat_deleted(message: JsonObject) -> bool:
    return message.get("api") == "PbxMessages" and message.get("mt") == "ChatDeleted"


async def reader(server: RunningServer, sip: str) -> Phone:
    """Another connection of ``sip``, logged in (not registered) with a Session."""
    client = await server.connect()
    await client.login(password=PASSWORDS[sip], sip=sip)
    phone = Phone(client, sip)
    server.phones.append(phone)
    await session(phone)
    return phone


async def stored_chat(server: RunningServer) -> Phone:
    """alice writes two stored messages to bob, who is offline; returns alice's phone."""
    alice = await server.phone("alice")
    await call_offline(alice, "bob")
    await say_stored(alice, 1, "the red one", "m1")
    await say_stored(alice, 1, "or the blue one", "m2")
    await drained(server)
    await session(alice)
    return alice


async def test_own_deletes_the_deleters_copy_and_tells_a_connected_peer() -> None:
    async with running_server(config=make_config()) as server:
        alice = await stored_chat(server)
        bob = await server.phone("bob")
        await session(bob)
        answers = await ask(alice, "DeleteChat", sip="bob")
        assert answers[-1]["mt"] == "DeleteChatResult", answers
        assert (answers[-1]["sip"], answers[-1]["removed"]) == ("bob", 2)
        event = await until(bob, chat_deleted)
        assert {k: event[k] for k in ("sip", "dn", "by", "role", "removed")} == {
            "sip": "alice",
            "dn": "Alice Example",
            "by": "alice",
            "role": "user",
            "removed": False,
        }
        assert "bob" not in await chats(alice)
        assert await read_chat(alice, "bob") == []
        kept = await read_chat(bob, "alice")
        assert [m["text"] for m in kept] == ["or the blue one", "the red one"]


async def test_a_device_offline_at_the_deletion_learns_it_at_sync() -> None:
    async with running_server(config=make_config()) as server:
        alice = await stored_chat(server)
        answers = await ask(alice, "DeleteChat", sip="bob")
        assert answers[-1]["mt"] == "DeleteChatResult", answers
        bob = await server.phone("bob")
        await session(bob)
        *inds, result = await ask(bob, "ReadChats")
        assert result["mt"] == "ReadChatsResult"
        notes = [ind for ind in inds if ind["mt"] == "ChatDeletedInd"]
        assert [(n["sip"], n["dn"], n["by"], n["role"], n["removed"]) for n in notes] == [
            ("alice", "Alice Example", "alice", "user", False)
        ]
        await read_chat(bob, "alice")  # seen: the note is gone
        *inds, _ = await ask(bob, "ReadChats")
        assert not [ind for ind in inds if ind["mt"] == "ChatDeletedInd"]


async def test_both_removes_the_other_sides_copy_too() -> None:
    async with running_server(config=delete_chat(make_config(), "both")) as server:
        alice = await stored_chat(server)
        bob = await server.phone("bob")
        await session(bob)
        assert "alice" in await chats(bob)
        await ask(alice, "DeleteChat", sip="bob")
        event = await until(bob, chat_deleted)
        assert (event["sip"], event["dn"], event["removed"]) == ("alice", "Alice Example", True)
        assert await read_chat(bob, "alice") == []
        assert "alice" not in await chats(bob)


async def test_deleting_what_is_not_yours_is_refused() -> None:
    async with running_server(config=licensed(desk_config(messages=True), "carol")) as server:
        alice = await stored_chat(server)
        # a chat that does not exist
        (error,) = await ask(alice, "DeleteChat", sip="carol")
        assert (error["mt"], error["code"]) == ("Error", "not_found")
        # a group alice is not a member of
        bob = await server.phone("bob")
        await session(bob)
        (created,) = await ask(bob, "WriteGroup", dn="Bob's club")
        (error,) = await ask(alice, "DeleteChat", sip=created["sip"])
        assert (error["mt"], error["code"]) == ("Error", "forbidden")
        # the queue's side: an unknown queue; a queue carol is no agent of
        (error,) = await ask(alice, "DeleteChat", sip="carol", queue="nosuchqueue")
        assert (error["mt"], error["code"]) == ("Error", "not_found")
        carol = await reader(server, "carol")
        (error,) = await ask(carol, "DeleteChat", sip="alice", queue="desk")
        assert (error["mt"], error["code"]) == ("Error", "forbidden")
        # bob's copy is untouched by all of this
        assert [m["text"] for m in await read_chat(bob, "alice")][-1] == "the red one"


async def test_the_queue_keeps_a_licensed_customers_support_chat() -> None:
    config = licensed(desk_config(messages=True), "carol", "dave")
    async with running_server(config=config) as server:
        carol = await server.phone("carol")
        alice, bob = await server.phone("alice"), await server.phone("bob")
        call_id, _ = await visit(
            carol, 1, "desk", {"type": "im_message", "mime": "text/plain", "data": "kettle leaks"}
        )
        offers = {}
        for name, agent in (("alice", alice), ("bob", bob)):
            number, _ = await agent.offered()
            offers[name] = number
        await alice.signal(offers["alice"], {"type": "conn"})
        await until(alice, lambda m: m.get("sig", {}).get("type") == "facility")
        await alice.say(offers["alice"], "Which model?", id="a1")
        await queue_request(alice, "Transfer", "x", confId=call_id, to="bob")
        await until(bob, lambda m: m.get("sig", {}).get("type") == "rel")
        number, _ = await bob.offered()
        await bob.signal(number, {"type": "conn"})
        await drained(server)

        # The next agent after the transfer reads the history under the queue.
        bob_reads = await reader(server, "bob")
        history = await read_chat(bob_reads, "carol", queue="desk")
        assert [m["text"] for m in history] == ["Which model?", "kettle leaks"]
        assert "carol" in await chats(bob_reads, queue="desk")
        # Any agent of the queue (dave never saw the chat) finds it through Search,
        # marked with the queue.
        dave = await reader(server, "dave")
        *hits, result = await ask(dave, "Search", text="kettle")
        assert result["mt"] == "SearchResult"
        assert [(h["sip"], h.get("queue")) for h in hits] == [("carol", "desk")]
        # The customer's own copy is there too, as before.
        carol_reads = await reader(server, "carol")
        assert [m["text"] for m in await read_chat(carol_reads, "desk")][-1] == "kettle leaks"
        # Someone who is not the queue's agent and never wrote in it is refused.
        (error,) = await ask(carol_reads, "ReadChat", sip="carol", queue="desk")
        assert (error["mt"], error["code"]) == ("Error", "forbidden")
        # The customer deletes the chat: the queue's agents are told, the queue keeps
        # its copy (own).
        answers = await ask(carol_reads, "DeleteChat", sip="desk")
        assert answers[-1]["mt"] == "DeleteChatResult", answers
        event = await until(dave, chat_deleted)
        assert (event["sip"], event["dn"], event["queue"], event["role"]) == (
            "carol",
            "Carol Example",
            "desk",
            "customer",
        )
        assert len(await read_chat(dave, "carol", queue="desk")) == 2


async def test_an_anonymous_visitors_chat_is_not_kept_under_the_queue() -> None:
    async with running_server(config=desk_config(messages=True)) as server:
        visitor = await new_visitor(server, "Ann Buyer")
        alice = await server.phone("alice")
        await visit(visitor, 1, "desk", {"type": "im_message", "mime": "text/plain", "data": "hi"})
        number, _ = await alice.offered()
        await alice.signal(number, {"type": "conn"})
        await until(alice, lambda m: m.get("sig", {}).get("type") == "facility")
        await alice.say(number, "hello visitor")
        await drained(server)
        alice_reads = await reader(server, "alice")
        assert await chats(alice_reads, queue="desk") == {}
        *hits, _ = await ask(alice_reads, "Search", text="hello")
        assert hits == []


async def test_a_writer_from_outside_the_queue_reads_its_chat_and_an_agent_deletes() -> None:
    """A transfer to dave, who is no agent of the queue: once he wrote in the chat he reads
    its history under the queue (that chat only). An agent of the queue deletes the queue's
    copy: the customer is told with role ``agent`` and keeps its own copy (``own``)."""
    config = desk_config(messages=True)
    demo, *others = config.tenants
    queues = tuple(
        replace(q, agents=("alice", "bob")) if q.sip == "desk" else q for q in demo.queues
    )
    config = licensed(
        replace(config, tenants=(replace(demo, queues=queues), *others)), "carol", "dave"
    )
    async with running_server(config=config) as server:
        carol, alice = await server.phone("carol"), await server.phone("alice")
        bob, dave = await server.phone("bob"), await server.phone("dave")
        call_id, _ = await visit(
            carol, 1, "desk", {"type": "im_message", "mime": "text/plain", "data": "my kettle"}
        )
        number, _ = await alice.offered()
        await bob.offered()
        await alice.signal(number, {"type": "conn"})
        await until(alice, lambda m: m.get("sig", {}).get("type") == "facility")
        await alice.say(number, "Let me ask dave", id="a1")
        await queue_request(alice, "Transfer", "x", confId=call_id, to="dave")
        await until(alice, lambda m: m.get("sig", {}).get("type") == "rel")
        number, _ = await dave.offered()
        await dave.signal(number, {"type": "conn"})
        await until(dave, lambda m: m.get("sig", {}).get("type") == "facility")
        await dave.say(number, "Which model is it?", id="d1")
        await drained(server)

        dave_reads = await reader(server, "dave")
        history = await read_chat(dave_reads, "carol", queue="desk")
        assert [m["text"] for m in history] == [
            "Which model is it?",
            "Let me ask dave",
            "my kettle",
        ]
        (error,) = await ask(dave_reads, "ReadChats", queue="desk")  # not the queue's others
        assert (error["mt"], error["code"]) == ("Error", "forbidden")

        carol_reads = await reader(server, "carol")
        bob_reads = await reader(server, "bob")
        answers = await ask(bob_reads, "DeleteChat", sip="carol", queue="desk")
        assert (answers[-1]["mt"], answers[-1]["removed"]) == ("DeleteChatResult", 3), answers
        event = await until(carol_reads, chat_deleted)
        assert {k: event[k] for k in ("sip", "dn", "by", "role", "removed")} == {
            "sip": "desk",
            "dn": "Help desk",
            "by": "bob",
            "role": "agent",
            "removed": False,
        }
        assert "queue" not in event  # the told side is the customer, not a queue
        assert len(await read_chat(carol_reads, "desk")) == 3
        assert await read_chat(bob_reads, "carol", queue="desk") == []


async def test_a_member_deletes_only_its_own_copy_of_a_groups_chat() -> None:
    """A group's chat: the member's own copy goes; the group, the other members' copies
    and their devices are untouched (no ChatDeleted)."""
    async with running_server(config=make_config()) as server:
        alice, bob = await server.phone("alice"), await server.phone("bob")
        await session(alice)
        (created,) = await ask(alice, "WriteGroup", dn="Team")
        group = created["sip"]
        await ask(alice, "WriteMember", grp=created["id"], member="bob", admin=False)
        await alice.setup(1, group)
        await alice.sig(1, "call_proc")
        await alice.sig(1, "conn")
        await alice.say(1, "hello team", id="t1")
        number, _ = await bob.offered()
        await bob.signal(number, {"type": "conn"})
        assert (await bob.fty(number))["data"] == "hello team"
        await drained(server)
        bob_reads = await reader(server, "bob")

        alice_reads = await reader(server, "alice")
        answers = await ask(alice_reads, "DeleteChat", sip=group)
        assert (answers[-1]["mt"], answers[-1]["removed"]) == ("DeleteChatResult", 1), answers
        assert await read_chat(alice_reads, group) == []
        assert group not in await chats(alice_reads)
        # (ask would meet a live ChatDeleted on bob's session before its answer)
        assert [m["text"] for m in await read_chat(bob_reads, group)] == ["hello team"]
        *inds, _ = await ask(bob_reads, "ReadChats")
        assert not [ind for ind in inds if ind["mt"] == "ChatDeletedInd"]
        *groups, _ = await ask(alice_reads, "ReadGroups")  # still a member
        assert [g["sip"] for g in groups] == [group]
