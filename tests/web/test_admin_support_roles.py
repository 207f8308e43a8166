"""A user's role and a queue's ``take_on_write`` on the operator's pages (docs/protocol.md
12.15, 12.34), in a real Chromium against a real server: the admin shows and changes both
through the forms, the admin API keeps them, and the support console of the user signed
in afterwards works by them (a supervisor, a ringing chat to take by writing)."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, expect

from tests.integration.test_trace import ADMIN, admin_config
from tests.support import running_server
from tests.web.conftest import keep_screenshot, screenshot_path
from tests.web.test_admin_pages import signed_in
from tests.web.test_support_pages import agent_console, patient_expect, scripted_visitor

__all__ = ["patient_expect"]  # the autouse fixture, for this module's tests too


async def test_the_admin_makes_a_supervisor_and_a_queue_taken_by_writing(
    browser: Browser,
) -> None:
    async with (
        running_server(admin_config()) as server,
        httpx.AsyncClient(base_url=server.http, auth=ADMIN, timeout=10) as http,
    ):
        page = await signed_in(browser, server)
        await page.get_by_role("tab", name="Users").click()
        alice = page.locator('#users-body tr[data-sip="alice"]')
        await expect(alice.locator('[data-label="Role"]')).to_have_text("Agent")

        await page.get_by_role("button", name="Edit user alice").click()
        dialog = page.locator("#user-dialog")
        await expect(dialog.get_by_label("Role in live support")).to_have_value("")
        await dialog.get_by_label("Role in live support").select_option("Supervisor")
        await page.screenshot(path=screenshot_path("admin-user-role-form"))
        await dialog.get_by_role("button", name="Save user").click()
        await expect(dialog).to_be_hidden()
        await expect(alice.locator('[data-label="Role"]')).to_have_text("Supervisor")
        saved = (await http.get("/admin/users/example.com/alice")).json()
        assert (saved["role"], saved["dn"], saved["licences"]) == (
            "supervisor",
            "Alice Example",
            ["messages"],
        )
        await page.screenshot(path=screenshot_path("admin-users-roles"))
        keep_screenshot("admin-users-roles", "admin-users")

        # the form shows the role it has; bob stays an agent
        await page.get_by_role("button", name="Edit user alice").click()
        await expect(dialog.get_by_label("Role in live support")).to_have_value("supervisor")
        await dialog.get_by_role("button", name="Cancel").click()
        assert (await http.get("/admin/users/example.com/bob")).json()["role"] == ""
        await page.get_by_role("tab", name="Agents").click()
        agents = page.locator("#agents-body")
        await expect(agents.locator('tr[data-sip="alice"] [data-label="Role"]')).to_have_text(
            "Supervisor"
        )
        await expect(agents.locator('tr[data-sip="bob"] [data-label="Role"]')).to_have_text("Agent")

        await page.get_by_role("tab", name="Queues").click()
        support = page.locator('#queues-body tr[data-sip="support"]')
        await expect(support.locator('[data-label="Take by writing"]')).to_have_text("Off")
        await page.get_by_role("button", name="Edit queue support").click()
        queue_dialog = page.locator("#queue-dialog")
        await expect(queue_dialog.get_by_label("Take by writing")).not_to_be_checked()
        await queue_dialog.get_by_label("Take by writing").check()
        await page.screenshot(path=screenshot_path("admin-queue-form"))
        await queue_dialog.get_by_role("button", name="Save queue").click()
        await expect(queue_dialog).to_be_hidden()
        await expect(support.locator('[data-label="Take by writing"]')).to_have_text("On")
        queue = (await http.get("/admin/queues/example.com/support")).json()
        assert (queue["take_on_write"], queue["agents"]) == (True, ["alice", "bob"])
        await page.screenshot(path=screenshot_path("admin-queues-take-on-write"))

        # alice's console, signed in now, works by both
        console = await agent_console(browser, server)
        await expect(console.locator("#me-role")).to_have_text("Supervisor")
        await scripted_visitor(server, "Sam Okafor", "Kettle 3000", "Does it descale?")
        card = console.locator("#waiting .card", has_text="Sam Okafor")
        await expect(card.get_by_role("button", name="Reply")).to_be_visible()

        # and back: the form turns both off again
        await page.get_by_role("button", name="Edit queue support").click()
        await queue_dialog.get_by_label("Take by writing").uncheck()
        await queue_dialog.get_by_role("button", name="Save queue").click()
        await expect(support.locator('[data-label="Take by writing"]')).to_have_text("Off")
        await page.get_by_role("tab", name="Users").click()
        await page.get_by_role("button", name="Edit user alice").click()
        await dialog.get_by_label("Role in live support").select_option("Agent")
        await dialog.get_by_role("button", name="Save user").click()
        await expect(alice.locator('[data-label="Role"]')).to_have_text("Agent")
        assert (await http.get("/admin/users/example.com/alice")).json()["role"] == ""
        queue = (await http.get("/admin/queues/example.com/support")).json()
        assert queue["take_on_write"] is False
