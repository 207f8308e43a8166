"""Licensed messaging end to end: hub, durable outbox, link and messages service in one
real server (PROTOCOL §4.10, §6, §7).

alice and bob hold the ``messages`` licence in the demo tenant; carol and dave do not.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from config import Config
from tests.support import Phone, RunningServer, drained, make_config, running_server

JsonObject = dict[str, Any]

_srcs = itertools.count(1)


async def session(phone: Phone) -> str:
    await phone.client.send({"api": "PbxMessages", "mt": "Session", "src": "session"})
    reply = await phone.next()
    assert reply["mt"] == "SessionResult", reply
    return str(reply["session"])


async def ask(phone: Phone, mt: str, **fields: Any) -> list[JsonObject]:
    """One PbxMessages request; its Inds and final answer (Result or Error), in order."""
    src = f"r{next(_srcs)}"
    await phone.client.send({"api": "PbxMessages", "mt": mt, "src": src, **fields})
    answers: list[JsonObject] = []
    while True:
        message = await phone.next()
        assert message.get("api") == "PbxMessages" and message.get("src") == src, message
        answers.append(message)
        if not message["mt"].endswith("Ind"):
            return answers


async def read_chat(phone: Phone, sip: str, **fields: Any) -> list[JsonObject]:
    *inds, result = await ask(phone, "ReadChat", sip=sip, **fields)
    assert result["mt"] == "ReadChatResult", result
    return [ind["msg"] for ind in inds]


async def chats(phone: Phone, **fields: Any) -> dict[str, JsonObject]:
    *inds, result = await ask(phone, "ReadChats", **fields)
    assert result["mt"] == "ReadChatsResult", result
    return {ind["sip"]: ind for ind in inds}


async def call_offline(phone: Phone, to: str, number: int = 1) -> str:
    """A call the hub answers for an offline licensed user (§7.5); returns its confId,
    the conversation's id that Posts and stored rows carry as ``callId``."""
    await phone.setup(number, to)
    call_id = (await phone.sig(number, "call_proc"))["sig"]["confId"]
    await phone.sig(number, "conn")
    return str(call_id)


async def say_stored(phone: Phone, number: int, text: str, message_id: str) -> JsonObject:
    await phone.say(number, text, id=message_id)
    ack = await phone.fty(number)
    assert (ack["type"], ack["id"], ack["state"]) == ("im_ack", message_id, "stored"), ack
    return ack


def journal_lines(data_dir: Path) -> list[bytes]:
    """The lines of the hub's outbox journal in ``data_dir`` (there is exactly one)."""
    (journal,) = data_dir.glob("outbox-*.jsonl")
    return journal.read_bytes().splitlines()


def forget_acknowledgements(data_dir: Path) -> None:
    """Drop the journal's ``done`` records, as if the hub died before writing them."""
    (journal,) = data_dir.glob("outbox-*.jsonl")
    lines = journal.read_bytes().splitlines()
    journal.write_bytes(b"".join(line + b"\n" for line in lines if b'"done"' not in line))


def licensed(config: Config, *sips: str) -> Config:
    """``config`` with the messages licence given to more demo users."""
    demo, *others = config.tenants
    users = tuple(
        replace(user, licences=user.licences | {"messages"}) if user.sip in sips else user
        for user in demo.users
    )
    return replace(config, tenants=(replace(demo, users=users), *others))


# -- history and restart -----------------------------------------------------------------------


async def test_history_survives_a_restart_of_hub_and_service(tmp_path: Path) -> None:
    async with running_server(data_dir=tmp_path) as server:
        alice, bob = await server.phone("alice"), await server.phone("bob")
        await alice.setup(1, "bob")
        await alice.sig(1, "call_proc")
        number, _ = await bob.offered()
        await bob.signal(number, {"type": "conn"})
        await alice.sig(1, "conn")
        for n in range(3):
            await alice.say(1, f"message {n}", id=f"a{n}")
            assert (await alice.fty(1))["state"] == "delivered"
            assert (await bob.fty(number))["data"] == f"message {n}"
        await bob.say(number, "<b>bold</b> reply", mime="text/html")
        await alice.fty(1)
    async with running_server(data_dir=tmp_path) as server:
        await drained(server)
        alice, bob = await server.phone("alice"), await server.phone("bob")
        await session(alice)
        await session(bob)
        history = await read_chat(alice, "bob")
        assert [(m["author"], m["text"]) for m in history] == [
            ("bob", "<b>bold</b> reply"),
            ("alice", "message 2"),
            ("alice", "message 1"),
            ("alice", "message 0"),
        ]
        assert [m["seq"] for m in history] == [4, 3, 2, 1]
        assert [m["text"] for m in await read_chat(bob, "alice")][-1] == "message 0"


