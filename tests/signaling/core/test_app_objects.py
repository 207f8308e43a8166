"""App objects as devices of their own and the AppWebsocket housekeeping, sans I/O
(PROTOCOL §3.7, §4.1 revised; docs 12.24).

Besides the demo tenant's users the tenant here has three App objects: ``echo-bot``
(PbxSignal, number 150), ``archivist`` (PbxSignal and PbxMessages, the ``messages``
licence) and ``ticker`` (PbxMessages only: it may log in, but is no device).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from config import AppConfig, Config, UserConfig
from signaling.appwebsocket.digest import login_digest
from signaling.core.switch import BUILD
from tests.signaling.core.harness import CHALLENGE, Harness, fty_of, im, sig_of
from tests.signaling.core.test_licensed import session, subscribe, up
from tests.support import make_config

JsonObject = dict[str, Any]

ECHO = AppConfig(name="echo-bot", password="echo-pw", dn="Echo", apis=("PbxSignal",), num="150")
ARCHIVIST = AppConfig(
    name="archivist",
    password="archivist-pw",
    apis=("PbxSignal", "PbxMessages"),
    licences=frozenset({"messages"}),
)
TICKER = AppConfig(name="ticker", password="ticker-pw", apis=("PbxMessages",))
APP_PASSWORDS = {app.name: app.password for app in (ECHO, ARCHIVIST, TICKER)}


def app_config(**changes: Any) -> Config:
    config = make_config(**changes)
    demo, *others = config.tenants
    return replace(
        config, tenants=(replace(demo, apps=(*demo.apps, ECHO, ARCHIVIST, TICKER)), *others)
    )


def library_login(name: str) -> JsonObject:
    """``AppLogin`` as innovaphone's JS library builds it for a password login: the App
    object's name as ``app``, ``sip`` and ``pbxObj``, 32 zeros as guid, dn "Admin"."""
    fields = {"app": name, "domain": "", "sip": name, "guid": "0" * 32, "dn": "Admin"}
    digest = login_digest(**fields, challenge=CHALLENGE, password=APP_PASSWORDS[name])
    return {"mt": "AppLogin", **fields, "digest": digest, "pbxObj": name}


def app_phone(h: Harness, name: str) -> int:
    """A registered (NO_MEDIA_CALL) session of App object ``name`` acting as itself."""
    conn = h.open()
    h.send(conn, {"mt": "AppChallenge"})
    h.take(conn)
    h.send(conn, library_login(name))
    result, info = h.take(conn)
    assert result["ok"] is True and info["mt"] == "PbxInfo", (result, info)
    h.send(conn, {"api": "PbxSignal", "mt": "Register", "src": "reg", "flags": "NO_MEDIA_CALL"})
    reply = h.one(conn)
    assert isinstance(reply.pop("resume"), str), reply
    assert reply == {"api": "PbxSignal", "mt": "RegisterResult", "src": "reg"}
    return conn


# -- App objects as devices (PROTOCOL §4.1 revised) --------------------------------------------


def test_an_app_object_with_pbxsignal_registers_and_chats_both_ways_under_its_own_name() -> None:
    h = Harness(app_config())
    bot, carol = app_phone(h, "echo-bot"), h.phone("carol")
    registration = h.switch.connections[bot].registration
    assert registration is not None
    assert (registration.user.sip, registration.user.dn, registration.user.num) == (
        "echo-bot",
        "Echo",
        "150",
    )
    h.setup(carol, 1, "echo-bot", im("ping"))
    sig_of(h.one(carol), 1, "call_proc")
    number, offer = h.offered(bot)
    assert offer["cg"] == {"sip": "carol", "num": "103"} and offer["cd"] == {
        "sip": "echo-bot",
        "num": "150",
    }
    h.signal(bot, number, {"type": "conn"})
    sig_of(h.one(carol), 1, "conn")
    ping = fty_of(h.one(bot), number)
    assert (ping["data"], ping["sender"]) == ("ping", "carol")
    h.say(bot, number, "pong")
    pong = fty_of(h.one(carol), 1)
    assert (pong["data"], pong["sender"], pong["sender_dn"]) == ("pong", "echo-bot", "Echo")
    h.signal(carol, 1, {"type": "rel"})
    sig_of(h.one(bot), number, "rel")
    h.finish()


