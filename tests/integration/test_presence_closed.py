"""Presence the way shops need it (docs/protocol.md 12.37, 12.38), end to end over a real
server: a clean close is offline at once while the calls wait out the resume grace, a
lost link is not; visitors carry ``last_seen`` and ``recent``; a closed visitor page shows
on the board as gone, then its chat closes when the grace ends."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import httpx

from config import Config, QueueConfig
from tests.support import (
    PASSWORDS,
    Phone,
    RunningServer,
    make_config,
    resume_phone,
    running_server,
)

JsonObject = dict[str, Any]

GRACE = 60.5  # never a whole number of seconds: no timer is due exactly at an advance
WINDOW = 300.0


def _config() -> Config:
    config = make_config(messages=False, grace=GRACE, idle_timeout=3600.0)
    demo, *others = config.tenants
    queues = (*demo.queues, QueueConfig("desk", "Help desk", ("alice", "bob")))
    return replace(
        config,
        tenants=(replace(demo, queues=queues), *others),
        presence=replace(config.presence, recent_window=WINDOW),
    )


def _abort(phone: Phone) -> None:
    """Cut the TCP connection under the WebSocket: no close frame, a lost link."""
    phone.client._ws.transport.abort()


async def _subscribe(phone: Phone, number: int, to: str) -> JsonObject:
    await phone.signal(
        number,
        {"type": "setup", "channel": 0, "cd": {"sip": to}, "fty": [{"type": "presence_subscribe"}]},
    )
    await phone.sig(number, "conn")
    notify = await phone.fty(number)
    assert notify["type"] == "presence_notify"
    return notify


async def _notifies(phone: Phone, number: int) -> list[JsonObject]:
    """Every presence notify the hub sent ``phone`` within one round trip."""
    await phone.client.send({"mt": "KeepAlive"})
    got: list[JsonObject] = []
    while (message := await phone.next()) != {"mt": "KeepAlive"}:
        assert message.get("mt") == "Signaling" and message["call"] == number, message
        (item,) = message["sig"]["fty"]
        assert item["type"] == "presence_notify", item
        got.append(dict(item))
    return got


async def _resume(server: RunningServer, old: Phone, password: str) -> tuple[Phone, JsonObject]:
    phone, result = await resume_phone(server, old, password)
    assert result.get("resumed") is True, result
    return phone, result


async def _visitor(server: RunningServer) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=server.http, timeout=10) as http:
        answer = await http.post("/api/visitors", json={"name": "Ann Buyer"})
    assert answer.status_code == 201, answer.text
    return answer.json()["sip"], answer.json()["password"]


async def _settle(server: RunningServer, connections: int) -> None:
    """Wait until the hub has handled every close so far: it serves ``connections``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10.0
    while len(server.hub.switch.connections) != connections:
        assert loop.time() < deadline, len(server.hub.switch.connections)
        await asyncio.sleep(0.005)


def _now_ms(server: RunningServer) -> int:
    return int(server.clock.wall() * 1000)


async def test_a_clean_close_is_offline_at_once_while_its_call_waits_for_a_resume() -> None:
    async with running_server(_config()) as server:
        alice, bob = await server.phone("alice"), await server.phone("bob")
        assert (await _subscribe(alice, 5, "bob"))["status"] == "open"
        await alice.setup(1, "bob")
        await alice.sig(1, "call_proc")
        number, _ = await bob.offered()
        await bob.signal(number, {"type": "conn"})
        await alice.sig(1, "conn")
        # a lost link (a network blink) keeps presence: nothing is told
        _abort(bob)
        await _settle(server, 1)
        bob, _ = await _resume(server, bob, PASSWORDS["bob"])
        offered, _ = await bob.offered()
        await bob.signal(offered, {"type": "conn"})
        assert await _notifies(alice, 5) == []
        # a clean close (the page closed) is offline at once, though the call waits
        await bob.client.close()
        (closed,) = await _notifies(alice, 5)
        assert (closed["status"], closed["activity"]) == ("closed", "")
        await server.advance(GRACE - 10)
        bob, _ = await _resume(server, bob, PASSWORDS["bob"])
        offered, setup = await bob.offered()
        assert {"type": "resumed"} in setup["fty"]  # the same call, kept for the grace
        await bob.signal(offered, {"type": "conn"})
        (back,) = await _notifies(alice, 5)
        assert (back["status"], back["activity"]) == ("open", "available")
        assert "last_seen" not in back and "recent" not in back  # not a visitor
        # closed again, and nobody comes back: the call ends when the grace is up
        await bob.client.close()
        assert [n["status"] for n in await _notifies(alice, 5)] == ["closed"]
        await server.advance(GRACE + 1)
        rel = await alice.sig(1, "rel")
        assert rel["sig"]["cau"]["num"] == 16
        assert await _notifies(alice, 5) == []  # already offline: told once


