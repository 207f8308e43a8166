"""Live support in a real Chromium (PROTOCOL §9): the widget on a shop page of another
site, the visitor's chat in its frame (``/visit``), and the agent's console (``/agent``).

The shop page is served by a separate little server on another loopback port and under
another host name (``localhost`` against the hub's ``127.0.0.1``), so the widget really is
a cross-site script and its chat a cross-site frame. Time on the hub is its ManualClock:
timeouts are reached with ``server.advance``, never by sleeping; the browser side waits
with Playwright's auto-waiting ``expect``. Screenshots (``agent``, ``visit``,
``visit-mobile`` and a few more) go to the artifacts; ``docs/screenshots`` holds copies.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import html
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import httpx
import pytest
import uvicorn
from playwright.async_api import Browser, FrameLocator, Locator, Page, expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from config import Config
from signaling.server import bound_socket
from tests.support import Phone, RunningServer, make_config, running_server
from tests.web.conftest import keep_screenshot, screenshot_path

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

SHOP = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Lamp 7 · Lumen &amp; Co</title>
<style>
  body { margin: 0; font: 16px/1.5 Georgia, "Times New Roman", serif; color: #2b2118;
         background: #fbf8f3; }
  header { display: flex; justify-content: space-between; align-items: center;
           padding: 18px 40px; border-bottom: 1px solid #eadfce; background: #fff; }
  header b { font-size: 22px; letter-spacing: .04em; }
  nav a { margin-left: 24px; color: #6b5b49; text-decoration: none;
          font-family: system-ui, sans-serif; font-size: 14px; }
  main { display: flex; flex-wrap: wrap; gap: 48px; padding: 48px 40px; max-width: 1100px; }
  .photo { width: 420px; max-width: 100%; aspect-ratio: 1; border-radius: 12px;
           background: radial-gradient(circle at 50% 38%, #ffe9b8 0 18%, #f3c86b 19% 30%,
           #e7dccd 31%); }
  .info { flex: 1; min-width: 260px; }
  h1 { font-size: 40px; margin: 0 0 8px; font-weight: normal; }
  .price { font-size: 24px; color: #8a5a1c; margin: 0 0 20px; }
  button.buy { font: 600 15px system-ui, sans-serif; padding: 14px 28px; border: 0;
               border-radius: 8px; background: #2b2118; color: #fff; }
</style>
</head>
<body>
<header><b>LUMEN &amp; CO</b><nav><a href="#">Lamps</a><a href="#">Shelves</a>
<a href="#">Journal</a><a href="#">Cart (0)</a></nav></header>
<main>
  <div class="photo" role="img" aria-label="A lamp"></div>
  <div class="info">
    <h1>Lamp 7</h1>
    <p class="price">€129</p>
    <p>Hand-turned oak base, linen shade, warm dimmable light. Made in Porto.</p>
    <button class="buy" type="button">Add to cart</button>
  </div>
</main>
<script src="HUB/static/widget.js" data-product="Lamp 7" data-seller="Lumen &amp; Co"
        data-title="Lumen &amp; Co" async></script>
</body>
</html>
"""


@pytest.fixture(autouse=True)
def patient_expect() -> Iterator[None]:
    """Browser and server share a busy machine: a step may take longer than Playwright's
    5 s default, without anything being wrong."""
    expect.set_options(timeout=15_000)
    yield
    expect.set_options(timeout=5_000)


def support_config() -> Config:
    """Resume on (a reload of the shop page keeps the chat); connections are not closed
    for idleness while the tests move the hub's clock."""
    config = make_config(grace=60.0, idle_timeout=3600.0)
    return replace(config, support=replace(config.support, visitors_per_hour=1000))