def test_an_app_object_calls_a_user_and_another_app_object_by_name_or_number() -> None:
    h = Harness(app_config())
    archivist, bot, dave = app_phone(h, "archivist"), app_phone(h, "echo-bot"), h.phone("dave")
    h.signal(
        archivist,
        1,
        {"type": "setup", "channel": 0, "cd": {"num": "150"}, "fty": [{"type": "im_setup"}]},
    )
    sig_of(h.one(archivist), 1, "call_proc")
    number, offer = h.offered(bot)
    assert offer["cg"] == {"sip": "archivist"}
    assert {"type": "name_identification", "name": "archivist"} in offer["fty"]  # dn: its name
    h.signal(bot, number, {"type": "conn"})
    sig_of(h.one(archivist), 1, "conn")
    h.setup(bot, 1, "dave", im("hello dave"))
    sig_of(h.one(bot), 1, "call_proc")
    dave_number, to_dave = h.offered(dave)
    assert to_dave["cg"] == {"sip": "echo-bot", "num": "150"}
    h.signal(dave, dave_number, {"type": "conn"})
    sig_of(h.one(bot), 1, "conn")
    assert fty_of(h.one(dave), dave_number)["sender"] == "echo-bot"
    h.finish()


def test_an_app_object_without_pbxsignal_is_refused_and_unreachable() -> None:
    h = Harness(app_config())
    ticker = h.open()
    h.send(ticker, {"mt": "AppChallenge"})
    h.take(ticker)
    h.send(ticker, library_login("ticker"))
    assert h.take(ticker)[1]["apis"] == ["PbxMessages"]
    h.send(ticker, {"api": "PbxSignal", "mt": "Register", "src": "r", "flags": "NO_MEDIA_CALL"})
    assert h.one(ticker) == {
        "api": "PbxSignal",
        "mt": "RegisterResult",
        "err": "forbidden",
        "src": "r",
    }
    carol = h.phone("carol")
    h.setup(carol, 1, "ticker")
    assert sig_of(h.one(carol), 1, "rel")["cau"] == {"loc": 1, "num": 1}
    assert len(h.switch.registry) == 1
    h.finish()


def test_an_app_object_is_not_reachable_from_another_tenant() -> None:
    h = Harness(app_config())
    app_phone(h, "echo-bot")
    erin = h.phone("erin", password="erin-pw", domain="other.org")
    h.setup(erin, 1, "echo-bot")
    assert sig_of(h.one(erin), 1, "rel")["cau"] == {"loc": 1, "num": 1}
    h.setup(erin, 2, "echo-bot@example.com")
    assert sig_of(h.one(erin), 2, "rel")["cau"] == {"loc": 1, "num": 21}
    h.finish()


def test_the_app_objects_current_config_decides_at_register() -> None:
    h = Harness(app_config())
    bot = app_phone(h, "echo-bot")
    tenant = h.switch.directory.tenant("example.com")
    assert tenant is not None
    tenant.put_app(replace(ECHO, apis=()))  # an operator switches PbxSignal off
    h.send(bot, {"api": "PbxSignal", "mt": "Unregister", "src": "u"})
    h.take(bot)
    h.send(bot, {"api": "PbxSignal", "mt": "Register", "src": "r", "flags": "NO_MEDIA_CALL"})
    assert h.one(bot)["err"] == "forbidden"
    h.finish()


def test_a_removed_app_objects_registration_never_gets_a_new_users_calls() -> None:
    h = Harness(app_config())
    bot, carol = app_phone(h, "echo-bot"), h.phone("carol")
    tenant = h.switch.directory.tenant("example.com")
    assert tenant is not None
    tenant.remove_app("echo-bot")  # the operator deletes it, then makes a user of the name
    tenant.put(UserConfig(sip="echo-bot", dn="Echo Person", num="", password="p"))
    h.setup(carol, 1, "echo-bot")
    assert sig_of(h.take(carol)[-1], 1, "rel")["cau"]["num"] == 18  # the person is away
    h.quiet(bot)  # the old App registration hears nothing of it
    h.finish()


