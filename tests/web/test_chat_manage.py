"""The chat app keeping the stored history tidy, in a real Chromium against a real server:
search every chat (PbxMessages ``Search``), delete one message (``Delete``) and a whole chat
(``DeleteChat``, docs 12.32) with the other side told live, and the composer keeping to the
server's ``limits.max_message`` as ``GET /api/limits`` says it (docs 12.36)."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, expect

from tests.integration.test_delete_chat import delete_chat
from tests.integration.test_messages import ask, call_offline, say_stored, session
from tests.support import drained, make_config, running_server
from tests.web.conftest import screenshot_path
from tests.web.test_chat_app import _clean, _composer, _contact, _keep, _login


async def test_search_delete_a_message_and_delete_the_chat(browser: Browser) -> None:
    async with running_server() as server:
        # alice leaves bob three notes while he is away: stored for both of them
        phone = await server.phone("alice")
        await phone.setup(1, "bob")
        await phone.sig(1, "call_proc")
        await phone.sig(1, "conn")
        for n, text in enumerate(["Your parcel left today", "Tracking: 4711", "Ring me 🎉"], 1):
            await phone.say(1, text, id=f"m{n}")
            assert (await phone.fty(1))["state"] == "stored"
        await drained(server)

        bob = await _login(browser, server.http, "bob")
        await bob.get_by_label("Search messages").fill("PARCEL")
        await bob.get_by_label("Search messages").press("Enter")
        found = bob.locator(".search-result")
        await expect(bob.locator("#search-status")).to_have_text("1 message found")
        await expect(found).to_have_count(1)
        await expect(found.locator(".search-name")).to_have_text("Alice Example")
        await expect(found.locator(".search-text")).to_have_text("Your parcel left today")
        await expect(bob.locator("#contacts")).to_be_hidden()
        await bob.screenshot(path=screenshot_path("chat-search"))
        _keep("chat-search", "chat-search.png")
        await found.click()
        await expect(bob.locator("#chat-name")).to_have_text("Alice Example")
        await expect(bob.locator("#contacts")).to_be_visible()
        messages = bob.locator(".msg.theirs")
        await expect(messages).to_have_count(3)

        # one message goes, on the server too: a fresh page does not bring it back
        await messages.nth(1).hover()
        await messages.nth(1).get_by_role("button", name="Delete this message").click()
        await expect(messages).to_have_count(2)
        await expect(bob.locator(".msg.theirs .body")).to_have_text(
            ["Your parcel left today", "Ring me 🎉"]
        )
        _clean(bob)
        await bob.context.close()
        bob = await _login(browser, server.http, "bob")
        await _contact(bob, "alice").click()
        await expect(bob.locator(".msg.theirs .body")).to_have_text(
            ["Your parcel left today", "Ring me 🎉"]
        )

        # the whole chat goes; alice, signed in, is told at once and keeps her copy
        alice = await _login(browser, server.http, "alice")
        await _contact(alice, "bob").click()
        await expect(alice.locator(".msg.mine")).to_have_count(3)
        await bob.get_by_role("button", name="Delete chat").click()
        dialog = bob.locator("#delete-chat-dialog")
        await expect(dialog).to_contain_text("Every message with Alice Example is deleted")
        await bob.screenshot(path=screenshot_path("chat-delete"))
        await dialog.get_by_role("button", name="Delete chat").click()
        await expect(dialog).to_be_hidden()
        await expect(bob.locator(".msg")).to_have_count(0)
        await expect(bob.locator("#notice")).to_contain_text("You deleted this chat.")
        await expect(alice.locator("#notice")).to_contain_text(
            "Bob Example deleted this chat on their side. Your copy stays."
        )
        await expect(alice.locator(".msg.mine")).to_have_count(3)

        await bob.get_by_label("Search messages").fill("parcel")
        await bob.get_by_label("Search messages").press("Enter")
        await expect(bob.locator("#search-status")).to_have_text("No message contains “parcel”.")
        _clean(bob)
        _clean(alice)


async def test_the_composer_keeps_to_the_servers_max_message(browser: Browser) -> None:
    async with running_server(make_config(max_message=200)) as server:
        async with httpx.AsyncClient(base_url=server.http) as http:
            limits = (await http.get("/api/limits")).json()
        assert limits == {"max_message": 200, "max_file": server.config.files.max_size}
        alice = await _login(browser, server.http, "alice")
        await alice.get_by_label("Start a chat with (user name)").fill("bob")
        await alice.get_by_role("button", name="Chat", exact=True).click()
        long = "x" * 250  # under the 64 KiB default, over this server's limit
        await _composer(alice).fill(long)
        await _composer(alice).press("Enter")
        await expect(alice.locator("#notice")).to_contain_text(
            "too long to send (at most 200 bytes)"
        )
        await expect(_composer(alice)).to_have_value(long)
        await expect(alice.locator(".msg.mine")).to_have_count(0)
        await _composer(alice).fill("short enough")
        await _composer(alice).press("Enter")
        await expect(alice.locator(".msg.mine .body")).to_have_text(["short enough"])
        _clean(alice)


async def test_a_chat_deleted_while_the_page_was_away_is_said_at_the_next_sign_in(
    browser: Browser,
) -> None:
    """docs 12.32: bob was signed out when alice deleted their chat; his chat app learns
    it from ReadChats (``ChatDeletedInd``) and says so, with ``both`` his copy gone too."""
    async with running_server(delete_chat(make_config(), "both")) as server:
        phone = await server.phone("alice")
        await call_offline(phone, "bob")
        await say_stored(phone, 1, "Your parcel left today", "m1")
        await drained(server)
        await session(phone)
        (deleted,) = await ask(phone, "DeleteChat", sip="bob")
        assert deleted["mt"] == "DeleteChatResult", deleted

        bob = await _login(browser, server.http, "bob")
        await _contact(bob, "alice").click()
        await expect(bob.locator("#notice")).to_contain_text(
            "Alice Example deleted this chat, and with it your copy."
        )
        await expect(bob.locator(".msg")).to_have_count(0)
        _clean(bob)
