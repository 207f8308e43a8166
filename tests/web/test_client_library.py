"""The browser client library (web/static/js/switchboard.js) in a real Chromium: login
digest, registration, a chat between two browser contexts, resume after a dropped link."""

from __future__ import annotations

from playwright.async_api import Browser, Page

from tests.support import running_server

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
