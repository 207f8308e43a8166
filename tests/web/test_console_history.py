"""The queue's stored support chats in the support console (docs/protocol.md 12.32), in a
real Chromium against a real server with the real messages service: an agent who never
saw a licensed customer's chat reads it read-only in the History view and finds it by
searching; an anonymous visitor's chat is not there, and an agent without the messages
licence is told why there is no history."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from playwright.async_api import Browser, expect

from config import Config
from tests.integration.test_messages import licensed
from tests.support import Phone, drained, running_server
from tests.web.conftest import keep_screenshot, screenshot_path
from tests.web.test_support_pages import (
    agent_console,
    patient_expect,
    scripted_visitor,
    support_config,
    write,
)

__all__ = ["patient_expect"]  # the autouse fixture, for this module's tests too

JsonObject = dict[str, Any]


def history_config() -> Config:
    """carol holds the messages licence (her support chats are stored, on the queue's side
    too); dave is an agent of the support queue without it."""
    config = licensed(support_config(), "carol")
    demo, *others = config.tenants
    queues = tuple(
        replace(q, agents=(*q.agents, "dave")) if q.sip == "support" else q for q in demo.queues
    )
    return replace(config, tenants=(replace(demo, queues=queues), *others))


async def signaling(phone: Phone, kind: str) -> JsonObject:
    """The next Signaling of type ``kind`` this phone gets; others are passed over."""
    for _ in range(50):
        message = await phone.next()
        if message.get("mt") == "Signaling" and message["sig"].get("type") == kind:
            return message
    raise AssertionError(f"no {kind}")


async def test_an_agent_reads_and_searches_the_queues_stored_chats(browser: Browser) -> None:
    async with running_server(history_config()) as server:
        alice = await agent_console(browser, server)
        await alice.get_by_role("button", name="Away").click()  # no offers ring: Take them
        await expect(alice.locator("#availability")).to_have_attribute("data-activity", "away")

        # a licensed customer's chat with the queue, which alice answers and closes
        carol = await server.phone("carol")
        first = {"mime": "text/plain", "data": "My kettle leaks at the base", "id": "c1"}
        await carol.setup(1, "support", first)
        card = alice.locator("#waiting .card", has_text="Carol Example")
        await card.get_by_role("button", name="Take").click()
        chat = alice.locator(".chat", has_text="Carol Example")
        await expect(chat.locator(".msg.visitor")).to_contain_text("kettle leaks")
        await write(chat.get_by_label("Reply"), "Sorry to hear that! Which model is it?")
        await signaling(carol, "facility")
        await carol.say(1, "The Kettle 3000, bought in May", id="c2")
        await expect(chat.locator(".msg.visitor").nth(1)).to_contain_text("Kettle 3000")
        await chat.get_by_role("button", name="Close").click()
        await expect(chat.locator(".ended")).to_contain_text("You closed this chat")

        # an anonymous visitor's chat: volatile, stored on neither side
        await scripted_visitor(server, "Sam Okafor", "Kettle 3000", "Is the kettle in stock?")
        sam = alice.locator("#waiting .card", has_text="Sam Okafor")
        await sam.get_by_role("button", name="Take").click()
        await write(alice.locator(".chat", has_text="Sam Okafor").get_by_label("Reply"), "Yes")
        await drained(server)

        # bob, who never saw either chat, opens the queue's history
        bob = await agent_console(browser, server, "bob")
        await bob.get_by_role("button", name="History").click()
        items = bob.locator("#history-items li")
        await expect(items).to_have_count(1)
        await expect(items.first).to_contain_text("Carol Example")
        await items.first.get_by_role("button").click()
        transcript = bob.locator("#transcript")
        await expect(transcript.locator("#transcript-title")).to_have_text("Carol Example")
        messages = transcript.locator(".msg")
        await expect(messages).to_have_count(3)
        await expect(messages.nth(0)).to_have_class("msg visitor")
        await expect(messages.nth(0)).to_contain_text("My kettle leaks at the base")
        await expect(messages.nth(1)).to_have_class("msg colleague")
        await expect(messages.nth(1)).to_contain_text("Which model is it?")
        await expect(messages.nth(1).locator(".author")).to_have_text("Example support")
        await expect(messages.nth(2)).to_contain_text("The Kettle 3000")
        await expect(transcript.get_by_text("Read only")).to_be_visible()
        assert await transcript.locator("textarea, input").count() == 0
        await bob.screenshot(path=screenshot_path("agent-history"))
        keep_screenshot("agent-history")

        # a search finds the queue's chats (never the visitor's), and opens at the hit
        await bob.get_by_label("Search the queue's chats").fill("kettle")
        await bob.get_by_role("button", name="Search", exact=True).click()
        await expect(bob.locator("#history-note")).to_have_text("2 messages match “kettle”.")
        hits = bob.locator("#history-items li")
        await expect(hits).to_have_count(2)
        await expect(hits.nth(0)).to_contain_text("The Kettle 3000")
        await expect(hits.nth(1).locator("mark")).to_have_text("kettle")
        await hits.nth(1).get_by_role("button").click()
        await expect(transcript.locator(".msg.hit")).to_contain_text("My kettle leaks")
        await expect(bob.locator("#history-items .history-item.current")).to_have_count(1)
        await bob.screenshot(path=screenshot_path("agent-history-search"))
        await bob.get_by_label("Search the queue's chats").fill("stock")
        await bob.get_by_role("button", name="Search", exact=True).click()
        await expect(hits).to_have_count(0)
        await expect(bob.locator("#history-empty")).to_contain_text("Nothing in the queue's")
        await bob.get_by_role("button", name="Show all").click()
        await expect(items).to_have_count(1)

        # on a phone the view fits the screen
        await bob.set_viewport_size({"width": 390, "height": 844})
        await expect(transcript.locator(".msg.hit")).to_be_visible()
        assert await bob.evaluate("() => document.documentElement.scrollWidth") <= 390
        await bob.screenshot(path=screenshot_path("agent-history-phone"))
        await bob.set_viewport_size({"width": 1360, "height": 820})

        # back on the board, the live console is as it was
        await bob.get_by_role("button", name="Board").click()
        await expect(bob.locator("#active .card", has_text="Sam Okafor")).to_contain_text(
            "with Alice Example"
        )


async def test_an_agent_without_the_messages_licence_is_told_why(browser: Browser) -> None:
    async with running_server(history_config()) as server:
        dave = await agent_console(browser, server, "dave")
        await dave.get_by_role("button", name="History").click()
        await expect(dave.locator("#history-error")).to_have_text(
            "Reading the queue's history needs the messages licence."
        )
        await expect(dave.locator("#history-items li")).to_have_count(0)
