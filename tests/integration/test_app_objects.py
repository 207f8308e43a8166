"""App objects used the way innovaphone's own AppWebsocket library uses them, over a real
server (PROTOCOL §3.3, §3.7, §4.1 revised; docs 12.24).

The library's password login always logs in as the App object itself (``sip`` = its name,
``guid`` 32 zeros, ``dn`` "Admin", ``pbxObj`` = its name) and, when asked to check the
build, sends ``CheckBuild`` before its ``AppChallenge``; ``client_like_the_library`` does
exactly that. The tenant has ``echo-bot`` (PbxSignal, number 150), ``archivist``
(PbxSignal and PbxMessages, ``messages`` licence) and ``ticker`` (no PbxSignal).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from signaling.appwebsocket.digest import login_digest
from signaling.core.switch import BUILD, VERSION
from tests.integration.test_messages import chats, read_chat, session
from tests.signaling.core.test_app_objects import APP_PASSWORDS, app_config
from tests.support import Phone, RunningServer, drained, running_server

APP_NAMES = {app.name: app.dn or app.name for app in app_config().tenants[0].apps}


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    async with running_server(app_config()) as running:
        yield running


async def client_like_the_library(server: RunningServer, name: str) -> Phone:
    """Logged in as App object ``name`` the way the library does, PbxInfo checked."""
    client = await server.connect()
    await client.send({"mt": "CheckBuild", "url": f"http://{server.http[7:]}/bot/{BUILD}/a.htm"})
    await client.send({"mt": "AppChallenge"})
    assert await client.recv() == {"mt": "CheckBuildResult"}  # the current build: no reload
    challenge = await client.recv()
    assert challenge["mt"] == "AppChallengeResult"
    fields = {"app": name, "domain": "", "sip": name, "guid": "0" * 32, "dn": "Admin"}
    digest = login_digest(**fields, challenge=challenge["challenge"], password=APP_PASSWORDS[name])
    await client.send({"mt": "AppLogin", **fields, "digest": digest, "pbxObj": name, "lang": "en"})
    assert await client.recv() == {
        "mt": "AppLoginResult",
        "ok": True,
        "domain": "example.com",
        "dn": APP_NAMES[name],  # its own display name, not the "Admin" sent
    }
    info = await client.recv()
    assert info == {
        "mt": "PbxInfo",
        "domain": "example.com",
        "pbx": "switchboard",
        "pbxDns": "",
        "apis": info["apis"],
        "version": VERSION,  # version and build: documented extensions (docs 12.24)
        "build": BUILD,
    }
    phone = Phone(client, name)
    server.phones.append(phone)
    return phone


async def registered(server: RunningServer, name: str) -> Phone:
    phone = await client_like_the_library(server, name)
    result = await phone.register()
    assert result == {"api": "PbxSignal", "mt": "RegisterResult", "src": "reg"}, result
    return phone


async def test_the_librarys_login_registers_and_chats_with_a_user(server: RunningServer) -> None:
    bot, carol = await registered(server, "echo-bot"), await server.phone("carol")
    await bot.client.send({"mt": "AppInfo", "app": "echo-bot", "src": "i"})
    assert await bot.next() == {"mt": "AppInfoResult", "info": {"apis": {}}, "src": "i"}
    await carol.setup(1, "echo-bot", {"data": "ping", "mime": "text/plain"})
    await carol.sig(1, "call_proc")
    number, offer = await bot.offered()
    assert offer["cd"] == {"sip": "echo-bot", "num": "150"}
    await bot.signal(number, {"type": "conn"})
    await carol.sig(1, "conn")
    assert (await bot.fty(number))["data"] == "ping"
    await bot.say(number, "pong")
    pong = await carol.fty(1)
    assert (pong["data"], pong["sender"], pong["sender_dn"]) == ("pong", "echo-bot", "Echo")
    await carol.signal(1, {"type": "rel"})
    await bot.sig(number, "rel")
    await bot.sync()
    await carol.sync()


async def test_an_app_object_calls_another_and_shows_in_presence(server: RunningServer) -> None:
    carol = await server.phone("carol")
    presence = {"type": "setup", "cd": {"sip": "echo-bot"}, "fty": [{"type": "presence_subscribe"}]}
    await carol.signal(9, presence)
    await carol.sig(9, "conn")
    assert (await carol.fty(9))["status"] == "closed"
    bot = await registered(server, "echo-bot")
    assert (await carol.fty(9))["status"] == "open"
    archivist = await registered(server, "archivist")
    await archivist.signal(
        1, {"type": "setup", "channel": 0, "cd": {"num": "150"}, "fty": [{"type": "im_setup"}]}
    )
    await archivist.sig(1, "call_proc")
    number, offer = await bot.offered()
    assert offer["cg"] == {"sip": "archivist"}
    await bot.signal(number, {"type": "conn"})
    await archivist.sig(1, "conn")
    await archivist.say(1, "filed")
    assert (await bot.fty(number))["sender"] == "archivist"
    await bot.client.close()
    assert (await carol.fty(9))["status"] == "closed"


async def test_an_app_object_without_pbxsignal_is_still_forbidden(server: RunningServer) -> None:
    ticker = await client_like_the_library(server, "ticker")
    assert await ticker.register() == {
        "api": "PbxSignal",
        "mt": "RegisterResult",
        "err": "forbidden",
        "src": "reg",
    }
    carol = await server.phone("carol")
    await carol.setup(1, "ticker")
    assert (await carol.sig(1, "rel"))["sig"]["cau"] == {"loc": 1, "num": 1}


async def test_a_licensed_app_objects_messages_are_stored(server: RunningServer) -> None:
    carol = await server.phone("carol")
    await carol.setup(1, "archivist", {"data": "for the record", "mime": "text/plain"})
    await carol.sig(1, "call_proc")
    await carol.sig(1, "conn")  # offline and licensed: the hub answers and stores (§7.5)
    await carol.signal(1, {"type": "rel"})
    await drained(server)
    archivist = await registered(server, "archivist")
    await session(archivist)
    assert (await chats(archivist, unread=True))["carol"]["unread"] == 1
    (stored,) = await read_chat(archivist, "carol")
    assert (stored["author"], stored["text"]) == ("carol", "for the record")


async def test_check_build_before_login_asks_an_old_page_to_reload(server: RunningServer) -> None:
    client = await server.connect()
    await client.send({"mt": "CheckBuild", "url": "https://pbx.example.com/bot/0a0a/a.htm"})
    assert await client.recv() == {
        "mt": "CheckBuildResult",
        "url": f"https://pbx.example.com/bot/{BUILD}/a.htm",
    }
    await client.send({"mt": "AppInfo", "app": "bot"})
    assert (await client.recv())["code"] == "not_logged_in"
    await client.close()
