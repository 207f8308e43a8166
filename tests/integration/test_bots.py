"""Bots (docs/bots.md): the example greeter runs as its own process against a real server,
a visitor calls the support queue, the bot answers and greets; the client API keeps a
chat across a lost connection (resume), with typing and acknowledgements; and an App object
logged in as itself places chats and is called by its name."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import replace

import httpx

from config import Config, QueueConfig, UserConfig
from signaling.appwebsocket.bot import Bot, Chat, ChatEnded
from tests.integration.processes import ROOT
from tests.support import Phone, RunningServer, make_config, running_server

GREETER = UserConfig(sip="greeter", dn="Greeter", num="190", password="greeter-pw")
EXAMPLE = ROOT / "docs" / "examples" / "greeter_bot.py"


def greeter_config(grace: float = 0.0) -> Config:
    config = make_config(grace=grace, idle_timeout=3600.0)
    demo, other = config.tenants
    support = QueueConfig(sip="support", dn="Example support", agents=("greeter",))
    demo = replace(demo, users=(*demo.users, GREETER), queues=(support,))
    return replace(config, tenants=(demo, other))


async def visitor(server: RunningServer, name: str) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=server.http, timeout=10) as http:
        made = (await http.post("/api/visitors", json={"name": name})).json()
    return made["sip"], made["password"]


async def next_with(phone: Phone, key: str) -> dict[str, object]:
    """The next facility item of call 1 carrying ``key`` (typing notices are skipped)."""
    while True:
        item = await phone.fty(1)
        if key in item:
            return item
        assert set(item) == {"type", "typing"} or "typing" in item, item


async def test_the_example_greeter_answers_a_visitor_in_the_support_queue() -> None:
    async with running_server(greeter_config()) as server:
        bot = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLE),
            "--url",
            server.url,
            "--password",
            "greeter-pw",
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
        )
        try:
            assert bot.stdout is not None
            line = await asyncio.wait_for(bot.stdout.readline(), 30)
            assert line.decode().startswith("greeter: logged in as greeter in example.com"), line
            sip, password = await visitor(server, "Ann")
            phone = await server.phone(sip, password=password)
            await phone.setup(1, "support")
            await phone.sig(1, "call_proc")
            conn = await phone.sig(1, "conn")
            assert {"type": "name_identification", "name": "Greeter"} in conn["sig"]["fty"]
            typing = await phone.fty(1)
            assert typing.get("typing") is True
            greeting = await next_with(phone, "data")
            assert greeting["data"].startswith("Hello Ann! I am the greeter."), greeting
            await phone.say(1, "What are your opening hours?", id="q1")
            assert (await next_with(phone, "state"))["state"] == "delivered"
            answer = await next_with(phone, "data")
            assert answer["data"] == "We are here from 9:00 to 18:00, Monday to Friday."
            await phone.say(1, "ok, bye", id="q2")
            assert (await next_with(phone, "state"))["state"] == "delivered"
            assert str((await next_with(phone, "data"))["data"]).startswith("Goodbye")
            rel = await phone.sig(1, "rel")
            assert rel["sig"]["cau"]["num"] == 16
        finally:
            bot.terminate()
            await asyncio.wait_for(bot.wait(), 30)


async def test_a_bot_keeps_its_chat_across_a_lost_connection() -> None:
    async with (
        running_server(greeter_config(grace=60.0)) as server,
        Bot(server.url, sip="greeter", password="greeter-pw", reconnect_delays=(0.05,)) as bot,
    ):
        alice = await server.phone("alice")
        await alice.setup(1, "greeter", {"mime": "text/plain", "data": "hi bot"})
        await alice.sig(1, "call_proc")
        chat = await anext(bot.offers())
        assert chat.peer["sip"] == "alice" and chat.peer_name == "Alice Example"
        await chat.answer()
        await alice.sig(1, "conn")
        assert (await chat.receive(10)).data == "hi bot"
        assert await chat.send("hello alice") == "delivered"
        assert (await alice.fty(1))["data"] == "hello alice"

        hub = server.hub  # the hub drops the bot's link, as after a network blink
        (conn_id,) = [
            c.id
            for c in hub.switch.connections.values()
            if c.registration is not None and c.registration.user.sip == "greeter"
        ]
        hub._apply(hub.switch.kick(conn_id, 4006, "idle"))
        await alice.say(1, "are you there?", id="m2")
        assert (await alice.fty(1))["state"] == "held"  # the bot is away for a moment
        assert (await chat.receive(10)).data == "are you there?"  # after the resume, once
        assert bot.resumes == 1
        assert (await alice.fty(1))["state"] == "delivered"
        assert await chat.send("still here") == "delivered"
        assert (await alice.fty(1))["data"] == "still here"
        await alice.signal(1, {"type": "rel"})
        try:
            await chat.receive(10)
            raise AssertionError("the chat did not end")
        except ChatEnded as ended:
            assert ended.cause == 16


async def test_an_app_object_bot_places_a_chat_and_is_called_by_its_name() -> None:
    """``Bot(app=…)``: an App object with PbxSignal chats under its own name (12.24): it
    places a chat with a first message, exchanges messages with acks and typing, and is
    offered the chats users place to its name."""
    async with (
        running_server(make_config(idle_timeout=3600.0)) as server,
        Bot(server.url, app="helpdesk-bot", password="bot-secret") as bot,
    ):
        assert bot.domain == "example.com"
        alice = await server.phone("alice")
        chat = await bot.call("alice", "Your order 4711 has shipped.")
        number, offer = await alice.offered()
        assert offer["cg"]["sip"] == "helpdesk-bot"
        assert {"type": "name_identification", "name": "Helpdesk bot"} in offer["fty"]
        await alice.signal(number, {"type": "conn"})
        await asyncio.wait_for(chat.connected.wait(), 10)
        first = await alice.fty(number)  # held until alice answered (§4.5)
        assert first["data"] == "Your order 4711 has shipped."
        await alice.say(number, typing=True)
        await asyncio.wait_for(until_typing(chat), 10)
        await alice.say(number, "When will it arrive?", id="q1")
        assert (await alice.fty(number))["state"] == "delivered"
        assert (await chat.receive(10)).data == "When will it arrive?"
        assert not chat.peer_typing  # a message ends the typing
        await chat.typing(True)
        assert (await alice.fty(number)).get("typing") is True
        assert await chat.send("Tomorrow before noon.") == "delivered"
        assert (await alice.fty(number))["data"] == "Tomorrow before noon."
        assert (await alice.fty(number)).get("typing") is False  # follows the message (12.5)
        await chat.release()
        assert (await alice.sig(number, "rel"))["sig"]["cau"]["num"] == 16

        await alice.setup(1, "helpdesk-bot", {"mime": "text/plain", "data": "one more thing"})
        await alice.sig(1, "call_proc")
        called = await asyncio.wait_for(anext(bot.offers()), 10)
        assert (called.peer["sip"], called.peer_name) == ("alice", "Alice Example")
        await called.answer()
        await alice.sig(1, "conn")
        assert (await called.receive(10)).data == "one more thing"
        assert await called.send("Sure, go ahead.") == "delivered"
        assert (await alice.fty(1))["data"] == "Sure, go ahead."


async def until_typing(chat: Chat) -> None:
    """Until the bot has read the peer's typing notice (the caller bounds the wait)."""
    while not chat.peer_typing:  # noqa: ASYNC110 - the Bot API has a flag, not an event
        await asyncio.sleep(0.01)
