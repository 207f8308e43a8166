"""Visitors (PROTOCOL §9.1): throwaway, unlicensed accounts that expire unused, made over
HTTP, limited per address; expiry runs on the server's clock (advanced, never slept)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest

from config import Config
from signaling.appwebsocket.errors import LoginFailed
from tests.support import RunningServer, make_config, running_server

TTL = 600.0


def visitor_config(per_hour: int = 20) -> Config:
    config = make_config(idle_timeout=TTL * 10)  # advancing the clock must not end connections
    support = replace(config.support, visitor_ttl=TTL, visitors_per_hour=per_hour)
    return replace(config, support=support)


async def new_visitor(server: RunningServer, **body: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.http, timeout=10) as http:
        return await http.post("/api/visitors", json=body or {"name": "Guest"})


async def test_a_visitor_account_logs_in_and_chats_volatile() -> None:
    async with running_server(visitor_config()) as server:
        answer = await new_visitor(server, name="  Ann\n  Buyer ", context={"product": "42"})
        assert answer.status_code == 201
        visitor = answer.json()
        assert visitor["domain"] == "example.com" and visitor["sip"].startswith("visitor-")
        assert visitor["expires"] > 0 and len(visitor["password"]) >= 24
        phone = await server.phone(visitor["sip"], password=visitor["password"])
        await phone.client.send({"api": "PbxMessages", "mt": "Session", "src": "s"})
        assert (await phone.next())["code"] == "unlicensed"  # no licence: volatile chat
        user = server.hub.switch.directory.user("example.com", visitor["sip"])
        assert user is not None and user.dn == "Ann Buyer" and not user.licences


async def test_an_unused_visitor_expires_and_a_registered_one_does_not() -> None:
    async with running_server(visitor_config()) as server:
        idle = (await new_visitor(server)).json()
        busy = (await new_visitor(server)).json()
        phone = await server.phone(busy["sip"], password=busy["password"])
        await server.advance(TTL + 1)
        with pytest.raises(LoginFailed):
            await server.phone(idle["sip"], password=idle["password"])
        await server.phone(busy["sip"], password=busy["password"])  # still there
        await phone.client.close()
        for other in server.phones:
            await other.client.close()
        await server.idle(0.1)
        await server.advance(TTL + 1)
        with pytest.raises(LoginFailed):
            await server.phone(busy["sip"], password=busy["password"])


async def test_visitor_accounts_are_limited_per_address_and_checked() -> None:
    async with running_server(visitor_config(per_hour=2)) as server:
        assert (await new_visitor(server)).status_code == 201
        assert (await new_visitor(server)).status_code == 201
        third = await new_visitor(server)
        assert (third.status_code, third.json()["code"]) == (429, "rate_limited")
    async with (
        running_server(visitor_config()) as server,
        httpx.AsyncClient(base_url=server.http, timeout=10) as http,
    ):
        for body in (b"[1]", b"{not json", b'{"name": 5}'):
            answer = await http.post("/api/visitors", content=body)
            assert (answer.status_code, answer.json()["code"]) == (400, "bad_json")


async def test_the_context_given_with_the_account_reaches_the_agent() -> None:
    async with running_server(visitor_config()) as server:
        agent = await server.phone("alice")
        context = {"product": "Lamp 7", "url": "https://shop.example/lamp", "colour": "red"}
        visitor = (await new_visitor(server, name="Ann", context=context)).json()
        phone = await server.phone(visitor["sip"], password=visitor["password"])
        await phone.setup(1, "support")
        await phone.sig(1, "call_proc")
        _, offer = await agent.offered()
        assert {
            "type": "context",
            "product": "Lamp 7",
            "url": "https://shop.example/lamp",
        } in offer["fty"]  # only the fields of a context are kept
        await phone.signal(1, {"type": "rel"})
        await agent.sig(kind="rel")
