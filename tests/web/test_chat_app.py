"""The chat app at ``/`` (web/static/chat.html) in a real Chromium against a real server:
people log in through the form and chat in two browser contexts (typing, delivered and
seen marks, emoji, presence, unread badges, a phone screen); an offline peer, a message too
long, sending too fast, a file with its preview, the stored history with infinite scroll, and
a network blink that loses nothing.

No sleeps: Playwright's ``expect`` waits for each state, and the only wait on the server
is for its outbox to reach the messages service (``drained``)."""

from __future__ import annotations

import os
import re
import shutil
import struct
import zlib
from datetime import UTC, datetime
from pathlib import Path

from playwright.async_api import (
    Browser,
    FilePayload,
    Locator,
    Page,
    ViewportSize,
    WebSocketRoute,
    expect,
)

from tests.support import PASSWORDS, drained, make_config, running_server
from tests.web.conftest import screenshot_path

DESKTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=390, height=844)
SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
SERVER_TIME = datetime.fromtimestamp(1_800_000_000, UTC)
"""Where the test server's ManualClock starts: the browsers' clocks start there too, so
that the times the hub stamps on messages read as "now" in the page."""


async def _page(browser: Browser, url: str, *, phone: bool = False) -> Page:
    context = await browser.new_context(
        viewport=PHONE if phone else DESKTOP,
        device_scale_factor=2 if phone else 1,
        is_mobile=phone,
        has_touch=phone,
        locale="en-US",
        timezone_id="UTC",
    )
    await context.clock.install(time=SERVER_TIME)
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )
    page.problems = problems  # type: ignore[attr-defined]
    await page.goto(url + "/")
    return page


async def _sign_in(page: Page, sip: str) -> None:
    await page.get_by_label("User", exact=True).fill(sip)
    await page.get_by_label("Password", exact=True).fill(PASSWORDS[sip])
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#app")).to_be_visible()
    await expect(page.locator("#me-name")).to_have_text(f"{sip}@example.com")


async def _login(browser: Browser, url: str, sip: str, *, phone: bool = False) -> Page:
    page = await _page(browser, url, phone=phone)
    await _sign_in(page, sip)
    return page


async def _start_chat(page: Page, sip: str) -> None:
    await page.get_by_label("Start a chat with (user name)").fill(sip)
    await page.get_by_role("button", name="Chat", exact=True).click()
    await expect(page.locator("#chat-pane")).to_be_visible()


def _contact(page: Page, sip: str) -> Locator:
    return page.locator(f'.contact[data-sip="{sip}"]')


def _composer(page: Page) -> Locator:
    return page.get_by_label("Message", exact=True)


def _clean(page: Page) -> None:
    """Nothing went wrong in the page: no uncaught error, no CSP violation, no failed load."""
    assert page.problems == []  # type: ignore[attr-defined]


