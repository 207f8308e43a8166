"""The support console marks a waiting card whose visitor's page closed (docs/protocol.md
12.38): "visitor left N min ago" while the chat waits out the resume grace, and the mark
goes when the visitor's page comes back, in a real Chromium against a real server."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.support import running_server
from tests.web.test_support_pages import agent_console, patient_expect, support_config

__all__ = ["patient_expect"]  # the autouse fixture, for this module's tests too


async def test_a_waiting_card_says_the_visitor_left_until_the_page_comes_back(
    browser: Browser,
) -> None:
    async with running_server(support_config()) as server:
        # the console's clock reads the hub's (the board's times are the hub's), and its
        # board refresh moves with the fast-forward
        agent = await agent_console(browser, server, hub_clock=True)
        await agent.get_by_role("button", name="Away").click()
        await expect(agent.locator("#availability")).to_have_attribute("data-activity", "away")

        page = await (await browser.new_context(viewport={"width": 400, "height": 640})).new_page()
        await page.goto(server.http + "/visit")
        await page.get_by_label("Your name").fill("Sam Okafor")
        await page.get_by_role("button", name="Start chat").click()
        card = agent.locator("#waiting .card", has_text="Sam Okafor")
        await expect(card).to_be_visible()
        await expect(card.locator(".gone-note")).to_have_count(0)

        # the visitor's page closes (navigates away: a clean close of its socket)
        await page.goto("about:blank")
        await expect(card.locator(".gone-note")).to_have_text("visitor left just now")
        await expect(card).to_have_class("card gone")
        await agent.clock.fast_forward("03:00")  # the console refreshes its board
        await expect(card.locator(".gone-note")).to_have_text("visitor left 3 min ago")

        # the visitor comes back within the grace: the same chat, the mark goes
        await page.go_back()
        await expect(page.locator("#subtitle-text")).to_have_text("Waiting for an agent…")
        await expect(card.locator(".gone-note")).to_have_count(0)
        await expect(card).to_have_class("card")
        assert len(server.hub.switch.chat.support.chats) == 1
