"""Live support end to end over real WebSockets (PROTOCOL §9, with §4.5-§4.8): visitors
from ``POST /api/visitors``, queue offers, the board, transfer with transcript replay,
pick-once under a real race, volatile visitor chats, webhooks and the support timers on
the server's injected clock (advanced, never slept)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import sqlite3
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import respx

from config import Config, QueueConfig
from tests.support import (
    PASSWORDS,
    Phone,
    RunningServer,
    drained,
    make_config,
    posted,
    running_server,
)

JsonObject = dict[str, Any]

AGENTS = ("alice", "bob", "dave")
DNS = {"alice": "Alice Example", "bob": "Bob Example", "dave": "Dave Example"}
CONTEXT = {"product": "Kettle 3000", "url": "https://shop.example/kettle"}
HOOK_URL = "https://hooks.example.test/support"
HOOK_SECRET = "support-hook-secret"


def desk_config(*, messages: bool = False, **support: Any) -> Config:
    """The demo tenant plus the queue ``desk`` (agents alice, bob, dave); connections are
    never closed for idleness, whatever the clock does."""
    config = make_config(messages=messages, idle_timeout=3600.0)
    demo, *others = config.tenants
    queues = (*demo.queues, QueueConfig("desk", "Help desk", AGENTS))
    return replace(
        config,
        tenants=(replace(demo, queues=queues), *others),
        support=replace(config.support, **support),
    )


async def new_visitor(server: RunningServer, name: str) -> Phone:
    """A visitor account (§9.1), logged in and registered like a user."""
    async with httpx.AsyncClient(base_url=server.http, timeout=10) as http:
        answer = await http.post("/api/visitors", json={"name": name})
    assert answer.status_code == 201, answer.text
    visitor = answer.json()
    assert visitor["domain"] == "example.com"
    return await server.phone(visitor["sip"], password=visitor["password"])


async def watch(
    server: RunningServer,
    sip: str = "alice",
    queue: str = "desk",
    *,
    role: str = "agent",
    take_on_write: bool = False,
) -> Phone:
    """A connection of ``sip`` (not registered) that watches the queue's board (§9.3);
    the result says the agent's ``role`` there and the queue's ``take_on_write`` (12.34)."""
    client = await server.connect()
    await client.login(password=PASSWORDS[sip], sip=sip)
    board = Phone(client, sip)
    server.phones.append(board)
    await client.send({"api": "Queue", "mt": "Subscribe", "src": "board", "queue": queue})
    assert await board.next() == {
        "api": "Queue",
        "mt": "SubscribeResult",
        "src": "board",
        "queue": queue,
        "role": role,
        "take_on_write": take_on_write,
    }
    return board


async def update(board: Phone, mt: str) -> JsonObject:
    """The next board update, which must be ``mt``."""
    message = await board.next()
    assert (message.get("api"), message.get("mt"), message.get("src")) == (
        "Queue",
        mt,
        "board",
    ), message
    return message


async def queue_request(phone: Phone, mt: str, src: str, **fields: Any) -> None:
    await phone.client.send({"api": "Queue", "mt": mt, "src": src, **fields})


async def visit(
    visitor: Phone, number: int, queue: str = "desk", *fty: JsonObject
) -> tuple[str, list[JsonObject]]:
    """The visitor calls ``queue``; returns the chat's confId (the conversation, which the
    Queue API names) and the acknowledgement that followed ``call_proc`` for each
    ``im_message`` with an ``id``."""
    await visitor.signal(
        number,
        {
            "type": "setup",
            "channel": 0,
            "cd": {"sip": queue},
            "fty": [{"type": "im_setup"}, *fty],
        },
    )
    proc = (await visitor.sig(number, "call_proc"))["sig"]
    call_id = proc["confId"]
    assert isinstance(call_id, str) and call_id and proc["callId"] != call_id
    acks = [
        await visitor.fty(number) for item in fty if item["type"] == "im_message" and "id" in item
    ]
    return call_id, acks


def text(data: str, **fields: Any) -> JsonObject:
    return {"type": "im_message", "mime": "text/plain", "data": data, **fields}


def message_of(fty: JsonObject) -> tuple[int, str, str, str]:
    assert fty["type"] == "im_message", fty
    return fty["seq"], fty["sender"], fty["sender_dn"], fty["data"]


# -- 1. a scripted support session -------------------------------------------------------


async def test_a_visitor_is_served_by_alice_then_transferred_to_bob_who_closes() -> None:
    async with running_server(desk_config()) as server:
        alice, bob = await server.phone("alice"), await server.phone("bob")
        board = await watch(server, "alice")
        visitor = await new_visitor(server, "Ann Buyer")
        vsip = visitor.sip

        # The visitor calls the queue with a context and a first message: it is held.
        call_id, (held,) = await visit(
            visitor, 1, "desk", {"type": "context", **CONTEXT}, text("My kettle leaks", id="v1")
        )
        assert (held["type"], held["id"], held["seq"], held["state"]) == ("im_ack", "v1", 1, "held")

        # Both available agents are offered it, with the visitor's name and context.
        offers: dict[str, int] = {}
        legs: set[str] = set()
        for sip, agent in (("alice", alice), ("bob", bob)):
            number, sig = await agent.offered()
            offers[sip] = number
            assert sig["confId"] == call_id
            legs.add(sig["callId"])
            assert sig["cg"] == {"sip": vsip} and sig["cd"] == {"sip": "desk"}
            assert {"type": "name_identification", "name": "Ann Buyer"} in sig["fty"]
            assert {"type": "queue", "sip": "desk", "dn": "Help desk"} in sig["fty"]
            assert {"type": "context", **CONTEXT} in sig["fty"]
        assert len(legs) == 2 and call_id not in legs  # each agent's device: a leg of its own
        waiting = (await update(board, "ChatWaiting"))["chat"]
        assert waiting["confId"] == waiting["callId"] == call_id and waiting["queue"] == "desk"
        assert waiting["visitor"] == {"sip": vsip, "dn": "Ann Buyer"}
        assert waiting["context"] == CONTEXT and "agent" not in waiting
        assert isinstance(waiting["since"], int)

        # alice answers: bob's offer ends (26), alice gets the held message, the visitor
        # learns who answered and that the message is delivered.
        await alice.signal(offers["alice"], {"type": "conn"})
        assert (await bob.sig(offers["bob"], "rel"))["sig"]["cau"] == {"loc": 1, "num": 26}
        first = await alice.fty(offers["alice"])
        assert message_of(first) == (1, vsip, "Ann Buyer", "My kettle leaks")
        conn = await visitor.sig(1, "conn")
        assert {"type": "name_identification", "name": "Alice Example"} in conn["sig"]["fty"]
        delivered = await visitor.fty(1)
        assert (delivered["id"], delivered["seq"], delivered["state"]) == ("v1", 1, "delivered")
        taken = await update(board, "ChatTaken")
        assert taken["agent"] == "alice"
        assert taken["chat"]["agent"] == {"sip": "alice", "dn": "Alice Example"}
        assert taken["chat"]["confId"] == call_id

        # Messages both ways.
        await alice.say(offers["alice"], "Hello, Alice here. Which model?")
        assert message_of(await visitor.fty(1)) == (
            2,
            "alice",
            "Alice Example",
            "Hello, Alice here. Which model?",
        )
        await visitor.say(1, "The 3000 <b>one</b>", id="v2")
        ack = await visitor.fty(1)
        assert (ack["id"], ack["seq"], ack["state"]) == ("v2", 3, "delivered")
        assert message_of(await alice.fty(offers["alice"])) == (
            3,
            vsip,
            "Ann Buyer",
            "The 3000 &lt;b&gt;one&lt;/b&gt;",
        )

        # alice transfers to bob: her leg ends, bob alone is offered the same conversation.
        await queue_request(alice, "Transfer", "x", confId=call_id, to="bob")
        assert (await alice.sig(offers["alice"], "rel"))["sig"]["cau"] == {"loc": 1, "num": 16}
        assert await alice.next() == {
            "api": "Queue",
            "mt": "TransferResult",
            "src": "x",
            "confId": call_id,
            "callId": call_id,
            "to": "bob",
        }
        number, sig = await bob.offered()
        assert sig["confId"] == call_id and {"type": "context", **CONTEXT} in sig["fty"]
        assert sig["callId"] not in legs  # a new leg of the same conversation
        moved = await update(board, "ChatTransferred")
        assert (moved["from"], moved["to"], moved["chat"]["confId"]) == ("alice", "bob", call_id)
        assert "agent" not in moved["chat"]
        assert (await update(board, "ChatWaiting"))["chat"]["confId"] == call_id

        # The visitor writes while nobody has the chat: held for the next agent.
        await visitor.say(1, "Hello?", id="v3")
        ack = await visitor.fty(1)
        assert (ack["id"], ack["seq"], ack["state"]) == ("v3", 4, "held")

        # bob answers: the whole transcript, in seq order, then the visitor hears his name.
        await bob.signal(number, {"type": "conn"})
        replay = [message_of(await bob.fty(number)) for _ in range(4)]
        assert replay == [
            (1, vsip, "Ann Buyer", "My kettle leaks"),
            (2, "alice", "Alice Example", "Hello, Alice here. Which model?"),
            (3, vsip, "Ann Buyer", "The 3000 &lt;b&gt;one&lt;/b&gt;"),
            (4, vsip, "Ann Buyer", "Hello?"),
        ]
        assert await visitor.fty(1) == {"type": "name_identification", "name": "Bob Example"}
        ack = await visitor.fty(1)
        assert (ack["id"], ack["seq"], ack["state"]) == ("v3", 4, "delivered")
        taken = await update(board, "ChatTaken")
        assert taken["agent"] == "bob"
        assert taken["chat"]["agent"] == {"sip": "bob", "dn": "Bob Example"}

        # The visitor keeps talking, now to bob; alice hears nothing of it.
        await bob.say(number, "Bob here, sending a new seal.")
        assert message_of(await visitor.fty(1)) == (
            5,
            "bob",
            "Bob Example",
            "Bob here, sending a new seal.",
        )
        await visitor.say(1, "Thanks!")
        assert message_of(await bob.fty(number)) == (6, vsip, "Ann Buyer", "Thanks!")
        await alice.sync()

        # bob closes: both sides end with 16, the board says who closed it. (``callId`` is
        # the Queue API's older name of the same conversation id, still understood.)
        await queue_request(bob, "Close", "c", callId=call_id)
        assert (await bob.sig(number, "rel"))["sig"]["cau"] == {"loc": 1, "num": 16}
        assert await bob.next() == {
            "api": "Queue",
            "mt": "CloseResult",
            "src": "c",
            "confId": call_id,
            "callId": call_id,
        }
        assert (await visitor.sig(1, "rel"))["sig"]["cau"] == {"loc": 1, "num": 16}
        closed = await update(board, "ChatClosed")
        assert (closed["by"], closed["cause"], closed["chat"]["confId"]) == ("bob", 16, call_id)
        for phone in (alice, bob, visitor, board):
            await phone.sync()


# -- 2. pick-once under a real race ------------------------------------------------------


async def test_three_agents_answering_at_once_exactly_one_wins_every_round() -> None:
    rounds = 30
    config = desk_config()
    config = replace(config, limits=replace(config.limits, rate=10_000.0, burst=10_000))
    rng = random.Random(2024)
    async with running_server(config) as server:
        agents = {sip: await server.phone(sip) for sip in AGENTS}
        board = await watch(server, "alice")
        visitor = await new_visitor(server, "Racer")
        winners: list[str] = []
        for round_ in range(1, rounds + 1):
            call_id, _ = await visit(visitor, round_)
            numbers = {sip: (await agents[sip].offered())[0] for sip in AGENTS}
            assert (await update(board, "ChatWaiting"))["chat"]["confId"] == call_id
            order = list(AGENTS)
            rng.shuffle(order)
            await asyncio.gather(
                *(agents[sip].signal(numbers[sip], {"type": "conn"}) for sip in order)
            )
            conn = await visitor.sig(round_, "conn")
            (name,) = conn["sig"]["fty"]
            winner = next(sip for sip, dn in DNS.items() if name["name"] == dn)
            winners.append(winner)
            for sip in AGENTS:
                if sip == winner:
                    continue
                # its offer ended when the winner answered; its own conn came after that
                rel = await agents[sip].sig(numbers[sip], "rel")
                assert rel["sig"]["cau"] == {"loc": 1, "num": 26}
                error = await agents[sip].next()
                assert (error["mt"], error["code"], error["call"]) == (
                    "Error",
                    "already_taken",
                    numbers[sip],
                ), error
                assert error["api"] == "PbxSignal"
            taken = await update(board, "ChatTaken")
            assert taken["agent"] == winner and taken["chat"]["confId"] == call_id
            await visitor.signal(round_, {"type": "rel"})
            rel = await agents[winner].sig(numbers[winner], "rel")
            assert rel["sig"]["cau"] == {"loc": 1, "num": 16}
            closed = await update(board, "ChatClosed")
            assert (closed["by"], closed["cause"]) == (visitor.sip, 16)
            for phone in (*agents.values(), visitor, board):
                await phone.sync()  # nothing else: one ChatTaken, no second conn
        assert len(winners) == rounds and set(winners) <= set(AGENTS)


# -- 3. volatile visitor chats -----------------------------------------------------------


def on_disk(data_dir: Path) -> tuple[list[tuple[str, str, str, str]], bytes]:
    """(call_id, topic, peer, text) of every stored message, read straight from the
    service's database, and the bytes of the hub's outbox journal."""
    database = data_dir / "messages.sqlite3"
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT call_id, topic, peer, text FROM messages").fetchall()
    (journal,) = data_dir.glob("outbox-*.jsonl")
    return [(str(a), str(b), str(c), str(d)) for a, b, c, d in rows], journal.read_bytes()


async def test_a_visitors_chat_with_a_licensed_agent_is_never_stored(tmp_path: Path) -> None:
    async with running_server(make_config(idle_timeout=3600.0), data_dir=tmp_path) as server:
        await server.service_ready()
        alice, bob = await server.phone("alice"), await server.phone("bob")
        visitor = await new_visitor(server, "Quiet Visitor")
        call_id, _ = await visit(visitor, 1, "support", text("my secret order 4711"))
        numbers = {"alice": (await alice.offered())[0], "bob": (await bob.offered())[0]}
        await alice.signal(numbers["alice"], {"type": "conn"})
        await bob.sig(numbers["bob"], "rel")
        await visitor.sig(1, "conn")
        assert (await alice.fty(numbers["alice"]))["data"] == "my secret order 4711"
        await alice.say(numbers["alice"], "volatile answer", id="a1")
        assert (await alice.fty(numbers["alice"]))["state"] == "delivered"  # never "stored"
        assert (await visitor.fty(1))["data"] == "volatile answer"
        await visitor.say(1, "bye", id="v1")
        assert (await visitor.fty(1))["state"] == "delivered"
        await alice.fty(numbers["alice"])
        await visitor.signal(1, {"type": "rel"})
        await alice.sig(numbers["alice"], "rel")

        # A licensed chat right after, as the control: it is stored.
        await alice.setup(7, "bob")
        control = (await alice.sig(7, "call_proc"))["sig"]["confId"]
        number, _ = await bob.offered()
        await bob.signal(number, {"type": "conn"})
        await alice.sig(7, "conn")
        await alice.say(7, "stored control", id="c1")
        assert (await alice.fty(7))["state"] == "delivered"
        await bob.fty(number)
        await drained(server)
        outbox = server.hub.outbox
        assert outbox is not None
        assert not outbox.pending and outbox.acknowledged == 1  # one Post, both sides

        # What alice's history shows: bob, never the visitor nor the queue.
        await alice.client.send({"api": "PbxMessages", "mt": "Session", "src": "s"})
        assert (await alice.next())["mt"] == "SessionResult"
        await alice.client.send({"api": "PbxMessages", "mt": "ReadChats", "src": "rc"})
        listed: list[str] = []
        while (answer := await alice.next())["mt"] == "ReadChatsInd":
            listed.append(answer["sip"])
        assert answer["mt"] == "ReadChatsResult" and answer["src"] == "rc"
        assert listed == ["bob"]
        await alice.client.send(
            {"api": "PbxMessages", "mt": "ReadChat", "src": "r", "sip": visitor.sip}
        )
        assert (await alice.next())["mt"] == "ReadChatResult"  # no ReadChatInd at all

        # The database and the hub's outbox journal agree: no trace of the visitor's chat.
        rows, journal = on_disk(tmp_path)
        assert sorted((row[1], row[2]) for row in rows) == [("alice", "bob"), ("bob", "alice")]
        assert {row[0] for row in rows} == {control}
        assert not any(
            visitor.sip in (row[1], row[2]) or "secret" in row[3] or "volatile" in row[3]
            for row in rows
        )
        records = [json.loads(line) for line in journal.splitlines()]
        posts = [record["post"] for record in records if "post" in record]
        assert [post["callId"] for post in posts] == [control]
        assert call_id.encode() not in journal and visitor.sip.encode() not in journal


# -- 4. webhooks -------------------------------------------------------------------------


async def test_support_webhooks_are_signed_and_carry_the_chat() -> None:
    config = desk_config()
    config = replace(config, webhooks=replace(config.webhooks, url=HOOK_URL, secret=HOOK_SECRET))
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(HOOK_URL).mock(return_value=httpx.Response(200))
        async with running_server(config) as server:
            alice = await server.phone("alice")
            carol = await server.phone("carol")
            call_id, _ = await visit(carol, 1, "support", {"type": "context", **CONTEXT})
            number, _ = await alice.offered()
            await alice.signal(number, {"type": "conn"})
            await carol.sig(1, "conn")
            await carol.say(1, "hi")
            await alice.fty(number)
            await carol.signal(1, {"type": "rel"})
            await alice.sig(number, "rel")

            # alice publishes "away" on her subscription to herself (§4.10).
            subscribe = {"type": "presence_subscribe"}
            await alice.signal(50, {"type": "setup", "cd": {"sip": "alice"}, "fty": [subscribe]})
            await alice.sig(50, "conn")
            assert (await alice.fty(50))["activity"] == "available"
            await alice.signal(
                50, {"type": "facility", "fty": [{"type": "presence_publish", "activity": "away"}]}
            )
            assert (await alice.fty(50))["activity"] == "away"

            requests = await posted(route, 5)
            bodies = []
            for request in requests:
                digest = hmac.new(HOOK_SECRET.encode(), request.content, hashlib.sha256)
                signature = request.headers["x-switchboard-signature"]
                assert signature == f"sha256={digest.hexdigest()}"
                assert request.headers["content-type"] == "application/json"
                bodies.append(json.loads(request.content))
            assert [body["event"] for body in bodies] == [
                "agent.status",
                "chat.waiting",
                "chat.taken",
                "chat.closed",
                "agent.status",
            ]
            online, waiting, taken, closed, away = (body["data"] for body in bodies)
            agent = {"domain": "example.com", "agent": "alice", "queues": ["support", "desk"]}
            assert online == {**agent, "status": "open", "activity": "available"}
            assert away == {**agent, "status": "open", "activity": "away"}
            assert waiting["domain"] == "example.com"
            chat = waiting["chat"]
            assert chat["confId"] == call_id and chat["queue"] == "support"
            assert chat["visitor"] == {"sip": "carol", "dn": "Carol Example"}
            assert chat["context"] == CONTEXT and "agent" not in chat
            assert taken["agent"] == "alice" and taken["chat"]["confId"] == call_id
            assert taken["chat"]["agent"] == {"sip": "alice", "dn": "Alice Example"}
            assert (closed["by"], closed["cause"]) == ("carol", 16)
            assert closed["chat"]["confId"] == call_id
            assert isinstance(closed["chat"]["last_message_time"], int)
            assert all(isinstance(body["time"], int) for body in bodies)


# -- 5. the support timers on the injected clock -----------------------------------------


async def test_a_chat_nobody_takes_ends_with_19_after_the_wait_timeout() -> None:
    async with running_server(desk_config(wait_timeout=300.0)) as server:
        alice = await server.phone("alice")
        board = await watch(server, "alice")
        visitor = await new_visitor(server, "Patient")
        call_id, (held,) = await visit(visitor, 1, "desk", text("anyone?", id="q"))
        assert held["state"] == "held"
        number, _ = await alice.offered()  # offered, never answered
        await update(board, "ChatWaiting")
        await server.advance(299)
        for phone in (visitor, alice, board):
            await phone.sync()
        await server.advance(1)
        ack = await visitor.fty(1)
        assert (ack["id"], ack["state"]) == ("q", "not_delivered")
        assert (await visitor.sig(1, "rel"))["sig"]["cau"] == {"loc": 1, "num": 19}
        assert (await alice.sig(number, "rel"))["sig"]["cau"] == {"loc": 1, "num": 19}
        closed = await update(board, "ChatClosed")
        assert (closed["by"], closed["cause"], closed["chat"]["confId"]) == ("system", 19, call_id)
        for phone in (visitor, alice, board):
            await phone.sync()


async def test_a_silent_chat_is_warned_then_released_with_102_on_both_sides() -> None:
    config = desk_config(idle_warn=90.0, idle_close=120.0, wait_timeout=300.0)
    async with running_server(config) as server:
        alice = await server.phone("alice")
        board = await watch(server, "alice")
        visitor = await new_visitor(server, "Slow Writer")
        call_id, _ = await visit(visitor, 1)
        number, _ = await alice.offered()
        await alice.signal(number, {"type": "conn"})
        await visitor.sig(1, "conn")
        await update(board, "ChatWaiting")
        await update(board, "ChatTaken")

        await server.advance(60)
        await visitor.say(1, "hm")  # a message: the inactivity clock starts again
        assert (await alice.fty(number))["data"] == "hm"
        await server.advance(89)
        for phone in (visitor, alice):
            await phone.sync()
        await server.advance(1)
        for phone, call in ((visitor, 1), (alice, number)):
            warning = await phone.fty(call)
            assert warning["type"] == "im_message" and warning["system"] is True
            assert (warning["sender"], warning["sender_dn"]) == ("desk", "Help desk")
            assert "seq" not in warning and "closed soon" in warning["data"]
        await server.advance(29)
        for phone in (visitor, alice, board):
            await phone.sync()
        await server.advance(1)
        assert (await visitor.sig(1, "rel"))["sig"]["cau"] == {"loc": 1, "num": 102}
        assert (await alice.sig(number, "rel"))["sig"]["cau"] == {"loc": 1, "num": 102}
        closed = await update(board, "ChatClosed")
        assert (closed["by"], closed["cause"], closed["chat"]["confId"]) == ("system", 102, call_id)
        for phone in (visitor, alice, board):
            await phone.sync()
