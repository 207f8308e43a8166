"""Admin tokens on the nodes of a cluster (docs/protocol.md 12.47), two nodes' logins on
one private ``redis-server``: a token one node gave is good on the other, a logout on
either ends it on both, it runs out with ``TOKEN_TTL`` in Redis, and with Redis away no
token is given out while the tokens a node gave keep working there (but for one it saw
ended), and a logout on a node cut off from Redis ends the token once Redis is back."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request

from config import AdminConfig, TenantAdmin
from signaling.admin_login import TOKEN_TTL, AdminLogins, AdminScope
from signaling.bus import keys
from tests.redis_server import RedisServer, private_redis
from tests.signaling.bus.test_shared_logins_redis import run_ops, shared

ADMIN = AdminConfig(
    password="secret",
    tenants=(TenantAdmin(domain="example.com", user="shop", password="shop-secret"),),
)


def request(method: str, path: str, token: str | None = None, body: bytes = b"") -> Request:
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": headers,
        "client": ("192.0.2.1", 1),
    }
    sent = False

    async def receive() -> dict[str, object]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


async def log_in(logins: AdminLogins, user: str, password: str) -> tuple[int, dict[str, object]]:
    body = json.dumps({"user": user, "password": password}).encode()
    answer = await logins._login(request("POST", "/admin/login", body=body))
    return answer.status_code, json.loads(bytes(answer.body))


@contextlib.asynccontextmanager
async def node(redis: RedisServer, wait: float = 5.0) -> AsyncIterator[AdminLogins]:
    """One node's admin logins, its tokens and throttle in ``redis``."""
    async with shared(redis, wait=wait) as (book, _):
        yield AdminLogins(ADMIN, shared=book, tokens=book)


@contextlib.asynccontextmanager
async def node_writing(
    redis: RedisServer, up: Callable[[], bool]
) -> AsyncIterator[tuple[AdminLogins, list[Any]]]:
    """One node's admin logins and the writes it queued for its bus's writer; ``up``:
    whether it may use Redis now."""
    async with shared(redis, up=up) as (book, ops):
        yield AdminLogins(ADMIN, shared=book, tokens=book), ops


async def test_a_token_from_one_node_is_good_on_another_until_a_logout_on_either() -> None:
    async with private_redis() as redis, node(redis) as a, node(redis) as b:
        status, answer = await log_in(a, "shop", "shop-secret")
        assert status == 200 and answer["domain"] == "example.com"
        token = str(answer["token"])
        assert await b.who(request("GET", "/admin/users", token)) == AdminScope("example.com")
        status, answer = await log_in(b, "admin", "secret")
        server_token = str(answer["token"])
        assert await a.who(request("GET", "/admin/users", server_token)) == AdminScope(None)
        await b._logout(request("POST", "/admin/logout", token))
        assert await a.who(request("GET", "/admin/users", token)) is None
        assert await b.who(request("GET", "/admin/users", token)) is None
        assert await a.who(request("GET", "/admin/users", server_token)) == AdminScope(None)
        assert await a.who(request("GET", "/admin/users", "made-up")) is None


async def test_redis_keeps_a_token_for_its_lifetime_and_no_plain_token() -> None:
    async with private_redis() as redis, node(redis) as a:
        _, answer = await log_in(a, "admin", "secret")
        client = redis.client()
        try:
            names = [name.decode() async for name in client.scan_iter(f"{keys.PREFIX}admintok:*")]
            assert len(names) == 1 and str(answer["token"]) not in names[0]
            ttl = await client.pttl(names[0])
            assert TOKEN_TTL * 1000 - 60_000 < ttl <= TOKEN_TTL * 1000
            await client.delete(names[0])  # as when it runs out
        finally:
            await client.aclose()
        assert await a.who(request("GET", "/admin/users", str(answer["token"]))) is None


async def test_with_redis_away_no_token_is_given_and_a_node_s_own_still_work() -> None:
    async with private_redis() as redis, node(redis, wait=0.5) as a:
        _, answer = await log_in(a, "admin", "secret")
        token = str(answer["token"])
        redis.kill()
        assert await a.who(request("GET", "/admin/users", token)) == AdminScope(None)
        status, refused = await log_in(a, "admin", "secret")
        assert status == 503 and refused["code"] == "unavailable"
        assert await a.who(request("GET", "/admin/users", "made-up")) is None


async def test_a_logout_while_the_node_is_cut_off_ends_the_token_once_it_is_back() -> None:
    """b is cut off from Redis when the token a gave is logged out there: the end waits
    with b's writes for Redis, and once they are written the token is good nowhere."""
    up = True
    async with (
        private_redis() as redis,
        node(redis) as a,
        node_writing(redis, lambda: up) as (b, writes),
    ):
        _, answer = await log_in(a, "shop", "shop-secret")
        token = str(answer["token"])
        up = False
        ended = await b._logout(request("POST", "/admin/logout", token))
        assert ended.status_code == 204
        up = True
        await run_ops(redis, writes)  # b's writer, once Redis answers it again
        assert await a.who(request("GET", "/admin/users", token)) is None
        assert await b.who(request("GET", "/admin/users", token)) is None


async def test_a_token_seen_ended_stays_ended_on_its_node_while_redis_is_away() -> None:
    """a gave the token, b logged it out and a heard so from Redis: with Redis away
    later, a's own copy of the token does not make it good again."""
    async with (
        private_redis() as redis,
        node(redis, wait=0.5) as a,
        node_writing(redis, lambda: True) as (b, writes),
    ):
        _, answer = await log_in(a, "admin", "secret")
        token = str(answer["token"])
        await b._logout(request("POST", "/admin/logout", token))
        await run_ops(redis, writes)
        assert await a.who(request("GET", "/admin/users", token)) is None
        redis.kill()
        assert await a.who(request("GET", "/admin/users", token)) is None


async def test_a_tenant_admin_s_token_never_reads_as_the_server_admin_s() -> None:
    """The configuration accepts any lower-case domain without whitespace, ``*`` too:
    the token of that tenant's admin stays a tenant admin's on the other node."""
    odd = AdminConfig(
        password="secret", tenants=(TenantAdmin(domain="*", user="star", password="star-pw"),)
    )
    async with private_redis() as redis, shared(redis) as (book_a, _), shared(redis) as (book_b, _):
        a = AdminLogins(odd, shared=book_a, tokens=book_a)
        b = AdminLogins(odd, shared=book_b, tokens=book_b)
        status, answer = await log_in(a, "star", "star-pw")
        assert status == 200 and answer["domain"] == "*"
        token = str(answer["token"])
        assert await b.who(request("GET", "/admin/users", token)) == AdminScope("*")