# -- offline delivery, unread and the badge (§7.5, §4.10) --------------------------------------


async def test_offline_user_finds_messages_unread_and_reading_clears_the_badge(
    server: RunningServer,
) -> None:
    alice = await server.phone("alice")
    conf_id = await call_offline(alice, "bob")
    for n in range(3):
        await say_stored(alice, 1, f"while you were out {n}", f"o{n}")
    await alice.signal(1, {"type": "rel"})
    await drained(server)

    bob = await server.phone("bob")
    await bob.signal(
        9, {"type": "setup", "cd": {"sip": "bob"}, "fty": [{"type": "presence_subscribe"}]}
    )
    await bob.sig(9, "conn")
    first = await bob.fty(9)
    if "note" not in first or first["note"] != "#badge:3":
        first = await bob.fty(9)  # status first, then the badge the service reported
    assert first["note"] == "#badge:3" and first["status"] == "open"
    await session(bob)
    unread = await chats(bob, unread=True)
    assert list(unread) == ["alice"] and unread["alice"]["unread"] == 3
    assert unread["alice"]["dn"] == "Alice Example"
    await bob.client.send({"api": "PbxMessages", "mt": "ReadChat", "src": "rc", "sip": "alice"})
    badge = await bob.fty(9)  # the changed badge goes out before the answer (12.23)
    assert badge["note"] == "#badge:0"
    *inds, result = [await bob.next() for _ in range(4)]
    assert result["mt"] == "ReadChatResult" and result["src"] == "rc", result
    assert [ind["msg"]["text"] for ind in inds] == [f"while you were out {n}" for n in (2, 1, 0)]
    # stored rows name the conversation under the service's field name: the call's confId
    assert {ind["msg"]["callId"] for ind in inds} == {conf_id}
    assert await chats(bob, unread=True) == {}
    assert (await chats(bob))["alice"]["unread"] == 0


async def test_set_read_tells_the_author_on_the_live_call(server: RunningServer) -> None:
    alice, bob = await server.phone("alice"), await server.phone("bob")
    await alice.setup(1, "bob")
    await alice.sig(1, "call_proc")
    number, _ = await bob.offered()
    await bob.signal(number, {"type": "conn"})
    await alice.sig(1, "conn")
    await alice.say(1, "did you read this?", id="r1")
    await alice.fty(1)
    await bob.fty(number)
    await drained(server)
    await session(bob)
    (message,) = await read_chat(bob, "alice", noind=False)
    (result,) = await ask(bob, "SetRead", id=message["id"])
    assert result["mt"] == "SetReadResult" and result["id"] == message["id"]
    assert await alice.fty(1) == {"type": "im_seen", "seq": 1}
    await session(alice)
    (own,) = await read_chat(alice, "bob")
    assert own["read"] is True


# -- one side's delete, idempotent resend ------------------------------------------------------


async def test_deleting_on_one_side_leaves_the_other_sides_copy(server: RunningServer) -> None:
    alice = await server.phone("alice")
    await call_offline(alice, "bob")
    await say_stored(alice, 1, "keep me on bob's side", "d1")
    await say_stored(alice, 1, "and this", "d2")
    await drained(server)
    await session(alice)
    mine = await read_chat(alice, "bob")
    (result,) = await ask(alice, "Delete", id=mine[1]["id"])
    assert result["mt"] == "DeleteResult"
    assert [m["text"] for m in await read_chat(alice, "bob")] == ["and this"]
    bob = await server.phone("bob")
    await session(bob)
    assert [m["text"] for m in await read_chat(bob, "alice")] == [
        "and this",
        "keep me on bob's side",
    ]


async def test_a_post_resent_after_a_lost_post_result_is_stored_once(tmp_path: Path) -> None:
    async with running_server(data_dir=tmp_path) as server:
        alice = await server.phone("alice")
        await call_offline(alice, "bob")
        await say_stored(alice, 1, "only once", "once")
        await drained(server)
    # The hub died before it recorded the PostResult: its journal still holds the Post.
    forget_acknowledgements(tmp_path)
    async with running_server(data_dir=tmp_path) as server:
        outbox = server.hub.outbox
        assert outbox is not None
        await drained(server)
        bob = await server.phone("bob")
        await session(bob)
        assert [m["text"] for m in await read_chat(bob, "alice")] == ["only once"]
        alice = await server.phone("alice")
        await session(alice)
        assert [m["text"] for m in await read_chat(alice, "bob")] == ["only once"]


# -- who may read what (§6.1, §6.2) ------------------------------------------------------------


