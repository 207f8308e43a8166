"""Supervisors and taking a chat by writing in the support console (docs/protocol.md
12.34), in a real Chromium against a real server: the console learns the agent's role from
the board; a supervisor closes and transfers another agent's chat from the board, other
agents see no such buttons, and a refusal by the hub is shown in the dialog; with the
queue's ``take_on_write`` an agent takes a ringing chat by writing into it."""

from __future__ import annotations

from dataclasses import replace

import httpx
from playwright.async_api import Browser, Page, expect

from config import Config
from tests.integration.test_trace import ADMIN
from tests.support import Phone, RunningServer, running_server
from tests.web.conftest import screenshot_path
from tests.web.test_console_history import signaling
from tests.web.test_support_pages import (
    agent_console,
    patient_expect,
    scripted_visitor,
    support_config,
    write,
)

__all__ = ["patient_expect"]  # the autouse fixture, for this module's tests too


def supervised(*, take_on_write: bool = False) -> Config:
    """The demo tenant with bob a ``supervisor`` of the support queue (alice and bob),
    the queue's ``take_on_write`` as given, and an admin login for the admin API."""
    config = support_config()
    demo, *others = config.tenants
    users = tuple(replace(u, role="supervisor") if u.sip == "bob" else u for u in demo.users)
    queues = tuple(
        replace(q, take_on_write=take_on_write) if q.sip == "support" else q for q in demo.queues
    )
    demo = replace(demo, users=users, queues=queues)
    return replace(config, tenants=(demo, *others), admin=replace(config.admin, password=ADMIN[1]))


async def taken_by(page: Page, server: RunningServer, name: str, product: str) -> Phone:
    """A scripted visitor whose chat the console ``page`` takes from the board."""
    visitor = await scripted_visitor(server, name, product, f"Hello, {product} please")
    await page.locator("#waiting .card", has_text=name).get_by_role("button", name="Take").click()
    await expect(page.locator(".chat", has_text=name).locator(".msg.visitor")).to_have_count(1)
    return visitor


def owner(server: RunningServer, visitor: Phone) -> str | None:
    """Which agent has the visitor's chat now (None: waiting, or no such chat)."""
    for chat in server.hub.switch.chat.support.chats.values():
        if chat.visitor.sip == visitor.sip:
            callee = chat.call.callee
            return callee.reg.user.sip if callee is not None else None
    return None


async def away(page: Page) -> None:
    await page.get_by_role("button", name="Away").click()  # no offers ring: Take them
    await expect(page.locator("#availability")).to_have_attribute("data-activity", "away")


async def test_a_supervisor_closes_and_transfers_another_agents_chat(browser: Browser) -> None:
    async with running_server(supervised()) as server:
        alice = await agent_console(browser, server)
        bob = await agent_console(browser, server, "bob")
        await expect(bob.locator("#me-role")).to_have_text("Supervisor")
        await expect(alice.locator("#me-role")).to_be_hidden()
        await away(alice)
        await away(bob)
        ann = await taken_by(alice, server, "Ann Berger", "Lamp 7")
        priya = await taken_by(alice, server, "Priya Nair", "Wall shelf")
        marta = await taken_by(bob, server, "Marta Jensen", "Oak desk")

        # alice is an agent: bob's chat on her board has no Close or Transfer
        marta_card = alice.locator("#active .card", has_text="Marta Jensen")
        await expect(marta_card).to_contain_text("with Bob Example")
        await expect(marta_card.get_by_role("button")).to_have_count(0)
        # bob supervises: alice's chats on his board have both
        ann_card = bob.locator("#active .card", has_text="Ann Berger")
        await expect(ann_card).to_contain_text("with Alice Example")
        await expect(ann_card.get_by_role("button", name="Close")).to_be_visible()
        await expect(ann_card.get_by_role("button", name="Transfer")).to_be_visible()
        await bob.screenshot(path=screenshot_path("agent-supervisor"))

        # bob closes alice's chat with Ann: Ann gets the rel, alice is told who closed it
        await ann_card.get_by_role("button", name="Close").click()
        dialog = bob.locator("#manage-dialog")
        await expect(dialog).to_contain_text("Alice Example has this chat now")
        await bob.screenshot(path=screenshot_path("agent-supervisor-close"))
        await dialog.get_by_role("button", name="Close chat").click()
        await expect(dialog).to_be_hidden()
        rel = await signaling(ann, "rel")
        assert rel["sig"]["cau"] == {"loc": 1, "num": 16}
        ann_chat = alice.locator(".chat", has_text="Ann Berger")
        await expect(ann_chat.locator(".ended")).to_contain_text("Bob Example closed this chat")
        await expect(bob.locator("#active .card", has_text="Ann Berger")).to_have_count(0)
        assert owner(server, ann) is None

        # bob hands alice's chat with Priya back to the queue, and takes it himself
        priya_card = bob.locator("#active .card", has_text="Priya Nair")
        await priya_card.get_by_role("button", name="Transfer").click()
        await dialog.get_by_label("Transfer to").fill("support")
        await dialog.get_by_role("button", name="Transfer").click()
        await expect(dialog).to_be_hidden()
        priya_chat = alice.locator(".chat", has_text="Priya Nair")
        await expect(priya_chat.locator(".ended")).to_contain_text("handed this chat to support")
        priya_card = bob.locator("#waiting .card", has_text="Priya Nair")
        await priya_card.get_by_role("button", name="Take").click()
        await expect(bob.locator(".chat", has_text="Priya Nair").locator(".msg")).to_have_count(1)
        assert owner(server, priya) == "bob"
        assert owner(server, marta) == "bob"


