"""Visitors of every tenant (PROTOCOL §9.1, docs/protocol.md 12.17): the widget names its
tenant, the tenant's ``widget_origins`` say which pages may make its visitors, the limit
per address counts each tenant apart, and a hosted tenant's visitor reaches that tenant's
own support queue, never another tenant's agents."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx

from config import Config, QueueConfig
from tests.support import OTHER_TENANT, RunningServer, make_config, running_server

SHOP = "https://shop.other.org"
OTHER = replace(
    OTHER_TENANT,
    queues=(QueueConfig(sip="support", dn="Other support", agents=("erin",)),),
    widget_origins=(SHOP,),
)


def tenants_config(per_hour: int = 20) -> Config:
    config = make_config()
    demo, _ = config.tenants
    support = replace(config.support, visitors_per_hour=per_hour)
    return replace(config, tenants=(demo, OTHER), support=support)


async def new_visitor(
    server: RunningServer, *, origin: str | None = None, **body: Any
) -> httpx.Response:
    headers = {"Origin": origin} if origin is not None else {}
    async with httpx.AsyncClient(base_url=server.http, timeout=10) as http:
        return await http.post("/api/visitors", json={"name": "Guest", **body}, headers=headers)


async def test_a_page_outside_the_tenants_widget_origins_is_refused() -> None:
    async with running_server(tenants_config()) as server:
        refused = await new_visitor(server, domain="other.org", origin="https://evil.example")
        assert (refused.status_code, refused.json()["code"]) == (403, "origin_refused")
        assert not [
            sip
            for sip in server.hub.switch.directory.tenant("other.org").users
            if sip.startswith("visitor-")
        ]  # nothing was made
        shop = await new_visitor(server, domain="other.org", origin=SHOP)
        assert shop.status_code == 201 and shop.json()["domain"] == "other.org"
        framed = await new_visitor(server, domain="other.org", origin=server.http)
        assert framed.status_code == 201  # the widget's frame: this server's own page
        anywhere = await new_visitor(server, origin="https://evil.example")
        assert anywhere.status_code == 201  # the demo tenant lists no origins: any page
        assert anywhere.json()["domain"] == "example.com"
        unknown = await new_visitor(server, domain="nowhere.example")
        assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
        wrong = await new_visitor(server, domain=["other.org"])
        assert (wrong.status_code, wrong.json()["code"]) == (400, "bad_json")
        async with httpx.AsyncClient(base_url=server.http, timeout=10) as http:
            page = await http.get("/visit", params={"domain": "other.org"})
            demo_page = await http.get("/visit")
        assert f"frame-ancestors 'self' {SHOP};" in page.headers["content-security-policy"]
        assert "frame-ancestors *;" in demo_page.headers["content-security-policy"]


async def test_a_hosted_tenants_visitor_reaches_its_own_support_queue_only() -> None:
    async with running_server(tenants_config()) as server:
        demo_agent = await server.phone("alice")
        erin = await server.phone("erin", domain="other.org", password="erin-pw")
        made = await new_visitor(server, domain="other.org", origin=SHOP, name="Olga")
        visitor = made.json()
        phone = await server.phone(
            visitor["sip"], domain=visitor["domain"], password=visitor["password"]
        )
        await phone.setup(1, "support", {"mime": "text/plain", "data": "where is my order?"})
        await phone.sig(1, "call_proc")
        number, offer = await erin.offered()
        assert offer["cg"]["sip"] == visitor["sip"] and offer["cd"]["sip"] == "support"
        await demo_agent.sync()  # the default tenant's agent was offered nothing
        await erin.signal(number, {"type": "conn"})
        await phone.sig(1, "conn")
        first = await erin.fty(number)
        assert first["data"] == "where is my order?"
        await erin.say(number, "Let me look.")
        assert (await phone.fty(1))["data"] == "Let me look."
        await demo_agent.sync()


async def test_the_limit_per_address_counts_each_tenant_apart() -> None:
    async with running_server(tenants_config(per_hour=2)) as server:
        for _ in range(2):
            assert (await new_visitor(server)).status_code == 201
        third = await new_visitor(server)
        assert (third.status_code, third.json()["code"]) == (429, "rate_limited")
        for _ in range(2):
            other = await new_visitor(server, domain="other.org", origin=SHOP)
            assert other.status_code == 201 and other.json()["domain"] == "other.org"
        last = await new_visitor(server, domain="other.org", origin=SHOP)
        assert (last.status_code, last.json()["code"]) == (429, "rate_limited")
