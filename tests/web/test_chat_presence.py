"""Presence in the chat app the way shops need it (docs/protocol.md 12.37), in a real
Chromium against a real server: a contact whose tab closes shows offline at once, although
its calls wait out a resume grace of a minute, and shows online again when it signs in."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.support import make_config, running_server
from tests.web.test_chat_app import _clean, _login, _sign_in, _start_chat


async def test_a_contact_whose_tab_closed_is_offline_at_once(browser: Browser) -> None:
    async with running_server(make_config(grace=60.0)) as server:
        alice = await _login(browser, server.http, "alice")
        bob = await _login(browser, server.http, "bob")
        await _start_chat(alice, "bob")
        await expect(alice.locator("#chat-status")).to_have_text("Online")

        await bob.goto("about:blank")  # bob's tab leaves the app: a clean close
        # the hub's clock stands still: no grace ran out, the close alone says it
        await expect(alice.locator("#chat-status")).to_have_text("Offline")

        await bob.go_back()  # and comes back: signed in again, online again
        await _sign_in(bob, "bob")
        await expect(alice.locator("#chat-status")).to_have_text("Online")
        _clean(alice)