async def test_an_unlicensed_user_cannot_open_a_session(server: RunningServer) -> None:
    carol = await server.phone("carol")
    await carol.client.send({"api": "PbxMessages", "mt": "Session", "src": 1})
    assert await carol.next() == {
        "api": "PbxMessages",
        "mt": "Error",
        "code": "unlicensed",
        "text": "no messages licence",
        "src": 1,
    }
    (error,) = await ask(carol, "ReadChats")
    assert error["code"] == "unlicensed"


async def test_forged_user_topic_sip_and_domain_never_reach_another_users_chats() -> None:
    config = make_config()
    other, *_ = [t for t in config.tenants if t.domain == "other.org"]
    other_alice = replace(other.users[0], licences=frozenset({"messages"}))
    other = replace(other, users=(other_alice, *other.users[1:]))
    config = replace(config, tenants=(config.tenants[0], other))
    async with running_server(config) as server:
        alice = await server.phone("alice")
        await call_offline(alice, "bob")
        await say_stored(alice, 1, "secret for bob", "s1")
        await alice.signal(1, {"type": "rel"})
        await drained(server)
        intruder = await server.phone("alice", domain="other.org", password="other-alice-pw")
        await session(intruder)
        assert await chats(intruder) == {}
        assert await chats(intruder, user="bob", domain="example.com") == {}
        assert await read_chat(intruder, "bob", user="bob", domain="example.com") == []
        (forbidden,) = await ask(intruder, "ReadChat", topic="bob", sip="alice")
        assert forbidden["mt"] == "Error" and forbidden["code"] == "forbidden"
        await session(alice)
        (forbidden,) = await ask(alice, "ReadChats", topic="bob")
        assert forbidden["code"] == "forbidden"
        bob_rows = await read_chat(alice, "bob")
        assert [m["text"] for m in bob_rows] == ["secret for bob"]  # alice's own copy
        bob = await server.phone("bob")
        await session(bob)
        (bobs_copy,) = await read_chat(bob, "alice")
        for mt in ("Delete", "SetRead"):
            (error,) = await ask(alice, mt, id=bobs_copy["id"] + 0, user="bob")
            if error["mt"] == "Error":
                assert error["code"] == "not_found"
        (bobs_copy_again,) = await read_chat(bob, "alice")
        assert bobs_copy_again["text"] == "secret for bob"


# -- groups (§7.6) -----------------------------------------------------------------------------


async def test_groups_members_chat_and_non_members_can_neither_join_nor_read() -> None:
    async with running_server(licensed(make_config(), "dave")) as server:
        alice, bob, dave = (
            await server.phone("alice"),
            await server.phone("bob"),
            await server.phone("dave"),
        )
        await session(alice)
        (created,) = await ask(alice, "WriteGroup", dn="Team")
        assert created["mt"] == "WriteGroupResult", created
        group = created["sip"]
        (added,) = await ask(alice, "WriteMember", grp=created["id"], member="bob", admin=False)
        assert added["mt"] == "WriteMemberResult", added
        await session(dave)
        (refused,) = await ask(dave, "WriteMember", grp=created["id"], member="dave")
        assert refused["code"] == "forbidden"
        groups_of_dave = await ask(dave, "ReadGroups")
        assert [m["mt"] for m in groups_of_dave] == ["ReadGroupsResult"]

        await dave.setup(1, group)
        assert (await dave.sig(1, "rel"))["sig"]["cau"]["num"] == 21

        await alice.setup(1, group)
        joined = (await alice.sig(1, "call_proc"))["sig"]
        call_id = joined["confId"]
        await alice.sig(1, "conn")
        await alice.say(1, "hello team", id="t1")
        number, offer = await bob.offered()
        assert offer["confId"] == call_id and offer["cg"] == {"sip": group}
        assert offer["callId"] != joined["callId"]
        await bob.signal(number, {"type": "conn"})
        assert (await bob.fty(number))["data"] == "hello team"
        assert (await alice.fty(1))["state"] == "stored"
        await drained(server)
        await session(bob)
        assert [m["text"] for m in await read_chat(bob, group)] == ["hello team"]
        (refused,) = await ask(dave, "ReadChat", sip=group)
        assert refused["mt"] == "Error" and refused["code"] == "forbidden", refused
        assert group not in await chats(dave)


async def test_the_journal_is_in_the_data_directory_and_holds_json(tmp_path: Path) -> None:
    async with running_server(data_dir=tmp_path) as server:
        alice = await server.phone("alice")
        await call_offline(alice, "bob")
        await say_stored(alice, 1, "journal", "j")
        await drained(server)
    records = [json.loads(line) for line in journal_lines(tmp_path)]
    assert records[0]["post"]["text"] == "journal" and {"done": [1]} in records
