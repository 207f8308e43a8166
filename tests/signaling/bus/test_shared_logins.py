"""Logins and visitor accounts shared by hub nodes (docs/protocol.md 12.44): nodes in this
process on a private ``redis-server`` and a scratch PostgreSQL database, real uvicorn
servers, real WebSocket and HTTP clients. A visitor made on one node logs in on another;
wrong passwords spread over two nodes meet one limit, and lock out no neighbour; Redis
restarting empty loses the throttle windows and no account a node holds; with Redis
away each node counts alone, and what only Redis knows is ``unavailable``."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from typing import Any

import httpx

from config import Config
from signaling.appwebsocket.digest import login_digest
from signaling.bus import keys
from tests.cluster_services import ClusterServices, node_config, running_nodes
from tests.support import RunningServer, make_config, running_server

ADMIN = ("admin", "cluster-admin-secret")
BOUND = 15.0
"""Seconds something may take to be written again before a test fails: generous."""
ELSEWHERE = "127.0.0.2"


def login_node(services: ClusterServices, name: str, **login: Any) -> Config:
    """A node whose pair locks outlast the test (Redis's clock goes on while it runs)."""
    config = make_config(messages=False, burst=5000, rate_close_after=5000)
    numbers = {"throttle_delay": 20.0, "throttle_max_delay": 30.0, **login}
    config = replace(
        config,
        login=replace(config.login, **numbers),
        admin=replace(config.admin, password=ADMIN[1]),
    )
    return node_config(services, name, config)


def nodes(
    *names: str, **login: Any
) -> contextlib.AbstractAsyncContextManager[tuple[ClusterServices, list[RunningServer]]]:
    return running_nodes(lambda services, name: login_node(services, name, **login), *names)


async def attempt(
    node: RunningServer, sip: str, password: str, *, source: str | None = None
) -> dict[str, Any]:
    """One login on a connection of its own; its ``AppLoginResult``."""
    client = await node.connect(source=source)
    try:
        await client.send({"mt": "AppChallenge"})
        challenge = (await client.recv())["challenge"]
        digest = login_digest(
            app="", domain="", sip=sip, guid="", dn="", challenge=challenge, password=password
        )
        await client.send({"mt": "AppLogin", "sip": sip, "digest": digest})
        reply: dict[str, Any] = await client.recv()
    finally:
        await client.close()
    assert reply["mt"] == "AppLoginResult", reply
    return reply


async def make_visitor(node: RunningServer, **fields: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=node.http, timeout=10) as http:
        return await http.post("/api/visitors", json={"name": "Ann Buyer", **fields})


async def metric(node: RunningServer, line: str) -> bool:
    async with httpx.AsyncClient(base_url=node.http, timeout=10) as http:
        return f"\n{line}\n" in (await http.get("/metrics")).text


async def test_a_visitor_made_on_one_node_logs_in_and_chats_on_another() -> None:
    async with nodes("a", "b") as (_, (a, b)):
        made = await make_visitor(a, context={"product": "Boots", "url": "https://shop.test/b"})
        assert made.status_code == 201, made.text
        account = made.json()
        alice = await a.phone("alice")  # an agent of the queue, on the node that made it
        visitor = await b.phone(account["sip"], password=account["password"])
        await visitor.setup(1, "support")
        await visitor.sig(1, "call_proc")
        _number, offer = await alice.offered()
        assert offer["cd"] == {"sip": "support"} and offer["cg"]["sip"] == account["sip"]
        context = {"type": "context", "product": "Boots", "url": "https://shop.test/b"}
        assert context in offer["fty"]  # the context its page gave, carried by node b
        # and node b now holds the account: it keeps it while the visitor is there
        assert b.hub.switch.directory.user("example.com", account["sip"]) is not None


async def test_wrong_passwords_spread_over_two_nodes_meet_one_limit() -> None:
    async with nodes("a", "b") as (_, (a, b)):
        for node in (a, b, a, b, a):  # five wrong passwords of one pair, over both nodes
            assert (await attempt(node, "alice", "guess"))["errorText"] == "login failed"
        for node in (b, a):  # the pair is locked on every node, even for the right one
            refused = await attempt(node, "alice", "alice-demo")
            assert refused["errorText"] == "throttled" and refused["retry_after_ms"] > 10_000
        # the neighbours are not: another account behind that address, the account elsewhere
        assert (await attempt(b, "bob", "bob-demo"))["ok"] is True
        assert (await attempt(a, "alice", "alice-demo", source=ELSEWHERE))["ok"] is True
        assert await metric(a, "switchboard_bus_unanswered_logins_total 0")


async def test_an_account_s_budget_is_spent_across_nodes() -> None:
    budget = 4
    async with nodes("a", "b", throttle_failures=100, throttle_account_failures=budget) as (
        _,
        (a, b),
    ):
        for n in range(budget):  # one guess from each of four addresses, over both nodes
            node = (a, b)[n % 2]
            guess = await attempt(node, "dave", "guess", source=f"127.0.0.{10 + n}")
            assert guess["errorText"] == "login failed"
        late = await attempt(b, "dave", "guess", source="127.0.0.20")
        assert (late["errorText"], late["retry_after_ms"]) == ("throttled", 30_000)
        assert (await attempt(a, "dave", "dave-demo"))["ok"] is True  # never the owner
        assert await metric(b, 'switchboard_login_throttled_total{budget="account"} 1')


async def test_admin_guesses_spread_over_nodes_meet_one_limit() -> None:
    async with nodes("a", "b") as (_, (a, b)):
        for node in (a, b, a, b, a):
            async with httpx.AsyncClient(base_url=node.http, timeout=10) as http:
                answer = await http.post("/admin/login", json={"user": "admin", "password": "x"})
            assert answer.status_code == 401
        async with httpx.AsyncClient(base_url=b.http, timeout=10) as http:
            held = await http.post("/admin/login", json={"user": "admin", "password": ADMIN[1]})
            assert held.status_code == 429


async def until_written(services: ClusterServices, key: str) -> None:
    client = services.redis.client()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BOUND
        while not await client.exists(key):
            assert loop.time() < deadline, f"{key} was not written again within {BOUND} s"
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()


async def test_redis_restarting_empty_loses_only_what_the_nodes_do_not_hold() -> None:
    async with nodes("a", "b") as (services, (a, b)):
        account = (await make_visitor(a)).json()
        visitor = await b.phone(account["sip"], password=account["password"])
        for _ in range(5):  # alice's pair locked, by failures on node b
            await attempt(b, "alice", "guess")
        services.redis.kill()
        await services.redis.start()  # the same port, without its data
        await until_written(services, keys.visitor("example.com", account["sip"]))
        async with running_server(login_node(services, "c")) as c:
            # the account both nodes hold is back, so a node that never knew it finds it
            again = await c.phone(account["sip"], password=account["password"])
            await again.sync()
            # the throttle windows are gone (SCALE.md accepts it): node c lets alice in,
            # while node b still holds what it counted itself
            assert (await attempt(c, "alice", "alice-demo"))["ok"] is True
            assert (await attempt(b, "alice", "alice-demo"))["errorText"] == "throttled"
        await visitor.sync()


async def test_with_redis_away_each_node_counts_alone() -> None:
    async with nodes("a", "b") as (services, (a, b)):
        account = (await make_visitor(a)).json()
        services.redis.kill()
        # a known user logs in: the node decides alone, within cluster.answer_wait
        assert (await attempt(b, "bob", "bob-demo"))["ok"] is True
        for _ in range(5):
            assert (await attempt(b, "alice", "guess"))["errorText"] == "login failed"
        assert (await attempt(b, "alice", "alice-demo"))["errorText"] == "throttled"
        # a visitor account only Redis could tell node b about, and a new one: unavailable
        refused = await attempt(b, account["sip"], account["password"])
        assert (refused["error"], refused["errorText"]) == (4, "unavailable")
        made = await make_visitor(b)
        assert made.status_code == 503 and made.json()["code"] == "unavailable"
        # the node that made the visitor still has it
        assert (await attempt(a, account["sip"], account["password"]))["ok"] is True
        assert not await metric(b, "switchboard_bus_unanswered_logins_total 0")
        await services.redis.start()
