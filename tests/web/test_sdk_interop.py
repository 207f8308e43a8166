"""Interop with innovaphone's published APIs, in a real Chromium: a JavaScript client the
project wrote from the SDK pages (``clients/sdk_client.js``) logs two App objects in the
way an App object's password login does, registers both as devices, calls from one to the
other, exchanges ``im_message`` both ways, sends ``info``/``user_info``/``disc``, and stays
connected while idle far past ``limits.idle_timeout`` (scaled down to seconds here),
kept up by the transport's pings alone (PROTOCOL §3.5, §4.1, §4.7 revised; docs 12.24,
12.25, 12.26)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from playwright.async_api import Browser, Page

from tests.signaling.core.test_app_objects import APP_PASSWORDS, app_config
from tests.support import RunningServer, running_server

CLIENT = (Path(__file__).parent / "clients" / "sdk_client.js").read_text()
IDLE_TIMEOUT = 1.5


async def app_object(browser: Browser, server: RunningServer, name: str) -> Page:
    """A page whose ``window.dev`` is App object ``name``, logged in and registered."""
    context = await browser.new_context(bypass_csp=True)
    page = await context.new_page()
    await page.goto(server.http + "/healthz")
    await page.add_script_tag(content=CLIENT)
    info = await page.evaluate(
        """async ([url, name, password]) => {
          window.dev = new SdkClient(url);
          await dev.login(name, password);
          const result = await dev.register();
          return { info: dev.info, result };
        }""",
        [server.url, name, APP_PASSWORDS[name]],
    )
    assert info["result"]["mt"] == "RegisterResult" and "err" not in info["result"], info
    assert set(info["info"]) >= {"domain", "pbx", "pbxDns", "apis"}, info
    return page


async def test_two_app_objects_chat_signal_and_idle_through_the_sdk_client(
    browser: Browser,
) -> None:
    async with running_server(app_config(idle_timeout=IDLE_TIMEOUT)) as server:
        caller = await app_object(browser, server, "echo-bot")
        callee = await app_object(browser, server, "archivist")
        await caller.evaluate(
            """() => dev.signal(1, { type: "setup", channel: 0, cd: { sip: "archivist" },
                                     fty: [{ type: "im_setup" }] })"""
        )
        offer = await callee.evaluate("() => dev.sig('setup')")
        number = offer["call"]
        setup = offer["sig"]
        assert setup["cg"]["sip"] == "echo-bot" and number < 0
        assert {"callId", "confId"} <= set(setup), setup
        await callee.evaluate(
            "(n) => { dev.signal(n, { type: 'alert' }); dev.signal(n, { type: 'conn' }); }",
            number,
        )
        await caller.evaluate("() => dev.sig('conn', 1)")

        # im_message both ways, stamped by the hub
        await caller.evaluate(
            """() => dev.signal(1, { type: "facility",
                 fty: [{ type: "im_message", mime: "text/plain", data: "ping", id: "a1" }] })"""
        )
        got = await callee.evaluate(f"() => dev.sig('facility', {number})")
        message = got["sig"]["fty"][0]
        assert (message["data"], message["sender"]) == ("ping", "echo-bot")
        await callee.evaluate(
            f"""() => dev.signal({number}, {{ type: "facility",
                 fty: [{{ type: "im_message", mime: "text/plain", data: "pong" }}] }})"""
        )
        reply = await caller.evaluate(
            """async () => {
              for (;;) {
                const frame = await dev.sig("facility", 1);
                const item = frame.sig.fty[0];
                if (item.type === "im_message") return item;
              }
            }"""
        )
        assert (reply["data"], reply["sender"]) == ("pong", "archivist")

        # info and user_info pass to the peer as Signal's page defines them
        await caller.evaluate("() => dev.signal(1, { type: 'info', dsp: 'charge 0,12' })")
        info = await callee.evaluate(f"() => dev.sig('info', {number})")
        assert info["sig"] == {"type": "info", "dsp": "charge 0,12"}
        await callee.evaluate(f"() => dev.signal({number}, {{ type: 'user_info', uui: 'x42' }})")
        user_info = await caller.evaluate("() => dev.sig('user_info', 1)")
        assert user_info["sig"] == {"type": "user_info", "uui": "x42"}

        # Idle, both of them, well past the idle timeout: the browser answers the
        # server's pings, and nothing else is needed to stay connected.
        received = await caller.evaluate("() => dev.received")
        for _ in range(4):  # the hub's clock and the transport's pings both move on
            await server.advance(IDLE_TIMEOUT)
            await asyncio.sleep(IDLE_TIMEOUT)
        states = [await page.evaluate("() => dev.ws.readyState") for page in (caller, callee)]
        assert states == [1, 1]  # WebSocket.OPEN
        assert await caller.evaluate("() => dev.received") == received  # no KeepAlive traffic

        # disc is relayed as disc, then rel follows, as Signal's page describes
        await caller.evaluate("() => dev.signal(1, { type: 'disc', cau: { loc: 1, num: 16 } })")
        disc = await callee.evaluate(f"() => dev.sig('disc', {number})")
        assert disc["sig"]["cau"]["num"] == 16
        await callee.evaluate(f"() => dev.sig('rel', {number})")
        await caller.evaluate("() => dev.sig('rel', 1)")
