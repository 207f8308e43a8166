"""Trace flags switched at run time over the admin API (PROTOCOL §10.1), on a real server:
what is traced appears at once, stops at once, can be narrowed to one user, and never
shows a secret."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from config import Config
from tests.integration.test_messages import ask, session
from tests.support import PASSWORDS, RunningServer, connected_pair, make_config, running_server

ADMIN = ("admin", "trace-admin-secret")
SUBSYSTEMS = ("pbx", "http", "app", "database", "appwebsocket", "signalling", "browser")


def admin_config(password: str = ADMIN[1]) -> Config:
    config = make_config()
    return replace(config, admin=replace(config.admin, password=password))


@pytest.fixture
async def traced() -> AsyncIterator[tuple[RunningServer, httpx.AsyncClient]]:
    async with (
        running_server(admin_config()) as server,
        httpx.AsyncClient(base_url=server.http, auth=ADMIN, timeout=10) as http,
    ):
        yield server, http


async def put_flags(client: httpx.AsyncClient, /, **flags: Any) -> dict[str, Any]:
    answer = await client.put("/admin/trace", json={"flags": flags})
    assert answer.status_code == 200, answer.text
    state: dict[str, Any] = answer.json()
    return state


async def records(http: httpx.AsyncClient, since: int = 0) -> tuple[list[dict[str, Any]], int]:
    answer = await http.get("/admin/trace/log", params={"since": since})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return body["records"], body["last"]


async def test_pbx_on_shows_the_next_chat_and_off_stops_it(
    traced: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    server, http = traced
    state = (await http.get("/admin/trace")).json()
    assert state["flags"]["pbx"] is False and set(state["flags"]) == set(SUBSYSTEMS)
    await put_flags(http, pbx=True)
    _, mark = await records(http)
    alice, bob, number = await connected_pair(server)
    await alice.say(1, "traced hello")
    await bob.fty(number)
    seen, mark = await records(http, mark)
    texts = [r["text"] for r in seen if r["subsystem"] == "pbx"]
    assert any("recv" in t and "traced hello" in t for t in texts), texts
    assert any("send" in t and "traced hello" in t for t in texts)
    sender = next(r for r in seen if "recv" in r["text"] and "traced hello" in r["text"])
    assert (sender["user"], sender["domain"]) == ("alice", "example.com")

    await put_flags(http, pbx=False)  # no restart: the very next message is not traced
    await alice.say(1, "not traced")
    await bob.fty(number)
    later, _ = await records(http, mark)
    assert not [r for r in later if r["subsystem"] == "pbx" and "not traced" in r["text"]]


async def test_a_user_filter_traces_only_that_user(
    traced: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    server, http = traced
    answer = await http.put(
        "/admin/trace", json={"flags": {"pbx": True, "signalling": True}, "filter": {"user": "bob"}}
    )
    assert answer.json()["filter"] == {"user": "bob", "domain": ""}
    _, mark = await records(http)
    alice, bob, number = await connected_pair(server)
    await alice.say(1, "for bob")
    await bob.fty(number)
    seen, _ = await records(http, mark)
    assert seen and {r["user"] for r in seen} == {"bob"}
    assert any(r["subsystem"] == "signalling" for r in seen)
    assert any("for bob" in r["text"] for r in seen)  # what bob received


async def test_signalling_shows_call_states_and_routing(
    traced: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    server, http = traced
    await put_flags(http, signalling=True)
    await connected_pair(server)
    dave = await server.phone("dave")
    await dave.setup(1, "carol")  # carol is not registered: released with cause 18
    await dave.sig(1, "rel")
    text = (await http.get("/admin/trace/download")).text
    assert "setup to bob: offered to 1 device(s)" in text
    assert "bob@example.com call -1: conn: offered -> connected" in text  # the answer
    assert "alice@example.com call 1: hub conn: proceeding -> connected" in text  # told
    assert "refused: rel cause 18" in text


async def test_signalling_follows_a_support_chat(
    traced: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    server, http = traced
    await put_flags(http, signalling=True)
    alice = await server.phone("alice")
    carol = await server.phone("carol")
    await carol.setup(1, "support")
    await carol.sig(1, "call_proc")
    number, _ = await alice.offered()
    await alice.signal(number, {"type": "conn"})
    await carol.sig(1, "conn")
    text = (await http.get("/admin/trace/download")).text
    assert "carol@example.com call 1: setup to queue support" in text
    assert f"alice@example.com call {number}: offered " in text


async def test_no_secret_is_ever_traced_or_logged(
    traced: tuple[RunningServer, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    """Every flag on, every log line kept, over a login, a chat, a licensed session and a
    file upload."""
    caplog.set_level(logging.DEBUG)
    server, http = traced
    # every flag that records (browser records nothing: it tells clients a TraceFlags)
    await put_flags(http, **dict.fromkeys(SUBSYSTEMS, True) | {"browser": False})
    alice, bob, number = await connected_pair(server)
    await alice.say(1, "hello with everything traced")
    await bob.fty(number)
    await session(alice)
    (created,) = await ask(alice, "CreateFileBuffer", name="t.txt", size=4)
    assert (await http.post(created["upload"], content=b"data")).status_code == 201
    key = created["url"].split("key=", 1)[1]
    upload_key = created["upload"].split("upload=", 1)[1]
    await alice.say(1, "file", attach=created["url"])
    await bob.fty(number)
    text = (await http.get("/admin/trace/download")).text
    assert "hello with everything traced" in text  # the trace did see the traffic
    link = server.hub.link
    assert link is not None
    secrets = [*PASSWORDS.values(), ADMIN[1], key, upload_key, link._password]
    logged = "\n".join(  # the server's log, not this test's own HTTP client's
        record.getMessage()
        for record in caplog.records
        if not record.name.startswith(("httpx", "httpcore"))
    )
    assert logged  # the run did log (start-up at least)
    for secret in secrets:
        assert secret not in text, "a secret is in the trace"
        assert secret not in logged, "a secret is in the log"
    assert not re.search(r'"digest"\s*:\s*"[0-9a-f]', text)


async def test_the_admin_api_needs_the_admin_login(
    traced: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    server, _ = traced
    async with httpx.AsyncClient(base_url=server.http, timeout=10) as anonymous:
        for method, path in [
            ("GET", "/admin/trace"),
            ("PUT", "/admin/trace"),
            ("GET", "/admin/trace/log"),
            ("GET", "/admin/trace/download"),
            ("GET", "/debug.xml"),
        ]:
            answer = await anonymous.request(method, path)
            assert answer.status_code == 401, (method, path)
            assert answer.json()["code"] == "forbidden"
            assert answer.headers["www-authenticate"].startswith("Basic")
        wrong = await anonymous.get("/admin/trace", auth=("admin", "guess"))
        assert wrong.status_code == 401


async def test_without_an_admin_password_nobody_gets_in() -> None:
    async with (
        running_server(admin_config(password="")) as server,
        httpx.AsyncClient(base_url=server.http, timeout=10) as http,
    ):
        assert (await http.get("/admin/trace", auth=("admin", ""))).status_code == 401


async def test_bad_changes_are_refused_and_change_nothing(
    traced: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    _, http = traced
    before = (await http.get("/admin/trace")).json()
    for body in [{"flags": {"nope": True}}, {"flags": {"pbx": "yes"}}, ["pbx"], {"filter": 3}]:
        answer = await http.put("/admin/trace", json=body)
        assert answer.status_code == 400 and answer.json()["code"] == "bad_json", body
    assert (await http.put("/admin/trace", content=b"{not json")).status_code == 400
    assert (await http.get("/admin/trace")).json() == before


async def test_debug_xml_shows_and_sets_the_flags(
    traced: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    _, http = traced
    answer = await http.get("/debug.xml", params={"pbx": "on", "app": "off"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith(
        "application/xml"
    )
    assert '<flag name="pbx" on="true"/>' in answer.text
    assert '<flag name="app" on="false"/>' in answer.text
    assert (await http.get("/admin/trace")).json()["flags"]["pbx"] is True
    assert (await http.get("/debug.xml", params={"pbx": "maybe"})).status_code == 400


async def test_database_work_is_traced_with_its_time(
    traced: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    server, http = traced
    await put_flags(http, database=True)
    alice = await server.phone("alice")
    await session(alice)
    await ask(alice, "ReadChats")
    seen, _ = await records(http)
    lines = [r["text"] for r in seen if r["subsystem"] == "database"]
    assert any(re.fullmatch(r"\S*_chats done in \d+\.\d\d ms \(sqlite\)", t) for t in lines), lines


async def test_crafted_frames_and_urls_cannot_hide_a_secret_or_forge_a_line(
    traced: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    server, http = traced
    await put_flags(http, pbx=True, http=True)
    client = await server.connect()
    await client.send_text('{"mt":"AppLogin","sip":"x","dig\\u0065st":"ESCAPED-DIGEST"}')
    await client.send_text('{"mt":"Nope","note":"one\\nFAKE 99 pbx conn=3 carol@example.com"}')
    await http.get("/messages/files/abcdefghijklmnopqrstuv", params={"%6Bey": "x"})
    await http.get("/messages/files/abcdefghijklmnopqrstuv?%6Bey=PERCENT-KEY&%73ig=PERCENT-SIG")
    await http.get("/admin/trace/x%0AFAKE 100 app")
    text = (await http.get("/admin/trace/download")).text
    for secret in ("ESCAPED-DIGEST", "PERCENT-KEY", "PERCENT-SIG"):
        assert secret not in text
    assert not [line for line in text.splitlines() if line.startswith("FAKE")]


async def test_admin_errors_are_json_and_failed_logins_are_throttled(
    traced: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    server, http = traced
    missing = await http.get("/admin/nothing-here")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    wrong_method = await http.delete("/admin/trace")
    assert wrong_method.status_code == 405 and wrong_method.json()["code"] == "bad_state"
    deep = await http.put("/admin/trace", content=b"[" * 100_000)
    assert deep.status_code in (400, 413)
    cross = await http.get("/admin/trace", headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 401
    # a page's <img> of /debug.xml (e.g. a url a chat peer sent) never switches flags
    embedded = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Dest": "image"}
    assert (await http.get("/debug.xml?pbx=on", headers=embedded)).status_code == 401
    assert (await http.get("/admin/trace")).json()["flags"]["pbx"] is False
    typed = {"Sec-Fetch-Site": "none", "Sec-Fetch-Dest": "document"}
    assert (await http.get("/debug.xml", headers=typed)).status_code == 200
    async with httpx.AsyncClient(base_url=server.http, timeout=10) as guesser:
        for _ in range(6):
            await guesser.get("/admin/trace", auth=("admin", "guess"))
    assert (await http.get("/admin/trace")).status_code == 401  # this address is throttled


async def test_the_browser_flag_reaches_logged_in_clients(
    traced: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    server, http = traced
    alice = await server.phone("alice")
    await put_flags(http, browser=True)
    assert await alice.next() == {"mt": "TraceFlags", "browser": True}
    bob = await server.connect()  # logs in while it is on: told right after login
    await bob.login(password=PASSWORDS["bob"], sip="bob")
    assert await bob.recv() == {"mt": "TraceFlags", "browser": True}
    await put_flags(http, browser=False, pbx=True)  # only a change of browser is told
    assert await alice.next() == {"mt": "TraceFlags", "browser": False}
    await put_flags(http, pbx=False)
    await alice.sync()  # nothing else arrived
