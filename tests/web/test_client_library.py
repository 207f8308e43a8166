"""The browser client library (web/static/js/switchboard.js) in a real Chromium: login
digest, registration, a chat between two browser contexts, the ``browser`` trace flag."""

from __future__ import annotations

from dataclasses import replace

import httpx
from playwright.async_api import Browser, Page

from tests.support import make_config, running_server

CONNECT = """async ([sip, password]) => {
  const { Client } = await import("/static/js/switchboard.js");
  const client = new Client({ sip, password });
  window.client = client;
  window.seen = [];
  client.addEventListener("call", (e) => { window.call = e.detail.call;
    if (e.detail.call.incoming) e.detail.call.answer(); });
  client.addEventListener("message", (e) => window.seen.push(e.detail.message.data));
  await client.connect();
  return client.status;
}"""


async def _client(browser: Browser, url: str, sip: str) -> Page:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(url)
    assert await page.evaluate(CONNECT, [sip, f"{sip}-demo"]) == "online"
    return page


async def test_two_browsers_chat_through_the_library(browser: Browser) -> None:
    async with running_server() as server:
        alice = await _client(browser, server.http + "/", "alice")
        bob = await _client(browser, server.http + "/", "bob")
        await alice.evaluate("() => { window.call = window.client.chat('bob'); }")
        await bob.wait_for_function("() => window.call && window.call.state !== 'offered'")
        await alice.wait_for_function("() => window.call.state === 'connected'")
        await alice.evaluate("() => window.call.send('hello <b>bob</b>')")
        await bob.wait_for_function("() => window.seen.length === 1")
        assert await bob.evaluate("() => window.seen") == ["hello &lt;b&gt;bob&lt;/b&gt;"]


async def test_a_wrong_password_is_refused(browser: Browser) -> None:
    async with running_server() as server:
        page = await (await browser.new_context()).new_page()
        await page.goto(server.http + "/")
        error = await page.evaluate(
            """async () => {
              const { Client } = await import("/static/js/switchboard.js");
              try { await new Client({ sip: "alice", password: "nope" }).connect(); }
              catch (e) { return e.message; }
              return "connected";
            }"""
        )
        assert error == "login failed"


async def test_the_browser_trace_flag_makes_the_client_log_its_traffic(browser: Browser) -> None:
    config = make_config()
    config = replace(config, admin=replace(config.admin, password="trace-secret"))
    async with running_server(config) as server:
        page = await _client(browser, server.http + "/", "alice")
        await page.evaluate(
            """() => {
              window.logged = [];
              const debug = console.debug;
              console.debug = (...args) => {
                window.logged.push(String(args[0]));
                debug(...args);
              };
            }"""
        )
        async with httpx.AsyncClient(base_url=server.http, timeout=10) as http:
            answer = await http.put(
                "/admin/trace", json={"browser": True}, auth=("admin", "trace-secret")
            )
            assert answer.status_code == 200
        await page.wait_for_function("() => window.client.trace === true")
        await page.evaluate("() => window.client.watch('bob')")
        await page.wait_for_function(
            "() => window.logged.some((t) => t.startsWith('switchboard >'))"
            " && window.logged.some((t) => t.startsWith('switchboard <'))"
        )


async def test_calls_know_their_confid_and_leg_and_resume_by_confid(browser: Browser) -> None:
    """Both devices of a chat learn the same ``confId`` and a ``callId`` of their own
    (PROTOCOL §4.5 revised); after a drop the library resumes with ``seqs`` keyed by the
    confId (§4.9) and keeps the same call, leg id and all."""
    async with running_server(make_config(grace=60)) as server:
        alice = await _client(browser, server.http + "/", "alice")
        bob = await _client(browser, server.http + "/", "bob")
        await alice.evaluate("() => { window.call = window.client.chat('bob'); }")
        await alice.wait_for_function("() => window.call.state === 'connected'")
        ids = "() => [window.call.confId, window.call.callId]"
        (conf, alice_leg), (bob_conf, bob_leg) = await alice.evaluate(ids), await bob.evaluate(ids)
        assert conf == bob_conf and len(conf) == 32
        assert len({conf, alice_leg, bob_leg}) == 3
        assert await bob.evaluate(
            "(conf) => window.client.byConfId.get(conf) === window.call", conf
        )
        await alice.evaluate("() => window.call.send('before')")
        await bob.wait_for_function("() => window.seen.length === 1")
        await bob.evaluate(
            """() => {
              const client = window.client;
              window.registers = [];
              window.before = window.call;
              const send = client._send.bind(client);
              client._send = (message) => {
                if (message.mt === "Register") window.registers.push(message);
                send(message);
              };
              client.ws.close(4000, "blink");
            }"""
        )
        await bob.wait_for_function("() => window.client.status === 'reconnecting'")
        await alice.evaluate("() => window.call.send('during')")
        await bob.wait_for_function("() => window.client.resumed && window.seen.length === 2")
        assert await bob.evaluate("() => window.seen") == ["before", "during"]
        (register,) = await bob.evaluate("() => window.registers")
        assert register["seqs"] == {conf: 1}
        assert await bob.evaluate(
            """() => window.call === window.before
              && window.client.calls.get(window.call.number) === window.call"""
        )
        assert await bob.evaluate(ids) == [conf, bob_leg]