@contextlib.asynccontextmanager
async def shop_site(hub: str) -> AsyncIterator[str]:
    """A shop's product page that includes the widget with one script tag, served from
    another site than the hub; yields the page's url."""
    page = SHOP.replace("HUB", html.escape(hub))

    async def product(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    app = Starlette(routes=[Route("/lamps/lamp-7", product)])
    sock = bound_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.005)
    try:
        yield f"http://localhost:{port}/lamps/lamp-7"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def agent_console(
    browser: Browser, server: RunningServer, user: str = "alice", *, hub_clock: bool = False
) -> Page:
    """``user``'s support console, signed in. ``hub_clock``: the page's clock starts at
    the hub's time before the page loads, so that its timers (the board's refresh) move
    with ``page.clock.fast_forward`` too."""
    page = await (await browser.new_context(viewport={"width": 1360, "height": 820})).new_page()
    if hub_clock:
        wall = datetime.datetime.fromtimestamp(server.clock.wall(), datetime.UTC)
        await page.clock.install(time=wall)
    await page.goto(server.http + "/agent")
    await page.get_by_label("User").fill(user)
    await page.get_by_label("Password").fill(f"{user}-demo")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#conn")).to_have_text("Online")
    await expect(page.locator("#availability")).to_have_attribute("data-activity", "available")
    return page


async def scripted_visitor(server: RunningServer, name: str, product: str, text: str) -> Phone:
    """A visitor who is not a browser: an account with a context, a call to the queue."""
    async with httpx.AsyncClient(base_url=server.http, timeout=10) as http:
        answer = await http.post(
            "/api/visitors", json={"name": name, "context": {"product": product}}
        )
    made = answer.json()
    phone = await server.phone(made["sip"], password=made["password"])
    await phone.setup(1, "support", {"mime": "text/plain", "data": text, "id": "m1"})
    return phone


WATCH_STATUS = """() => {
  window.statusSeen = [];
  const pill = document.getElementById("conn");
  new MutationObserver(() => window.statusSeen.push(pill.textContent))
    .observe(pill, { childList: true, characterData: true, subtree: true });
}"""
"""Records every text the console's connection pill shows (the reconnect is quick)."""


def drop_link(server: RunningServer, sip: str) -> None:
    """The hub gives up on the user's connection as on an idle link (4006): the
    registration waits for a resume (PROTOCOL 12.18), as after a network blink."""
    hub = server.hub
    (conn_id,) = [
        conn.id
        for conn in hub.switch.connections.values()
        if conn.registration is not None and conn.registration.user.sip == sip
    ]
    hub._apply(hub.switch.kick(conn_id, 4006, "idle"))


def widget(shop: Page) -> FrameLocator:
    return shop.frame_locator("iframe[title='Lumen & Co']")


async def write(box: Locator, text: str) -> None:
    await box.fill(text)
    await box.press("Enter")


STATE_KEY = "switchboard-widget-state"
"""Where the widget keeps the visitor frame's state in the shop page's sessionStorage."""
OLD_STATE = """([key, saved]) => {
  const { confId, ...rest } = saved;
  sessionStorage.setItem(key, JSON.stringify({ ...rest, callId: confId }));
}"""