async def test_a_refused_close_is_shown_and_the_board_learns_the_role(browser: Browser) -> None:
    """The admin takes bob's role away while his console is open: his Close is refused
    ``forbidden``, the dialog says why, and the board (subscribed again) drops the
    buttons; alice still has the chat."""
    async with running_server(supervised()) as server:
        alice = await agent_console(browser, server)
        bob = await agent_console(browser, server, "bob")
        await away(alice)
        ann = await taken_by(alice, server, "Ann Berger", "Lamp 7")
        card = bob.locator("#active .card", has_text="Ann Berger")
        await expect(card.get_by_role("button", name="Close")).to_be_visible()

        async with httpx.AsyncClient(base_url=server.http, auth=ADMIN, timeout=10) as http:
            answer = await http.put("/admin/users/example.com/bob", json={"role": ""})
            assert answer.status_code == 200, answer.text
        await card.get_by_role("button", name="Close").click()
        dialog = bob.locator("#manage-dialog")
        await dialog.get_by_role("button", name="Close chat").click()
        await expect(dialog.get_by_role("alert")).to_have_text(
            "Only the agent who has this chat or a supervisor of the queue may close it."
        )
        await bob.screenshot(path=screenshot_path("agent-supervisor-refused"))
        await dialog.get_by_role("button", name="Cancel").click()
        await expect(bob.locator("#me-role")).to_be_hidden()
        await expect(card.get_by_role("button")).to_have_count(0)
        assert owner(server, ann) == "alice"
        await ann.say(1, "Still there?", id="v2")
        await expect(
            alice.locator(".chat", has_text="Ann Berger").locator(".msg.visitor")
        ).to_have_count(2)


async def test_with_take_on_write_an_agent_takes_a_ringing_chat_by_writing(
    browser: Browser,
) -> None:
    async with running_server(supervised(take_on_write=True)) as server:
        alice = await agent_console(browser, server)
        bob = await agent_console(browser, server, "bob")
        visitor = await scripted_visitor(server, "Sam Okafor", "Kettle 3000", "Does it descale?")
        bob_card = bob.locator("#waiting .card", has_text="Sam Okafor")
        await expect(bob_card.get_by_role("button", name="Accept")).to_be_visible()
        alice_card = alice.locator("#waiting .card", has_text="Sam Okafor")
        await expect(alice_card.get_by_role("button", name="Reply")).to_be_visible()

        await bob_card.get_by_role("button", name="Reply").click()
        chat = bob.locator(".chat", has_text="Sam Okafor")
        await expect(chat.locator(".offer-note")).to_contain_text("what you write takes this chat")
        await expect(chat.locator(".offer-note")).to_contain_text("Does it descale?")
        await expect(chat.get_by_role("button", name="Close")).to_be_hidden()
        await bob.screenshot(path=screenshot_path("agent-take-on-write"))
        await write(chat.get_by_label("Reply"), "Bob here: yes, it has a descaling program.")

        # bob has it: the visitor is answered and reads him; the board says so everywhere
        conn = await signaling(visitor, "conn")
        assert {"type": "name_identification", "name": "Bob Example"} in conn["sig"]["fty"]
        said = []
        while not said:  # acks of the visitor's first message, typing: passed over
            message = await signaling(visitor, "facility")
            said = [item["data"] for item in message["sig"]["fty"] if "data" in item]
        assert said == ["Bob here: yes, it has a descaling program."]
        assert owner(server, visitor) == "bob"
        await expect(chat.locator(".offer-note")).to_be_hidden()
        await expect(chat.locator(".msg").nth(0)).to_have_class("msg visitor")
        await expect(chat.locator(".msg").nth(0)).to_contain_text("Does it descale?")
        await expect(chat.locator(".msg.mine")).to_contain_text("delivered")
        await expect(bob.locator("#active .card", has_text="Sam Okafor")).to_contain_text(
            "with you"
        )
        await expect(alice_card).to_have_count(0)
        await expect(alice.locator("#active .card", has_text="Sam Okafor")).to_contain_text(
            "with Bob Example"
        )
        await expect(alice.locator(".chat")).to_have_count(0)
        await visitor.say(1, "Great, thanks", id="v2")
        await expect(chat.locator(".msg.visitor")).to_have_count(2)


async def test_without_take_on_write_a_ringing_chat_offers_no_reply(browser: Browser) -> None:
    async with running_server(supervised()) as server:
        alice = await agent_console(browser, server)
        await scripted_visitor(server, "Sam Okafor", "Kettle 3000", "Does it descale?")
        card = alice.locator("#waiting .card", has_text="Sam Okafor")
        await expect(card.get_by_role("button", name="Accept")).to_be_visible()
        await expect(card.get_by_role("button", name="Reply")).to_have_count(0)
