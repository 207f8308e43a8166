"""The admin pages' newer parts in a real Chromium against a real server: the token login
(only a token in the tab, revoked on signing out), visitors listed apart without agent
fields, App objects added and deleted, tenants added and removed, and the admin pages in
the same accent colour as the chat app."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, expect

from tests.integration.test_trace import ADMIN
from tests.web.conftest import screenshot_path
from tests.web.test_admin_pages import DESKTOP, admin_server, signed_in


async def test_token_login_visitors_apps_and_tenants(browser: Browser) -> None:
    async with admin_server() as (server, http):
        made = await http.post("/api/visitors", json={"name": "Vera Visitor"}, auth=None)
        visitor = made.json()["sip"]
        page = await signed_in(browser, server)
        kept = await page.evaluate("() => sessionStorage.getItem('switchboard.admin')")
        assert ADMIN[1] not in kept and "Basic" not in kept and '"token"' in kept

        await page.get_by_role("tab", name="Users").click()
        await expect(page.locator('#users-body tr[data-sip="alice"]')).to_be_visible()
        await expect(page.locator(f'#users-body tr[data-sip="{visitor}"]')).to_have_count(0)
        await page.get_by_role("tab", name="Visitors").click()
        row = page.locator(f'#visitors-body tr[data-sip="{visitor}"]')
        await expect(row).to_contain_text("Vera Visitor")
        assert "Max chats" not in await page.locator("#visitors-table").inner_text()

        await page.get_by_role("tab", name="Apps").click()
        await page.get_by_role("button", name="Add App object").click()
        dialog = page.locator("#app-dialog")
        await dialog.get_by_label("Name", exact=True).fill("greeter")
        await dialog.get_by_label("Display name").fill("Greeter bot")
        await dialog.get_by_label("APIs").fill("PbxSignal")
        await dialog.get_by_label("Acts for").fill("alice, bob")
        await dialog.get_by_label("Password").fill("greeter-secret")
        await dialog.get_by_role("button", name="Save App object").click()
        await expect(dialog).to_be_hidden()
        await expect(page.locator('#apps-body tr[data-name="greeter"]')).to_contain_text(
            "Greeter bot"
        )
        app = (await http.get("/admin/apps/example.com/greeter")).json()
        assert (app["apis"], app["act_for"]) == (["PbxSignal"], ["alice", "bob"])
        await page.screenshot(path=screenshot_path("admin-apps"))
        await page.get_by_role("button", name="Delete App object greeter").click()
        await page.locator("#confirm-dialog").get_by_role("button", name="Delete app").click()
        await expect(page.locator('#apps-body tr[data-name="greeter"]')).to_have_count(0)
        assert (await http.get("/admin/apps/example.com/greeter")).status_code == 404

        await page.get_by_role("tab", name="Tenants").click()
        await page.get_by_label("New tenant").fill("shop.example")
        await page.get_by_role("button", name="Add tenant").click()
        await expect(page.locator('#tenants-body tr[data-domain="shop.example"]')).to_be_visible()
        assert (await http.get("/admin/users?domain=shop.example")).json() == {"users": []}
        await page.screenshot(path=screenshot_path("admin-tenants"))
        await page.get_by_role("button", name="Delete tenant shop.example").click()
        await page.locator("#confirm-dialog").get_by_role("button", name="Delete tenant").click()
        await expect(page.locator('#tenants-body tr[data-domain="shop.example"]')).to_have_count(0)
        assert (await http.get("/admin/users?domain=shop.example")).status_code == 404

        # signing out revokes the token the tab held
        token = await page.evaluate(
            "() => JSON.parse(sessionStorage.getItem('switchboard.admin')).token"
        )
        await page.get_by_role("button", name="Sign out").click()
        await expect(page.locator("#login-view")).to_be_visible()
        async with httpx.AsyncClient(base_url=server.http) as anonymous:
            headers = {"Authorization": f"Bearer {token}"}
            for _ in range(100):
                if (await anonymous.get("/admin/tenants", headers=headers)).status_code == 401:
                    break
                await page.wait_for_timeout(50)
            assert (await anonymous.get("/admin/tenants", headers=headers)).status_code == 401


async def test_the_admin_pages_use_the_chat_apps_accent(browser: Browser) -> None:
    async with admin_server() as (server, _):
        context = await browser.new_context(viewport=DESKTOP)
        page = await context.new_page()
        await page.goto(server.http + "/")
        chat = await page.locator("#login-submit").evaluate(
            "b => getComputedStyle(b).backgroundColor"
        )
        await page.goto(server.http + "/admin")
        admin = await page.locator("#login-submit").evaluate(
            "b => getComputedStyle(b).backgroundColor"
        )
        assert chat == admin == "rgb(36, 87, 197)"  # --accent in base.css
        page = await signed_in(browser, server)
        tab = page.locator('[role="tab"][aria-selected="true"]')
        border = await tab.evaluate(
            "t => getComputedStyle(t).borderBottomColor + getComputedStyle(t).color"
        )
        assert "rgb(36, 87, 197)" in border