async def test_a_shop_visitor_and_an_agent_chat_through_the_widget(browser: Browser) -> None:
    async with running_server(support_config()) as server, shop_site(server.http) as shop_url:
        agent = await agent_console(browser, server)
        await agent.screenshot(path=screenshot_path("agent-empty"))
        await agent.get_by_role("button", name="Away").click()  # no offers ring: Take it
        await expect(agent.locator("#availability")).to_have_attribute("data-activity", "away")

        shop = await (await browser.new_context(viewport=DESKTOP)).new_page()
        await shop.goto(shop_url)
        await shop.get_by_role("button", name="Chat with us").click()
        visit = widget(shop)
        await visit.get_by_label("Your name").fill("Ann Berger")
        await shop.screenshot(path=screenshot_path("visit-intro"))
        await visit.get_by_role("button", name="Start chat").click()
        await expect(visit.locator("#subtitle-text")).to_have_text("Waiting for an agent…")
        await write(visit.get_by_label("Message"), "Hello! Is the Lamp 7 available in red?")
        await expect(visit.locator(".msg.mine")).to_contain_text("available in red")

        # the agent sees the chat waiting on the board, with its context, and takes it
        card = agent.locator("#waiting .card", has_text="Ann Berger")
        await expect(card).to_contain_text("Lamp 7")
        await expect(card).to_contain_text("localhost")
        await card.get_by_role("button", name="Take").click()
        ann = agent.locator(".chat", has_text="Ann Berger")
        await expect(ann.locator(".msg.visitor")).to_contain_text("available in red")
        await expect(ann.locator(".context-row")).to_contain_text("Lamp 7")
        await expect(ann.locator(".context-row")).to_contain_text("Lumen & Co")
        await expect(agent.locator("#active .card", has_text="Ann Berger")).to_contain_text(
            "with you"
        )
        await ann.get_by_label("Reply").fill("Hi Ann")  # typing reaches the visitor
        await expect(visit.locator("#typing")).to_contain_text("Alice Example is typing")
        await write(ann.get_by_label("Reply"), "Hi Ann! Yes, it comes in red, white and black.")
        await expect(visit.locator(".msg.theirs")).to_contain_text("red, white and black")
        await expect(visit.locator("#title")).to_have_text("Alice Example")
        await expect(visit.locator("#typing")).to_be_hidden()
        await expect(visit.locator(".msg.mine")).to_contain_text("Delivered")

        # the tab keeps the chat by its confId (§4.5), the id the board and the hub use
        saved = await shop.evaluate(f"() => JSON.parse(sessionStorage.getItem('{STATE_KEY}'))")
        assert list(server.hub.switch.chat.support.chats) == [saved["confId"]]
        assert "callId" not in saved
        # state an older page kept (the same id, under callId) still takes the chat back
        await shop.evaluate(OLD_STATE, [STATE_KEY, saved])

        # a reload of the shop page keeps the chat: same call, same history, still live
        await shop.reload()
        visit = widget(shop)
        await expect(visit.locator(".msg.theirs")).to_contain_text("red, white and black")
        await expect(visit.locator(".msg.mine")).to_contain_text("available in red")
        await expect(visit.locator("#title")).to_have_text("Alice Example")
        await write(visit.get_by_label("Message"), "Lovely. Does it ship with a bulb?")
        await expect(ann.locator(".msg.visitor").nth(1)).to_contain_text("with a bulb")
        await expect(ann.locator(".msg.visitor")).to_have_count(2)
        await write(ann.get_by_label("Reply"), "It does: a warm 2700 K LED bulb is included.")
        await expect(visit.locator(".msg.theirs").nth(1)).to_contain_text("2700 K")
        await expect(visit.locator(".msg")).to_have_count(4)

        # the agent's link drops: the console says so, resumes, and nothing is lost or doubled
        await agent.evaluate(WATCH_STATUS)
        drop_link(server, "alice")
        # "Online" alone could still be the status from before the drop was noticed
        await agent.wait_for_function("() => window.statusSeen.includes('Reconnecting…')")
        await expect(agent.locator("#conn")).to_have_text("Online")
        await expect(agent.locator("#conn-banner")).to_be_hidden()
        await write(visit.get_by_label("Message"), "Perfect, thank you!")
        await expect(ann.locator(".msg.visitor").nth(2)).to_contain_text("thank you")
        await expect(ann.locator(".msg")).to_have_count(5)

        # two more visitors: one the agent accepts when it rings, one left ringing
        await scripted_visitor(server, "Marta Jensen", "Oak desk", "Do you ship to Norway?")
        marta_card = agent.locator("#waiting .card", has_text="Marta Jensen")
        await expect(marta_card.get_by_role("button", name="Take")).to_be_visible()
        await agent.get_by_role("button", name="Available").click()
        await expect(marta_card.get_by_role("button", name="Accept")).to_be_visible()
        await marta_card.get_by_role("button", name="Accept").click()
        marta = agent.locator(".chat", has_text="Marta Jensen")
        await expect(marta.locator(".msg.visitor")).to_contain_text("ship to Norway")
        await write(marta.get_by_label("Reply"), "We do! Delivery to Norway takes 3 to 5 days.")
        await expect(marta.locator(".msg.mine")).to_contain_text("delivered")
        await scripted_visitor(server, "Priya Nair", "Wall shelf", "Hi, a question on sizes")
        priya_card = agent.locator("#waiting .card", has_text="Priya Nair")
        await expect(priya_card.get_by_role("button", name="Accept")).to_be_visible()
        await expect(agent.locator(".chat")).to_have_count(2)  # side by side

        await agent.screenshot(path=screenshot_path("agent"))
        keep_screenshot("agent")
        await shop.screenshot(path=screenshot_path("visit"))
        await shop.set_viewport_size(PHONE)
        await expect(shop.get_by_role("button", name="Chat with us")).to_be_hidden()
        await shop.screenshot(path=screenshot_path("visit-mobile"))
        await shop.set_viewport_size(DESKTOP)

        # silence: the inactivity warning reaches both sides, shown apart from messages
        await server.advance(91)
        await expect(visit.locator(".msg.system")).to_contain_text("closed soon")
        await expect(ann.locator(".msg.system")).to_contain_text("Inactivity warning")
        await agent.screenshot(path=screenshot_path("agent-warning"))

        # Transfer back to the queue: the column goes, the chat waits on the board again
        await marta.get_by_role("button", name="Transfer").click()
        await marta.get_by_label("Transfer to").fill("support")
        await marta.get_by_role("button", name="Transfer").last.click()
        await expect(agent.locator(".chat", has_text="Marta Jensen")).to_have_count(0)
        await expect(marta_card.get_by_role("button", name="Take")).to_be_visible()

        # the agent closes the chat: the visitor is told it ended
        await ann.get_by_role("button", name="Close").click()
        await expect(ann.locator(".ended")).to_contain_text("You closed this chat")
        await expect(visit.locator("#ended")).to_contain_text("Alice Example closed the chat")
        await expect(visit.get_by_role("button", name="Start a new chat")).to_be_visible()
        await expect(agent.locator("#active .card", has_text="Ann Berger")).to_have_count(0)
        await shop.screenshot(path=screenshot_path("visit-ended"))


