"""The visitor's page says why its chat ended while it was away (docs/protocol.md 12.35),
in a real Chromium against a real server: the page's link drops (offline, the socket lost
without a close frame), the chat ends meanwhile, the page comes back, resumes and shows
the reason the hub told it."""

from __future__ import annotations

from dataclasses import replace

from playwright.async_api import Browser, BrowserContext, Page, expect

from config import Config
from tests.support import Phone, RunningServer, make_config, running_server
from tests.web.test_support_pages import drop_link, patient_expect, write

__all__ = ["patient_expect"]  # the autouse fixture, for this module's tests too


def away_config() -> Config:
    """A resume grace longer than a support chat's idle close, so that the chat idles out
    while the visitor's registration still waits for its page."""
    config = make_config(grace=600.0, idle_timeout=3600.0)
    return replace(config, support=replace(config.support, visitors_per_hour=1000))


async def chatting(
    browser: Browser, server: RunningServer
) -> tuple[BrowserContext, Page, Phone, int]:
    """A visitor's page in a chat that the scripted agent alice answered."""
    agent = await server.phone("alice")
    context = await browser.new_context(viewport={"width": 400, "height": 640})
    page = await context.new_page()
    await page.goto(server.http + "/visit")
    await page.get_by_label("Your name").fill("Sam")
    await page.get_by_role("button", name="Start chat").click()
    await expect(page.locator("#subtitle-text")).to_have_text("Waiting for an agent…")
    number, _ = await agent.offered()
    await agent.signal(number, {"type": "conn"})
    await expect(page.locator("#title")).to_have_text("Alice Example")
    await write(page.get_by_label("Message"), "Is the Lamp 7 dimmable?")
    while "data" not in (item := await agent.fty(number)):
        assert item["type"] == "im_message", item  # the page's typing notices
    assert item["data"] == "Is the Lamp 7 dimmable?"
    await expect(page.locator(".msg.mine")).to_contain_text("Delivered")
    return context, page, agent, number


def visitor_sip(server: RunningServer) -> str:
    (sip,) = {
        conn.registration.user.sip
        for conn in server.hub.switch.connections.values()
        if conn.registration is not None and conn.registration.user.sip.startswith("visitor-")
    }
    return sip


async def link_lost(server: RunningServer, context: BrowserContext, page: Page) -> None:
    """The page goes offline and its socket is lost without a clean close: the hub keeps
    the registration for the resume grace; the page keeps trying to reconnect."""
    await context.set_offline(True)
    drop_link(server, visitor_sip(server))
    await expect(page.locator("#banner")).to_contain_text("Reconnecting")


async def test_the_agent_closes_while_the_page_is_offline_and_the_page_says_so(
    browser: Browser,
) -> None:
    async with running_server(away_config()) as server:
        context, page, agent, number = await chatting(browser, server)
        await link_lost(server, context, page)
        await agent.signal(number, {"type": "rel"})  # alice closes the chat meanwhile
        await agent.client.send({"mt": "KeepAlive"})  # the hub has handled the rel
        while (message := await agent.next()) != {"mt": "KeepAlive"}:
            assert message["sig"]["type"] == "facility", message  # a late typing notice
        assert not server.hub.switch.chat.support.chats
        await context.set_offline(False)  # the page reconnects by itself and resumes
        await expect(page.locator("#ended")).to_have_attribute("data-cause", "16")
        await expect(page.locator("#ended")).to_contain_text("Alice Example closed the chat")
        await expect(page.locator("#subtitle-text")).to_have_text("Chat ended")
        await expect(page.get_by_role("button", name="Start a new chat")).to_be_visible()


async def test_a_chat_that_idled_out_while_the_page_was_away_says_why_after_a_reload(
    browser: Browser,
) -> None:
    async with running_server(away_config()) as server:
        context, page, agent, number = await chatting(browser, server)
        await link_lost(server, context, page)
        support = server.config.support
        await server.advance(support.idle_warn + 1)
        await server.advance(support.idle_close)
        while (sig := (await agent.sig(number))["sig"])["type"] != "rel":
            assert sig["type"] == "facility", sig  # the inactivity warning
        assert sig["cau"]["num"] == 102
        assert not server.hub.switch.chat.support.chats
        await context.set_offline(False)
        await page.reload()  # the page comes back: it resumes with its stored token
        await expect(page.locator("#ended")).to_have_attribute("data-cause", "102")
        await expect(page.locator("#ended")).to_contain_text("nobody wrote for a while")
        await expect(page.locator("#subtitle-text")).to_have_text("Chat ended")