async def test_a_visitors_presence_says_when_it_was_last_seen_and_whether_recently() -> None:
    async with running_server(_config()) as server:
        made = _now_ms(server)
        sip, password = await _visitor(server)
        alice = await server.phone("alice")
        first = await _subscribe(alice, 3, sip)
        assert (first["status"], first["last_seen"], first["recent"]) == ("closed", made, True)
        await server.advance(10)
        visitor = await server.phone(sip, password=password)
        (online,) = await _notifies(alice, 3)
        assert online["status"] == "open" and online["recent"] is True
        assert online["last_seen"] == _now_ms(server)
        await server.advance(20)
        gone = _now_ms(server)
        await visitor.client.close()
        (closed,) = await _notifies(alice, 3)
        assert (closed["status"], closed["last_seen"], closed["recent"]) == ("closed", gone, True)
        await server.advance(WINDOW - 1)  # the grace ends meanwhile: nothing to tell
        assert await _notifies(alice, 3) == []
        await server.advance(2)  # the window is over: told without asking
        (old,) = await _notifies(alice, 3)
        assert (old["status"], old["last_seen"], old["recent"]) == ("closed", gone, False)
        # a new subscriber sees the same
        dave = await server.phone("dave")
        late = await _subscribe(dave, 1, sip)
        assert (late["last_seen"], late["recent"]) == (gone, False)


async def test_a_closed_visitor_page_shows_gone_on_the_board_then_the_chat_closes() -> None:
    async with running_server(_config()) as server:
        sip, password = await _visitor(server)
        client = await server.connect()
        await client.login(password=PASSWORDS["alice"], sip="alice")
        board = Phone(client, "alice")
        server.phones.append(board)
        await client.send({"api": "Queue", "mt": "Subscribe", "src": "b", "queue": "desk"})
        assert (await board.next())["mt"] == "SubscribeResult"
        visitor = await server.phone(sip, password=password)
        await visitor.setup(1, "desk")
        await visitor.sig(1, "call_proc")
        waiting = await board.next()
        assert waiting["mt"] == "ChatWaiting"
        assert (waiting["chat"]["visitor_gone"], waiting["chat"]["gone_since"]) == (False, None)
        conf = waiting["chat"]["confId"]
        # the page closes: the chat stays (a reload may resume it), shown as gone
        gone = _now_ms(server)
        await visitor.client.close()
        updated = await board.next()
        assert updated["mt"] == "ChatUpdated" and updated["chat"]["confId"] == conf
        assert (updated["chat"]["visitor_gone"], updated["chat"]["gone_since"]) == (True, gone)
        # a reload within the grace takes the chat back: no longer gone
        await server.advance(5)
        visitor, _ = await _resume(server, visitor, password)
        back = await board.next()
        assert back["mt"] == "ChatUpdated"
        assert (back["chat"]["visitor_gone"], back["chat"]["gone_since"]) == (False, None)
        # closed again and not reloaded: the chat leaves the board when the grace ends
        await visitor.client.close()
        assert (await board.next())["chat"]["visitor_gone"] is True
        await board.sync()
        await server.advance(GRACE + 1)
        closed = await board.next()
        assert (closed["mt"], closed["chat"]["confId"], closed["cause"]) == ("ChatClosed", conf, 16)
