"""Visitors' presence in the support console (docs/protocol.md 12.37), in a real Chromium
against a real server: the waiting card and the taken chat's header say the visitor is
online; once their page closed, "recently active" with when they were last seen, for the
server's ``[presence] recent_window``; then only when they were last seen."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.support import running_server
from tests.web.test_support_pages import agent_console, patient_expect, support_config

__all__ = ["patient_expect"]  # the autouse fixture, for this module's tests too


async def test_the_console_shows_when_a_visitor_was_last_seen(browser: Browser) -> None:
    config = support_config()
    assert config.presence.recent_window == 300.0  # the default "5m"
    async with running_server(config) as server:
        # the console's clock reads the hub's (presence times are the hub's)
        agent = await agent_console(browser, server, hub_clock=True)
        await agent.get_by_role("button", name="Away").click()
        await expect(agent.locator("#availability")).to_have_attribute("data-activity", "away")

        visit = await (await browser.new_context(viewport={"width": 400, "height": 640})).new_page()
        await visit.goto(server.http + "/visit")
        await visit.get_by_label("Your name").fill("Sam Okafor")
        await visit.get_by_role("button", name="Start chat").click()
        card = agent.locator("#waiting .card", has_text="Sam Okafor")
        await expect(card.locator(".presence")).to_have_text("Online")
        await expect(card.locator(".presence")).to_have_attribute("data-state", "online")

        await card.get_by_role("button", name="Take").click()
        header = agent.locator(".chat", has_text="Sam Okafor").locator(".chat-head")
        await expect(header.locator(".presence")).to_have_text("Online")

        # the visitor's page closes: offline at once, recently active for the window
        await visit.goto("about:blank")
        await expect(header.locator(".presence")).to_have_text("Recently active · seen just now")
        await expect(header.locator(".presence")).to_have_attribute("data-state", "recent")
        await server.advance(120)  # the resume grace ends meanwhile: so does the chat
        await agent.clock.fast_forward("02:00")
        await expect(agent.locator(".chat .ended")).to_contain_text("Sam Okafor left the chat")
        await expect(header.locator(".presence")).to_have_text("Recently active · seen 2 min ago")

        # the window is over: the hub says so without being asked
        await server.advance(200)
        await agent.clock.fast_forward("03:20")
        await expect(header.locator(".presence")).to_have_text("Last seen 5 min ago")
        await expect(header.locator(".presence")).to_have_attribute("data-state", "offline")