def test_an_app_object_shows_in_presence_while_registered() -> None:
    h = Harness(app_config())
    carol = h.phone("carol")
    assert subscribe(h, carol, 5, "echo-bot")["status"] == "closed"
    bot = app_phone(h, "echo-bot")
    assert fty_of(h.one(carol), 5)["status"] == "open"
    h.close(bot)
    assert fty_of(h.one(carol), 5)["status"] == "closed"
    h.signal(carol, 5, {"type": "rel"})
    h.finish()


def test_a_licensed_app_object_offline_is_answered_by_the_hub_and_stored() -> None:
    h = Harness(app_config())
    carol = h.phone("carol")
    h.setup(carol, 1, "archivist", im("for the record", id="r1"))
    proc, conn = h.take(carol)
    sig_of(proc, 1, "call_proc")
    assert sig_of(conn, 1, "conn")["fty"] == [{"type": "name_identification", "name": "archivist"}]
    (store,) = h.stores
    assert store.post["sides"] == ["archivist"] and store.post["author"] == "carol"
    h.signal(carol, 1, {"type": "rel"})
    h.finish()


def test_a_licensed_app_object_with_pbxmessages_opens_a_session_for_itself() -> None:
    h = up(Harness(app_config()))
    archivist = app_phone(h, "archivist")
    session(h, archivist)
    h.send(archivist, {"api": "PbxMessages", "mt": "ReadChats", "src": "r", "user": "alice"})
    (forwarded,) = h.to_service
    assert (forwarded["mt"], forwarded["user"]) == ("ReadChats", "archivist")
    h.record(h.switch.from_service({"mt": "ReadChatsResult", "src": forwarded["src"]}))
    assert h.one(archivist) == {"api": "PbxMessages", "mt": "ReadChatsResult", "src": "r"}
    bot = app_phone(h, "echo-bot")  # no licence, no PbxMessages
    h.send(bot, {"api": "PbxMessages", "mt": "Session", "src": "s"})
    assert h.one(bot)["code"] == "unlicensed"
    h.finish()


def test_acting_for_a_user_is_unchanged() -> None:
    h = Harness(app_config())
    as_carol = h.phone("carol", password="bot-secret", app="helpdesk-bot")
    registration = h.switch.connections[as_carol].registration
    assert registration is not None and registration.user.sip == "carol"
    h.finish()


# -- housekeeping (PROTOCOL §3.7) ----------------------------------------------------------------


def test_check_build_is_answered_before_login_and_after() -> None:
    h = Harness()
    conn = h.open()
    # innovaphone's library sends CheckBuild first, then AppChallenge (docs 12.24)
    h.send(conn, {"mt": "CheckBuild", "url": "https://pbx.example.com/app/page.htm"})
    h.send(conn, {"mt": "AppChallenge"})
    assert h.take(conn) == [
        {"mt": "CheckBuildResult", "url": f"https://pbx.example.com/app/{BUILD}/page.htm"},
        {"mt": "AppChallengeResult", "challenge": CHALLENGE},
    ]
    current = f"https://pbx.example.com/app/{BUILD}/page.htm?x=1"
    h.send(conn, {"mt": "CheckBuild", "url": current, "src": "b"})
    assert h.one(conn) == {"mt": "CheckBuildResult", "src": "b"}  # current: no url, no reload
    h.send(conn, {"mt": "CheckBuild"})
    assert h.one(conn)["code"] == "bad_json"
    h.send(conn, {"mt": "CheckBuild", "url": "https://[::1/app/page.htm", "src": "c"})
    assert h.one(conn) == {  # a URL that cannot be split is the client's error, not ours
        "mt": "Error",
        "code": "bad_json",
        "text": "CheckBuild url is no URL",
        "src": "c",
    }
    h.close(conn)
    alice = h.login("alice")
    h.send(alice, {"mt": "CheckBuild", "url": "/0badf00d/page.htm"})
    assert h.one(alice) == {"mt": "CheckBuildResult", "url": f"/{BUILD}/page.htm"}
    h.finish()


def test_app_info_is_answered_after_login_only() -> None:
    h = Harness()
    conn = h.open()
    h.send(conn, {"mt": "AppInfo", "app": "chat"})
    assert h.one(conn)["code"] == "not_logged_in"
    h.close(conn)
    alice = h.login("alice")
    h.send(alice, {"mt": "AppInfo", "app": "chat", "src": 9})
    assert h.one(alice) == {"mt": "AppInfoResult", "info": {"apis": {}}, "src": 9}
    h.finish()
