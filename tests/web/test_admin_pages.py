"""The operator's pages at /admin in a real Chromium against a real server: sign in through
the form, switch a trace flag, watch a chat appear in the live trace, download the trace,
add a user and a queue through the forms, change an agent's max chats, and a wrong
password refused with a message."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from playwright.async_api import Browser, Page, ViewportSize, expect

from tests.integration.test_trace import ADMIN, admin_config
from tests.support import RunningServer, connected_pair, running_server
from tests.web.conftest import screenshot_path

DESKTOP: ViewportSize = {"width": 1280, "height": 860}
PHONE: ViewportSize = {"width": 390, "height": 844}


@asynccontextmanager
async def admin_server() -> AsyncIterator[tuple[RunningServer, httpx.AsyncClient]]:
    async with (
        running_server(admin_config()) as server,
        httpx.AsyncClient(base_url=server.http, auth=ADMIN, timeout=10) as http,
    ):
        yield server, http


async def signed_in(browser: Browser, server: RunningServer) -> Page:
    page = await (await browser.new_context(viewport=DESKTOP)).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(server.http + "/admin")
    form = page.locator("#login-form")
    await form.get_by_label("User name").fill(ADMIN[0])
    await form.get_by_label("Password").fill(ADMIN[1])
    await form.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#account-name")).to_have_text(ADMIN[0])
    assert errors == []
    return page


async def test_the_admin_traces_a_chat_live_and_downloads_it(browser: Browser) -> None:
    async with admin_server() as (server, http):
        page = await signed_in(browser, server)
        # Kept for this tab only, never in localStorage.
        assert await page.evaluate("() => localStorage.length") == 0
        assert await page.evaluate("() => sessionStorage.length") == 1

        trace_tab = page.get_by_role("tab", name="Trace")
        await expect(trace_tab).to_have_attribute("aria-selected", "true")
        signalling = page.get_by_role("switch", name="signalling")
        await expect(signalling).not_to_be_checked()
        await signalling.check()
        await expect(signalling).to_be_enabled()  # disabled while the PUT is on its way
        assert (await http.get("/admin/trace")).json()["flags"]["signalling"] is True
        await page.get_by_role("switch", name="pbx").check()  # a fuller picture of the chat
        await expect(page.get_by_role("switch", name="pbx")).to_be_enabled()

        alice, _, _ = await connected_pair(server)
        await alice.say(1, "hello from the trace test")
        row = page.locator('.rec[data-subsystem="signalling"]').first
        await expect(row).to_be_visible()
        shown = await row.locator(".rec-text").inner_text()
        assert shown
        alice_row = page.locator(".rec-who").filter(has_text="alice@example.com").first
        await expect(alice_row).to_be_visible()
        await page.screenshot(path=screenshot_path("admin-trace"), full_page=True)

        async with page.expect_download() as started:
            await page.get_by_role("button", name="Download").click()
        download = await started.value
        assert download.suggested_filename.startswith("switchboard-trace-")
        text = await asyncio.to_thread(Path(await download.path()).read_text, encoding="utf-8")
        assert " signalling conn=" in text
        assert shown in text

        # The filter narrows the trace to one user.
        await page.get_by_label("User (sip)").fill("alice")
        await page.get_by_role("button", name="Apply filter").click()
        await expect(page.locator("#filter-summary")).to_have_text("user alice")
        assert (await http.get("/admin/trace")).json()["filter"] == {"user": "alice", "domain": ""}

        # Pause stops the view; the flag goes off again from the page.
        await page.get_by_role("button", name="Pause").click()
        await expect(page.locator("#live-state")).to_have_text("Paused")
        await signalling.uncheck()
        await expect(signalling).to_be_enabled()
        assert (await http.get("/admin/trace")).json()["flags"]["signalling"] is False


async def test_the_admin_adds_a_user_and_a_queue_through_the_forms(browser: Browser) -> None:
    async with admin_server() as (server, http):
        page = await signed_in(browser, server)
        await page.get_by_role("tab", name="Users").click()
        await expect(page.locator("#panel-users").get_by_label("Tenant")).to_have_value(
            "example.com"
        )
        await expect(page.locator('#users-body tr[data-sip="alice"]')).to_be_visible()

        await page.get_by_role("button", name="Add user").click()
        dialog = page.locator("#user-dialog")
        await dialog.get_by_label("SIP").fill("erin")
        await dialog.get_by_label("Name").fill("Erin Example")
        await dialog.get_by_label("Number").fill("101")  # alice's: the API refuses it
        await dialog.get_by_label("Password").fill("erin-secret")
        await dialog.get_by_label("Messages licence").check()
        await dialog.get_by_role("button", name="Save user").click()
        await expect(dialog.get_by_role("alert")).to_contain_text("number 101 belongs to 'alice'")
        await page.screenshot(path=screenshot_path("admin-user-form"))
        await dialog.get_by_label("Number").fill("150")
        await dialog.get_by_role("button", name="Save user").click()
        await expect(dialog).to_be_hidden()
        await expect(page.locator('#users-body tr[data-sip="erin"]')).to_contain_text(
            "Erin Example"
        )
        erin = (await http.get("/admin/users/example.com/erin")).json()
        assert erin == {
            "domain": "example.com",
            "sip": "erin",
            "dn": "Erin Example",
            "num": "150",
            "licences": ["messages"],
            "max_chats": 3,
            "role": "",
        }
        await page.screenshot(path=screenshot_path("admin-users"))

        await page.get_by_role("tab", name="Queues").click()
        await page.get_by_role("button", name="Add queue").click()
        dialog = page.locator("#queue-dialog")
        await dialog.get_by_label("SIP").fill("sales")
        await dialog.get_by_label("Name").fill("Sales")
        await dialog.get_by_role("checkbox", name="bob").check()
        await dialog.get_by_role("checkbox", name="erin").check()
        await dialog.get_by_role("button", name="Save queue").click()
        await expect(dialog).to_be_hidden()
        await expect(page.locator('#queues-body tr[data-sip="sales"]')).to_contain_text("erin")
        sales = (await http.get("/admin/queues/example.com/sales")).json()
        assert sales == {
            "domain": "example.com",
            "sip": "sales",
            "dn": "Sales",
            "agents": ["bob", "erin"],
            "take_on_write": False,
        }
        await page.screenshot(path=screenshot_path("admin-queues"))

        await page.get_by_role("tab", name="Agents").click()
        await expect(page.locator('#agents-body tr[data-sip="erin"]')).to_contain_text("sales")
        await page.get_by_label("Max chats for erin", exact=True).fill("5")
        await page.get_by_role("button", name="Save max chats for erin").click()
        await expect(page.locator('#agents-body tr[data-sip="erin"] .saved')).to_have_text("Saved")
        assert (await http.get("/admin/users/example.com/erin")).json()["max_chats"] == 5
        await page.screenshot(path=screenshot_path("admin-agents"))

        # An agent cannot be deleted: the API's answer is shown in the dialog.
        await page.get_by_role("tab", name="Users").click()
        await page.get_by_role("button", name="Delete user erin").click()
        confirm = page.locator("#confirm-dialog")
        await confirm.get_by_role("button", name="Delete user").click()
        await expect(confirm.get_by_role("alert")).to_contain_text("is an agent of queue(s) sales")
        await confirm.get_by_role("button", name="Cancel").click()
        assert (await http.get("/admin/users/example.com/erin")).status_code == 200

        await page.get_by_role("tab", name="Queues").click()
        await page.get_by_role("button", name="Delete queue sales").click()
        await confirm.get_by_role("button", name="Delete queue").click()
        await expect(page.locator('#queues-body tr[data-sip="sales"]')).to_have_count(0)
        assert (await http.get("/admin/queues/example.com/sales")).status_code == 404


async def test_the_pages_fit_a_phone_screen(browser: Browser) -> None:
    async with admin_server() as (server, _):
        page = await signed_in(browser, server)
        await page.set_viewport_size(PHONE)
        await page.get_by_role("tab", name="Users").click()
        await expect(page.locator('#users-body tr[data-sip="alice"]')).to_be_visible()
        width = await page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"]
        await page.screenshot(path=screenshot_path("admin-users-phone"))
        await page.get_by_role("tab", name="Trace").click()
        await expect(page.locator(".rec").first).to_be_visible()
        assert await page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        await page.screenshot(path=screenshot_path("admin-trace-phone"))


async def test_a_wrong_admin_password_shows_an_error(browser: Browser) -> None:
    async with admin_server() as (server, _):
        page = await (await browser.new_context(viewport=DESKTOP)).new_page()
        await page.goto(server.http + "/admin")
        form = page.locator("#login-form")
        await form.get_by_label("User name").fill(ADMIN[0])
        await form.get_by_label("Password").fill("not-the-password")
        await form.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("alert")).to_contain_text("Wrong user name or password")
        await expect(page.locator("#app-view")).to_be_hidden()
        assert await page.evaluate("() => sessionStorage.length") == 0
        await page.screenshot(path=screenshot_path("admin-login-error"))
