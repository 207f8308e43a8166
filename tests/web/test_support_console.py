"""The support console's board and chat panel in a real Chromium (PROTOCOL §9.3, docs
12.33): a waiting card shows the start of the visitor's first message, and an open chat
uses the width the board leaves it instead of a narrow fixed card."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.support import running_server
from tests.web.conftest import screenshot_path
from tests.web.test_support_pages import agent_console, scripted_visitor, support_config, write


async def test_the_waiting_card_shows_the_visitors_first_message(browser: Browser) -> None:
    async with running_server(support_config()) as server:
        agent = await agent_console(browser, server)
        await agent.get_by_role("button", name="Away").click()  # no offer rings: Take it
        await expect(agent.locator("#availability")).to_have_attribute("data-activity", "away")

        # a browser visitor: the chat is on the board before the first message
        visit = await (await browser.new_context(viewport={"width": 400, "height": 640})).new_page()
        await visit.goto(server.http + "/visit")
        await visit.get_by_label("Your name").fill("Sam Okafor")
        await visit.get_by_role("button", name="Start chat").click()
        card = agent.locator("#waiting .card", has_text="Sam Okafor")
        await expect(card).to_be_visible()
        await expect(card.locator(".card-preview")).to_have_count(0)
        await write(visit.get_by_label("Message"), "My <b>order</b> 4411 never arrived 📦")
        await write(visit.get_by_label("Message"), "A second message is not the preview")
        await expect(card.locator(".card-preview")).to_have_text(
            "My <b>order</b> 4411 never arrived 📦"
        )

        # a visitor whose first message came with the call: on the board at once
        await scripted_visitor(server, "Marta Jensen", "Oak desk", "Do you ship to Norway?")
        marta = agent.locator("#waiting .card", has_text="Marta Jensen")
        await expect(marta.locator(".card-preview")).to_have_text("Do you ship to Norway?")
        await agent.screenshot(path=screenshot_path("agent-board-preview"))

        # taken, the chat fills the space beside the board (a wide screen, one chat)
        await card.get_by_role("button", name="Take").click()
        sam = agent.locator(".chat", has_text="Sam Okafor")
        await expect(sam.locator(".msg.visitor")).to_have_count(2)
        board = await agent.locator(".board").bounding_box()
        panel = await sam.bounding_box()
        assert board is not None and panel is not None
        viewport = agent.viewport_size
        assert viewport is not None
        assert panel["width"] > (viewport["width"] - board["width"]) * 0.9
        await agent.screenshot(path=screenshot_path("agent-wide"))


async def test_the_console_on_a_narrow_screen_keeps_the_chat_readable(browser: Browser) -> None:
    async with running_server(support_config()) as server:
        agent = await agent_console(browser, server)
        await scripted_visitor(server, "Priya Nair", "Wall shelf", "Hi, a question on sizes")
        card = agent.locator("#waiting .card", has_text="Priya Nair")
        await card.get_by_role("button", name="Accept").click()
        await agent.set_viewport_size({"width": 390, "height": 844})
        priya = agent.locator(".chat", has_text="Priya Nair")
        await expect(priya.locator(".msg.visitor")).to_contain_text("sizes")
        panel = await priya.bounding_box()
        assert panel is not None
        assert panel["x"] >= 0 and panel["x"] + panel["width"] <= 390


async def test_one_person_has_the_same_initials_on_every_page(browser: Browser) -> None:
    """alice ("Alice Example") is "AE" on her console and in her chat app, which learn her
    name at login (docs 12.42), as on the page of the visitor she chats with."""
    async with running_server(support_config()) as server:
        agent = await agent_console(browser, server)
        await expect(agent.locator("#me-avatar")).to_have_text("AE")
        chat = await (await browser.new_context()).new_page()
        await chat.goto(server.http + "/")
        await chat.get_by_label("User", exact=True).fill("alice")
        await chat.get_by_label("Password", exact=True).fill("alice-demo")
        await chat.get_by_role("button", name="Sign in").click()
        await expect(chat.locator("#me-initials")).to_have_text("AE")
        await expect(chat.locator("#me-name")).to_have_text("alice@example.com")
        visit = await (await browser.new_context(viewport={"width": 400, "height": 640})).new_page()
        await visit.goto(server.http + "/visit")
        await visit.get_by_label("Your name").fill("Sam Okafor")
        await visit.get_by_role("button", name="Start chat").click()
        card = agent.locator("#waiting .card", has_text="Sam Okafor")
        await card.get_by_role("button", name="Accept").click()
        await expect(visit.locator("#avatar")).to_have_text("AE")
        # every page imports the one rule
        names = ["Alice Example", "alice", "alice@example.com", "ann-marie.berger", ""]
        rule = "async (names) => names.map((await import('/static/js/initials.js')).initials)"
        got = await agent.evaluate(rule, names)
        assert got == ["AE", "AL", "AL", "AB", "?"]
