"""Why my chat is gone (docs/protocol.md 12.35): a client that resumes and names in
``seqs`` a call that ended while it was away is told that call's ``rel`` with the cause
it ended with, over a real server."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any, NamedTuple

import httpx

from config import Config, QueueConfig
from tests.integration.test_support import queue_request, update, watch
from tests.support import Phone, RunningServer, make_config, resume_phone, running_server

JsonObject = dict[str, Any]
GRACE = 600.0  # longer than the chat's idle_close


def _config() -> Config:
    config = make_config(messages=False, grace=GRACE, idle_timeout=3600.0)
    demo, *others = config.tenants
    queues = (*demo.queues, QueueConfig("desk", "Help desk", ("alice",)))
    support = replace(config.support, idle_warn=90.0, idle_close=120.0, wait_timeout=300.0)
    return replace(config, tenants=(replace(demo, queues=queues), *others), support=support)


async def _resume(server: RunningServer, old: Phone, seqs: JsonObject, password: str) -> Phone:
    """A new connection of ``old``'s user takes its registration over with ``seqs``."""
    phone, result = await resume_phone(server, old, password, seqs)
    assert result["resumed"] is True, result
    return phone


async def _gone(server: RunningServer, phone: Phone, *, clean: bool) -> None:
    """The phone's link goes (a clean close, or lost without a close frame); returns once
    the hub has handled it, so what follows meets a detached registration."""
    before = len(server.hub.switch.connections)
    if clean:
        await phone.client.close()
    else:
        phone.client._ws.transport.abort()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10.0
    while len(server.hub.switch.connections) != before - 1:
        assert loop.time() < deadline
        await asyncio.sleep(0.005)


class Visitor(NamedTuple):
    phone: Phone
    password: str


async def _visitor(server: RunningServer) -> Visitor:
    """A visitor account (PROTOCOL §9.1), registered; its password kept for the resume."""
    async with httpx.AsyncClient(base_url=server.http, timeout=10) as http:
        answer = await http.post("/api/visitors", json={"name": "Ann Buyer"})
    assert answer.status_code == 201, answer.text
    made = answer.json()
    phone = await server.phone(made["sip"], password=made["password"])
    return Visitor(phone, made["password"])


async def _taken(server: RunningServer) -> tuple[Phone, Phone, Visitor, int, JsonObject]:
    """A visitor calls the desk and alice answers: alice, her board, the visitor, her
    call number and the ids of the visitor's leg."""
    alice = await server.phone("alice")
    board = await watch(server, "alice")
    visitor = await _visitor(server)
    await visitor.phone.signal(
        1, {"type": "setup", "channel": 0, "cd": {"sip": "desk"}, "fty": [{"type": "im_setup"}]}
    )
    proc = (await visitor.phone.sig(1, "call_proc"))["sig"]
    number, _ = await alice.offered()
    await alice.signal(number, {"type": "conn"})
    await visitor.phone.sig(1, "conn")
    await update(board, "ChatWaiting")
    await update(board, "ChatTaken")
    return alice, board, visitor, number, {"callId": proc["callId"], "confId": proc["confId"]}


async def _told(phone: Phone) -> JsonObject:
    """The next frame: a ``rel`` on a call number of the hub's, naming the ended call."""
    told = await phone.next()
    assert told["mt"] == "Signaling" and told["call"] < 0, told
    sig: JsonObject = told["sig"]
    assert sig["type"] == "rel"
    return sig


async def test_a_chat_that_expired_while_the_visitor_was_away_is_told_with_102() -> None:
    async with running_server(_config()) as server:
        alice, board, visitor, number, ids = await _taken(server)
        await _gone(server, visitor.phone, clean=False)
        await server.advance(120)  # silent: warned at 90 s, closed at 120 s
        closed = await update(board, "ChatClosed")
        assert (closed["cause"], closed["chat"]["confId"]) == (102, ids["confId"])
        assert (await alice.sig(number, "rel"))["sig"]["cau"] == {"loc": 1, "num": 102}
        back = await _resume(server, visitor.phone, {ids["confId"]: 0}, visitor.password)
        sig = await _told(back)
        assert sig == {"type": "rel", "cau": {"loc": 1, "num": 102}, **ids}
        await back.sync()  # nothing else: no re-offered call, nothing more told
        # told once: a second resume hears nothing of it
        await _gone(server, back, clean=False)
        again = await _resume(server, back, {ids["confId"]: 0}, visitor.password)
        await again.sync()


async def test_a_chat_the_agent_closed_is_told_with_16_by_the_legs_call_id() -> None:
    async with running_server(_config()) as server:
        alice, board, visitor, _, ids = await _taken(server)
        await _gone(server, visitor.phone, clean=True)  # the call still waits the grace
        await queue_request(alice, "Close", "c", confId=ids["confId"])
        await update(board, "ChatClosed")
        seqs = {ids["callId"]: 0, "no-such-call": 3}  # an unknown name is passed over
        back = await _resume(server, visitor.phone, seqs, visitor.password)
        sig = await _told(back)
        assert sig == {"type": "rel", "cau": {"loc": 1, "num": 16}, **ids}
        await back.sync()
