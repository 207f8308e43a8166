"""The widget of a hosted tenant in a real Chromium (PROTOCOL §9.1): a shop page of another
site names its tenant with ``data-domain``, its origin is among that tenant's
``widget_origins``, and the visitor's chat reaches that tenant's agent."""

from __future__ import annotations

import asyncio
import contextlib
import html
import socket
from collections.abc import AsyncIterator
from dataclasses import replace

import uvicorn
from playwright.async_api import Browser, expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from config import Config, QueueConfig
from signaling.server import bound_socket
from tests.support import OTHER_TENANT, make_config, running_server

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Other shop</title>
</head><body><h1>Other shop</h1>
<script src="HUB/static/widget.js" data-domain="other.org" data-title="Other shop" async></script>
</body></html>"""


def hosted_config(shop_origin: str) -> Config:
    config = make_config(idle_timeout=3600.0)
    demo, _ = config.tenants
    other = replace(
        OTHER_TENANT,
        queues=(QueueConfig(sip="support", dn="Other support", agents=("erin",)),),
        widget_origins=(shop_origin,),
    )
    return replace(config, tenants=(demo, other))


@contextlib.asynccontextmanager
async def shop_site(sock: socket.socket, hub: str) -> AsyncIterator[str]:
    page = PAGE.replace("HUB", html.escape(hub))

    async def home(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    server = uvicorn.Server(
        uvicorn.Config(Starlette(routes=[Route("/", home)]), log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.005)
    try:
        yield f"http://localhost:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_a_hosted_shops_widget_reaches_that_shops_agent(browser: Browser) -> None:
    sock = bound_socket("127.0.0.1", 0)
    origin = f"http://localhost:{sock.getsockname()[1]}"
    async with (
        running_server(hosted_config(origin)) as server,
        shop_site(sock, server.http) as shop_url,
    ):
        demo_agent = await server.phone("alice")
        erin = await server.phone("erin", domain="other.org", password="erin-pw")
        shop = await (await browser.new_context()).new_page()
        await shop.goto(shop_url)
        await shop.get_by_role("button", name="Chat with us").click()
        visit = shop.frame_locator("iframe[title='Other shop']")
        await visit.get_by_label("Your name").fill("Olga")
        await visit.get_by_role("button", name="Start chat").click()
        await expect(visit.locator("#subtitle-text")).to_have_text(
            "Waiting for an agent…", timeout=15_000
        )
        number, offer = await erin.offered()
        assert offer["cd"] == {"sip": "support"} and offer["cg"]["sip"].startswith("visitor-")
        assert server.hub.switch.directory.user("other.org", offer["cg"]["sip"]) is not None
        await erin.signal(number, {"type": "conn"})
        await erin.say(number, "Hello Olga, Erin here.")
        await expect(visit.locator(".msg.theirs")).to_contain_text("Erin here", timeout=15_000)
        await expect(visit.locator("#title")).to_have_text("Erin Other")
        await demo_agent.sync()  # the default tenant's agent was offered nothing