async def test_a_visitor_is_told_when_no_agent_answers(browser: Browser) -> None:
    async with running_server(support_config()) as server:
        page = await (await browser.new_context(viewport={"width": 400, "height": 640})).new_page()
        await page.goto(server.http + "/visit?product=Oak%20desk&queue=support")
        await expect(page.locator("#context")).to_contain_text("Oak desk")
        await page.get_by_role("button", name="Start chat").click()
        await expect(page.locator("#subtitle-text")).to_have_text("Waiting for an agent…")
        await write(page.get_by_label("Message"), "Anyone there?")
        await expect(page.locator(".msg.mine")).to_contain_text("Waiting for an agent")
        await server.advance(server.config.support.wait_timeout + 1)
        await expect(page.locator("#ended")).to_contain_text("No agent is available")
        await expect(page.get_by_role("button", name="Start a new chat")).to_be_visible()
        await page.screenshot(path=screenshot_path("visit-no-agent"))


async def test_a_silent_chat_is_warned_then_closed_for_the_visitor(browser: Browser) -> None:
    async with running_server(support_config()) as server:
        agent = await server.phone("alice")  # a scripted agent
        page = await (await browser.new_context(viewport={"width": 400, "height": 640})).new_page()
        await page.goto(server.http + "/visit")
        await page.get_by_label("Your name").fill("Sam")
        await page.get_by_role("button", name="Start chat").click()
        await expect(page.locator("#subtitle-text")).to_have_text("Waiting for an agent…")
        number, offer = await agent.offered()  # sent with the visitor's call_proc
        assert offer["cd"] == {"sip": "support"}
        await agent.signal(number, {"type": "conn"})
        await expect(page.locator("#title")).to_have_text("Alice Example")
        await server.advance(server.config.support.idle_warn + 1)
        await expect(page.locator(".msg.system")).to_contain_text("closed soon")
        await server.advance(server.config.support.idle_close)
        await expect(page.locator("#ended")).to_contain_text("nobody wrote for a while")
        await expect(page.locator("#subtitle-text")).to_have_text("Chat ended")


async def test_the_console_refuses_a_wrong_password_and_an_unknown_queue(
    browser: Browser,
) -> None:
    async with running_server(support_config()) as server:
        page = await (await browser.new_context()).new_page()
        await page.goto(server.http + "/agent")
        await page.get_by_label("User").fill("alice")
        await page.get_by_label("Password").fill("wrong")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.locator("#login-error")).to_have_text("Wrong user or password.")
        await page.get_by_label("Password").fill("alice-demo")
        await page.locator("#login-queue").fill("nosuchqueue")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.locator("#board-error")).to_contain_text('no queue "nosuchqueue"')