def _png(width: int = 320, height: int = 200) -> bytes:
    """A small picture: a blue-to-teal gradient with a sun, as a plain RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    def pixel(x: int, y: int) -> bytes:
        if (x - 230) ** 2 + (y - 60) ** 2 < 30**2:
            return bytes([255, 210, 63])
        shade = y * 255 // height
        return bytes([36, 87 + shade // 3, 197 - shade // 4])

    rows = b"".join(b"\x00" + b"".join(pixel(x, y) for x in range(width)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _keep(name: str, as_name: str) -> None:
    """With ``SWITCHBOARD_SCREENSHOTS=1``, also refresh the copy in ``docs/screenshots``
    (a plain test run leaves the tracked files alone)."""
    if os.environ.get("SWITCHBOARD_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot_path(name), SCREENSHOTS / as_name)


async def test_two_people_chat_both_ways_with_typing_marks_and_history(browser: Browser) -> None:
    async with running_server() as server:
        login = await _page(browser, server.http)
        await expect(login.get_by_label("User", exact=True)).to_be_focused()
        await login.screenshot(path=screenshot_path("chat-login"))
        await login.context.close()

        alice = await _login(browser, server.http, "alice")
        bob = await _login(browser, server.http, "bob", phone=True)

        # alice starts a chat with bob, who is online
        await _start_chat(alice, "bob")
        await expect(_contact(alice, "bob").locator(".presence-dot")).to_have_class(
            re.compile(r"\bopen available\b")
        )
        await expect(alice.locator("#chat-status")).to_have_text("Online")

        # typing rings bob's app, which answers and shows alice typing
        await _composer(alice).press_sequentially("Hi Bob, lunch today?")
        await expect(_contact(bob, "alice").locator(".contact-sub")).to_have_text("typing…")
        await expect(alice.locator("#chat-name")).to_have_text("Bob Example")

        await _composer(alice).press("Enter")
        await expect(_composer(alice)).to_have_value("")
        mine = alice.locator(".msg.mine")
        await expect(mine).to_have_count(1)
        await expect(mine.last).to_have_attribute("data-state", "delivered")
        await expect(mine.last.locator(".mark")).to_have_attribute("title", "Delivered")
        await expect(_contact(bob, "alice").locator(".badge")).to_have_text("1")
        await expect(_contact(bob, "alice").locator(".contact-sub")).to_have_text(
            "Hi Bob, lunch today?"
        )

        # bob (on a phone: one pane at a time) opens it; alice sees it seen
        await expect(bob.locator("#chat")).to_be_hidden()
        await _contact(bob, "alice").click()
        await expect(bob.locator(".sidebar")).to_be_hidden()
        await expect(bob.locator("#chat-name")).to_have_text("Alice Example")
        await expect(bob.locator(".msg.theirs .body")).to_have_text(["Hi Bob, lunch today?"])
        await expect(_contact(bob, "alice").locator(".badge")).to_be_hidden()
        await expect(mine.last).to_have_attribute("data-state", "seen")

        # bob answers on two lines, with a tenant emoticon; alice sees him typing first
        await _composer(bob).press_sequentially("Sure!")
        await expect(alice.locator("#typing")).to_have_text("Bob Example is typing…")
        await _composer(bob).press("Shift+Enter")
        await _composer(bob).press_sequentially("12:30 at the usual place :shipit:")
        await _composer(bob).press("Enter")
        reply = alice.locator(".msg.theirs").last
        await expect(reply.locator(".body")).to_contain_text("Sure!")
        await expect(reply.locator(".body br")).to_have_count(1)
        await expect(reply.locator("img.emoticon")).to_have_attribute("alt", ":shipit:")
        await expect(alice.locator("#typing")).to_have_text("")
        await expect(bob.locator(".msg.mine").last).to_have_attribute(
            "data-state", re.compile("delivered|seen")
        )

        # the emoji picker: opens, Escape closes it, a pick lands at the cursor
        await alice.get_by_role("button", name="Insert emoji").click()
        picker = alice.get_by_role("dialog", name="Emoji")
        await expect(picker).to_be_visible()
        await alice.keyboard.press("Escape")
        await expect(picker).to_be_hidden()
        await expect(alice.get_by_role("button", name="Insert emoji")).to_be_focused()
        await _composer(alice).fill("See you there ")
        await alice.get_by_role("button", name="Insert emoji").click()
        await expect(picker.get_by_role("button", name="grinning face")).to_be_focused()
        await alice.keyboard.press("ArrowRight")
        await expect(picker.get_by_role("button", name="tears of joy")).to_be_focused()
        await alice.screenshot(path=screenshot_path("chat-emoji"))
        await picker.get_by_role("button", name="thumbs up").click()
        await expect(picker).to_be_hidden()
        await expect(_composer(alice)).to_have_value("See you there 👍")
        await _composer(alice).press("Enter")
        await expect(bob.locator(".msg.theirs .body").last).to_have_text("See you there 👍")
        await expect(mine.last).to_have_attribute("data-state", "seen")

        # alice is away for a moment: bob sees it
        await alice.get_by_label("Your status").select_option("away")
        await expect(bob.locator("#chat-status")).to_have_text("alice · Away")
        await alice.get_by_label("Your status").select_option("available")
        await expect(bob.locator("#chat-status")).to_have_text("alice · Online")

        # more people in alice's list: dave is offline, carol writes while bob's chat is open
        await _start_chat(alice, "dave")
        await expect(alice.locator("#chat-status")).to_have_text("Offline")
        carol = await _login(browser, server.http, "carol")
        await _start_chat(carol, "alice")
        await _composer(carol).fill("Are you joining the 3 pm review?")
        await _composer(carol).press("Enter")
        await _contact(alice, "bob").click()
        await expect(_contact(alice, "carol").locator(".badge")).to_have_text("1")
        await expect(_contact(alice, "carol").locator(".contact-name")).to_have_text(
            "Carol Example"
        )
        await expect(_contact(alice, "dave").locator(".presence-dot")).to_have_class(
            re.compile(r"\bclosed\b")
        )

        await alice.screenshot(path=screenshot_path("chat-desktop"))
        await bob.screenshot(path=screenshot_path("chat-phone"))
        _keep("chat-desktop", "chat.png")
        _keep("chat-phone", "chat-mobile.png")
        await carol.context.close()
        await expect(_contact(alice, "carol").locator(".presence-dot")).to_have_class(
            re.compile(r"\bclosed\b")
        )

        # back to the list on the phone
        await bob.get_by_role("button", name="Back to chats").click()
        await expect(bob.locator(".sidebar")).to_be_visible()
        await expect(_contact(bob, "alice").locator(".contact-sub")).to_have_text(
            "See you there 👍"
        )
        await bob.screenshot(path=screenshot_path("chat-phone-list"))

        # bob reloads: after signing in again the conversation is there, from the history
        await drained(server)
        await bob.reload()
        await expect(bob.get_by_label("User", exact=True)).to_have_value("bob")
        await _sign_in(bob, "bob")
        await _contact(bob, "alice").click()
        bodies = bob.locator(".msg .body")
        await expect(bodies).to_have_count(3)
        await expect(bodies.first).to_have_text("Hi Bob, lunch today?")
        await expect(bob.locator(".msg.mine .body")).to_contain_text("Sure!")
        await expect(bob.locator("#history-status")).to_have_text("Start of the conversation")
        await bob.screenshot(path=screenshot_path("chat-history-phone"))
        _clean(alice)
        _clean(bob)


async def test_a_message_to_an_offline_unlicensed_user_says_so(browser: Browser) -> None:
    async with running_server() as server:
        carol = await _login(browser, server.http, "carol")
        await expect(carol.get_by_role("button", name="Attach a file")).to_be_hidden()
        await _start_chat(carol, "dave")
        await expect(carol.locator("#chat-status")).to_have_text("Offline")
        await _composer(carol).fill("Are you in today?")
        await _composer(carol).press("Enter")
        await expect(carol.locator("#notice")).to_have_text(
            "dave is offline; the message was not delivered."
        )
        sent = carol.locator(".msg.mine").last
        await expect(sent).to_have_attribute("data-state", "not_delivered")
        await expect(sent.locator(".mark")).to_have_text("Not delivered")
        await expect(sent.get_by_role("button", name="Retry")).to_be_visible()
        await carol.screenshot(path=screenshot_path("chat-offline"))

        # a message over the hub's limit is not sent; it stays to be shortened
        await _composer(carol).fill("x" * 70_000)
        await _composer(carol).press("Enter")
        await expect(carol.locator("#notice")).to_contain_text("too long to send")
        await expect(carol.locator(".msg.mine")).to_have_count(1)
        await expect(_composer(carol)).not_to_have_value("")

        # a user that does not exist is said so too
        await _start_chat(carol, "nobody")
        await expect(carol.locator("#chat-status")).to_have_text("No such user")

        _clean(carol)


async def test_sending_too_fast_is_refused_and_said(browser: Browser) -> None:
    async with running_server() as server:
        alice = await _login(browser, server.http, "alice")
        await _login(browser, server.http, "bob")
        await _start_chat(alice, "bob")
        await _composer(alice).fill("Hello")
        await _composer(alice).press("Enter")
        await expect(alice.locator(".msg.mine").last).to_have_attribute("data-state", "delivered")
        # 40 messages at once: the hub lets through what its rate allows (the test server's
        # clock stands still, so its bucket of 40 frames never refills) and refuses the rest
        await alice.evaluate(
            """() => {
              const input = document.getElementById("composer-input");
              const form = document.getElementById("composer");
              for (let n = 1; n <= 40; n++) { input.value = `Quick ${n}`; form.requestSubmit(); }
            }"""
        )
        await expect(alice.locator("#notice-text")).to_have_text(
            re.compile(r"^You are sending too fast\. Wait \d+ s, then retry\.$")
        )
        refused = alice.locator('.msg.mine[data-state="failed"]')
        await expect(refused.last.locator(".mark")).to_have_text("Not sent")
        await expect(refused.last.get_by_role("button", name="Retry")).to_be_visible()
        await expect(alice.locator('.msg.mine[data-state="delivered"]').last).to_be_visible()
        _clean(alice)


async def test_a_picture_goes_through_with_a_preview(browser: Browser) -> None:
    picture = _png()
    async with running_server() as server:
        alice = await _login(browser, server.http, "alice")
        bob = await _login(browser, server.http, "bob")
        await _start_chat(alice, "bob")
        await expect(alice.locator("#chat-status")).to_have_text("Online")
        await alice.locator("#file-input").set_input_files(
            files=[FilePayload(name="lunch.png", mimeType="image/png", buffer=picture)]
        )
        own = alice.locator(".msg.mine .preview img")
        await expect(own).to_have_attribute("alt", "lunch.png")
        await expect(alice.locator("#upload")).to_be_hidden()
        await expect(alice.locator(".msg.mine").last).to_have_attribute("data-state", "delivered")

        await _contact(bob, "alice").click()
        preview = bob.locator(".msg.theirs .preview img")
        await expect(preview).to_have_attribute("alt", "lunch.png")
        await bob.wait_for_function(
            "() => { const img = document.querySelector('.msg.theirs .preview img');"
            " return img && img.complete && img.naturalWidth === 320; }"
        )
        src = await preview.get_attribute("src")
        fetched = await bob.evaluate(
            "async (src) => Array.from(new Uint8Array(await (await fetch(src)).arrayBuffer()))",
            src,
        )
        assert bytes(fetched) == picture
        await bob.screenshot(path=screenshot_path("chat-attachment"))

        # from the history the picture comes through a url signed for bob's session
        await drained(server)
        await bob.reload()
        await _sign_in(bob, "bob")
        await _contact(bob, "alice").click()
        await expect(preview).to_have_attribute("src", re.compile(r"[?&]sig="))
        await bob.wait_for_function(
            "() => { const img = document.querySelector('.msg.theirs .preview img');"
            " return img && img.complete && img.naturalWidth === 320; }"
        )
        _clean(alice)
        _clean(bob)


async def test_stored_history_scrolls_back_to_the_first_message(browser: Browser) -> None:
    async with running_server() as server:
        # alice writes 40 messages while bob is away: the hub stores them for him
        phone = await server.phone("alice")
        await phone.setup(1, "bob")
        await phone.sig(1, "call_proc")
        await phone.sig(1, "conn")
        for n in range(1, 41):
            if n % 20 == 0:
                await server.advance(2)  # the rate limit's bucket refills on the hub's clock
            await phone.say(1, f"Note {n}", id=f"n{n}")
            assert (await phone.fty(1))["state"] == "stored"
        await drained(server)

        bob = await _login(browser, server.http, "bob")
        await expect(_contact(bob, "alice").locator(".badge")).to_have_text("40")
        await expect(_contact(bob, "alice").locator(".contact-name")).to_have_text("Alice Example")
        await _contact(bob, "alice").click()
        messages = bob.locator(".msg.theirs")
        await expect(messages).to_have_count(30)
        await expect(messages.last.locator(".body")).to_have_text("Note 40")
        await bob.wait_for_function("() => document.getElementById('messages').scrollTop > 0")

        await bob.locator("#messages").evaluate("box => { box.scrollTop = 0; }")
        await expect(messages).to_have_count(40)
        await expect(messages.first.locator(".body")).to_have_text("Note 1")
        await expect(bob.locator("#history-status")).to_have_text("Start of the conversation")
        await expect(_contact(bob, "alice").locator(".badge")).to_be_hidden()
        await bob.screenshot(path=screenshot_path("chat-history"))
        _clean(bob)


async def test_a_network_blink_loses_nothing(browser: Browser) -> None:
    links: list[tuple[WebSocketRoute, WebSocketRoute]] = []
    stalled: list[WebSocketRoute] = []
    blocked = [False]

    def through(page_side: WebSocketRoute) -> None:
        """bob's link to the hub, through a switch the test can open: while it is open,
        a new connection goes nowhere (it stalls, as on a dead network)."""
        if blocked[0]:
            stalled.append(page_side)
        else:
            links.append((page_side, page_side.connect_to_server()))

    async with running_server(make_config(grace=60)) as server:
        alice = await _login(browser, server.http, "alice")
        bob = await _page(browser, server.http)
        await bob.route_web_socket(re.compile(r"/PBX0/APPS/websocket$"), through)
        await _sign_in(bob, "bob")
        await _start_chat(alice, "bob")
        await expect(alice.locator("#chat-status")).to_have_text("Online")
        await _composer(alice).fill("Before the blink")
        await _composer(alice).press("Enter")
        await _contact(bob, "alice").click()
        await expect(bob.locator(".msg.theirs .body")).to_have_text(["Before the blink"])

        # the link drops and stays down for a moment: bob's page says so
        blocked[0] = True
        page_side, hub_side = links[-1]
        await hub_side.close()
        await page_side.close(code=1011, reason="network down")
        await expect(bob.locator("#banner-text")).to_have_text("Connection lost. Reconnecting…")
        await _composer(alice).fill("During the blink")
        await _composer(alice).press("Enter")
        await expect(alice.locator(".msg.mine").last).to_have_attribute("data-state", "held")
        await expect(alice.locator(".msg.mine .mark").last).to_have_text("Waiting…")
        await bob.screenshot(path=screenshot_path("chat-reconnecting"))

        # back: the registration is resumed and the message held for bob arrives
        blocked[0] = False
        for attempt in stalled:
            await attempt.close(code=1011, reason="network down")
        await expect(bob.locator(".msg.theirs .body")).to_have_text(
            ["Before the blink", "During the blink"]
        )
        await expect(bob.locator("#banner-text")).to_have_text("Back online.")
        await expect(alice.locator(".msg.mine").last).to_have_attribute(
            "data-state", re.compile("delivered|seen")
        )
        await _composer(bob).fill("Still here")
        await _composer(bob).press("Enter")
        await expect(alice.locator(".msg.theirs .body")).to_have_text(["Still here"])
        _clean(alice)


async def test_a_group_chat_names_each_sender(browser: Browser) -> None:
    async with running_server() as server:
        alice = await _login(browser, server.http, "alice")
        bob = await _login(browser, server.http, "bob")

        # alice makes a group with bob in it: it opens at once, and she is in its chat
        await alice.get_by_role("button", name="New group").click()
        await expect(alice.get_by_label("Group name")).to_be_focused()
        await alice.get_by_label("Group name").fill("Lunch crew")
        await alice.get_by_label("Members").fill("bob")
        await alice.get_by_role("button", name="Create group").click()
        await expect(alice.locator("#group-form")).to_be_hidden()
        await expect(alice.locator("#chat-name")).to_have_text("Lunch crew")
        await expect(alice.locator("#chat-status")).to_have_text("Group chat")
        group = await alice.locator(".contact[aria-current]").get_attribute("data-sip")
        assert group is not None
        assert re.fullmatch(r"group-\d+", group)
        await expect(alice.locator("#notice")).to_be_hidden()

        # someone who cannot be in a group is said so
        await alice.get_by_role("button", name="Add people").click()
        await alice.get_by_label("Add to the group (user names)").fill("carol")
        await alice.get_by_role("button", name="Add", exact=True).click()
        await expect(alice.locator("#notice-text")).to_have_text(
            "Not added: carol (no messages licence)."
        )
        await alice.get_by_role("button", name="Cancel").click()
        await alice.get_by_role("button", name="Dismiss").click()

        await _composer(alice).fill("Pizza at noon, anyone?")
        await _composer(alice).press("Enter")
        await expect(alice.locator(".msg.mine")).to_have_count(1)
        # nobody else is in the group's chat yet: the hub stores it and rings the members
        await expect(alice.locator(".msg.mine").last).to_have_attribute(
            "data-state", re.compile("sent|delivered")
        )

        # the group rings bob's app, which takes it: the message names alice
        await expect(_contact(bob, group).locator(".contact-name")).to_have_text("Lunch crew")
        await expect(_contact(bob, group).locator(".badge")).to_have_text("1")
        await expect(_contact(bob, group).locator(".contact-sub")).to_have_text(
            "Alice: Pizza at noon, anyone?"
        )
        await _contact(bob, group).click()
        await expect(bob.locator("#chat-name")).to_have_text("Lunch crew")
        theirs = bob.locator(".msg.theirs")
        await expect(theirs).to_have_count(1)
        await expect(theirs.locator(".sender")).to_have_text("Alice Example")
        await expect(theirs.locator(".body")).to_have_text("Pizza at noon, anyone?")

        # bob answers; alice sees it with his name
        await _composer(bob).press_sequentially("Count me in 🍕")
        await expect(alice.locator("#typing")).to_have_text("Bob Example is typing…")
        await _composer(bob).press("Enter")
        answer = alice.locator(".msg.theirs")
        await expect(answer).to_have_count(1)
        await expect(answer.locator(".sender")).to_have_text("Bob Example")
        await expect(answer.locator(".body")).to_have_text("Count me in 🍕")
        await expect(_contact(alice, group).locator(".contact-sub")).to_have_text(
            "Bob: Count me in 🍕"
        )
        await _composer(alice).fill("Great, see you at the door")
        await _composer(alice).press("Enter")
        await expect(bob.locator(".msg.theirs .body").last).to_have_text(
            "Great, see you at the door"
        )
        await expect(alice.locator(".msg.mine").last).to_have_attribute("data-state", "delivered")
        await alice.screenshot(path=screenshot_path("chat-group"))
        _keep("chat-group", "chat-group.png")

        # the group's history: bob signs in again and reads it from the store
        await drained(server)
        await bob.reload()
        await _sign_in(bob, "bob")
        await expect(_contact(bob, group).locator(".contact-name")).to_have_text("Lunch crew")
        await _contact(bob, group).click()
        await expect(bob.locator(".msg .body")).to_have_text(
            ["Pizza at noon, anyone?", "Count me in 🍕", "Great, see you at the door"]
        )
        await expect(bob.locator(".msg.theirs .sender").first).to_have_text("Alice Example")
        await expect(bob.locator("#history-status")).to_have_text("Start of the conversation")
        _clean(alice)
        _clean(bob)


async def test_an_attach_url_that_is_not_an_upload_is_only_a_link(browser: Browser) -> None:
    """A peer may put any url in ``attach``; the page loads none of them by itself (an
    image of another path of this server would be a request with the reader's cookies and
    remembered logins), and shows foreign ones with their host."""
    async with running_server() as server:
        dave = await _login(browser, server.http, "dave")
        carol = await server.phone("carol")
        await carol.setup(1, "dave")
        await carol.sig(1, "call_proc")
        await expect(_contact(dave, "carol")).to_be_visible()
        await carol.sig(1, "conn")
        requested: list[str] = []
        dave.on("request", lambda request: requested.append(request.url))
        await carol.say(1, "cat.png", attach="/debug.xml?pbx=on")
        await carol.say(1, "invoice.pdf", attach="https://elsewhere.example/x.exe")
        await _contact(dave, "carol").click()
        links = dave.locator(".msg .attachments a.external")
        await expect(links).to_have_count(2)
        await expect(links.last).to_contain_text("elsewhere.example/x.exe")
        await expect(dave.locator(".msg .attachments img")).to_have_count(0)
        assert not any("debug.xml" in url or "elsewhere" in url for url in requested)
        _clean(dave)
