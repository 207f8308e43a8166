"""The cluster's login throttle and visitor accounts in a private ``redis-server``
(``signaling.bus.logins``, docs/protocol.md 12.44): the scripts decide as
``LoginThrottle.gate`` does, a visitor account is made within its address's hourly
share and written with its expiry, and every question is answered, with None when Redis
cannot answer."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

from signaling.appwebsocket.throttle import LoginThrottle, ThrottlePolicy
from signaling.bus import keys
from signaling.bus.logins import ADMIN, HUB, SharedLogins
from signaling.core.actions import KeepVisitor, VisitorRecord, VisitorReleased
from tests.redis_server import RedisServer, private_redis

POLICY = ThrottlePolicy(
    failures=4,
    window=3600.0,
    delay=1000.0,  # no lock runs out while a test runs: Redis's clock goes on
    max_delay=2000.0,
    account_failures=7,
    address_failures=5,
)
ANN = VisitorRecord("example.com", "visitor-00000000000000aa", "Ann", "ann-pw", {"product": "x"})


@contextlib.asynccontextmanager
async def shared(
    redis: RedisServer, *, up: bool | Callable[[], bool] = True, wait: float = 5.0
) -> AsyncIterator[tuple[SharedLogins, list[Any]]]:
    """A ``SharedLogins`` on ``redis`` and the writes it queued for the bus's writer;
    ``up``: whether it may use Redis (or a callable that says so at each moment)."""
    ops: list[Any] = []
    logins = SharedLogins(
        POLICY,
        visitor_ttl=60.0,
        visitors_per_hour=2,
        grace=10.0,
        answer_wait=wait,
        queue_op=ops.append,
        up=up if callable(up) else lambda: up,
    )
    client = redis.client()
    logins.connect(client)
    task = asyncio.create_task(logins.asks.run())
    try:
        yield logins, ops
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.aclose()


async def run_ops(redis: RedisServer, ops: list[Any]) -> None:
    client = redis.client()
    try:
        pipe = client.pipeline(transaction=False)
        for op in ops:
            op(pipe)
        await pipe.execute()
    finally:
        await client.aclose()


async def test_the_script_decides_as_the_throttle_in_memory() -> None:
    """Random attempts of three addresses on three accounts, some with the right
    password (then forgiven): every verdict of Redis is the model's (no lock runs out
    during the test, and the budgets refill by far less than one in its time)."""
    addresses = ["192.0.2.1", "192.0.2.2", "2001:db8::1"]
    accounts = ["example.com/alice", "example.com/bob", "other.org/alice"]
    async with private_redis() as redis, shared(redis) as (logins, _):
        for seed in range(3):
            model, rng, seen = LoginThrottle(POLICY), random.Random(seed), set()
            await flush(redis)
            for step in range(120):
                address, account = rng.choice(addresses), rng.choice(accounts)
                charge = rng.random() > 0.1
                expected = model.gate(address, account, 0.0, charge=charge)
                got = await logins.check(HUB, address, account, charge=charge)
                assert got is not None
                assert (got.wait > 0, got.over, got.counted, got.taken) == (
                    expected.wait > 0,
                    expected.over,
                    expected.counted,
                    expected.taken,
                ), (seed, step)
                seen.add((got.wait > 0, got.over))
                if got.counted and rng.random() < 0.5:  # a right password
                    model.forgive(address, account, 0.0, expected.taken)
                    logins.forgive(HUB, address, account, got.taken)
            # every kind of verdict came up: locked, plain, over either budget
            assert seen == {(True, None), (False, None), (False, "account"), (False, "address")}


async def flush(redis: RedisServer) -> None:
    client = redis.client()
    try:
        await client.flushall()
    finally:
        await client.aclose()


async def test_a_login_s_question_is_one_round_trip() -> None:
    """No SCRIPT EXISTS before each question's pipeline: just the scripts' runs."""
    async with private_redis() as redis, shared(redis) as (logins, _):
        for n in range(3):
            verdict = await logins.check(HUB, "192.0.2.1", f"user{n}", charge=True)
            assert verdict is not None
            logins.forgive(HUB, "192.0.2.1", f"user{n}", verdict.taken)
        # a question after them: the forgiveness went before it, on the same connection
        assert await logins.check(HUB, "192.0.2.9", "bob", charge=False) is not None
        client = redis.client()
        try:
            stats = await client.info("commandstats")
        finally:
            await client.aclose()
        assert not any(name.startswith("cmdstat_script") for name in stats), stats
        assert stats["cmdstat_eval"]["calls"] == 7


async def test_a_forgiven_login_leaves_nothing_behind_and_scopes_are_apart() -> None:
    async with private_redis() as redis, shared(redis) as (logins, _):
        for _ in range(POLICY.failures):
            assert (await logins.check(HUB, "192.0.2.1", "alice", charge=True)) is not None
        locked = await logins.check(HUB, "192.0.2.1", "alice", charge=True)
        assert locked is not None and 500 < locked.wait <= 1000 and not locked.counted
        admin = await logins.check(ADMIN, "192.0.2.1", "alice", charge=True)
        assert admin is not None and admin.wait == 0  # admin logins are counted apart
        assert admin.taken == ("account", "address")
        logins.forgive(ADMIN, "192.0.2.1", "alice", admin.taken)
        client = redis.client()
        try:
            # a question after it: the forgiveness went first, on the questions' connection
            await logins.check(HUB, "192.0.2.9", "bob", charge=False)
            names = sorted(name.decode() for name in await client.keys("sb:thr:{admin}*"))
            pair_gone = not any(":pair:" in name for name in names)
            budgets = await client.hgetall(keys.throttle(ADMIN, "address", "192.0.2.1"))
        finally:
            await client.aclose()
        assert pair_gone and float(budgets[b"t"]) == POLICY.address_failures


async def test_a_right_password_gives_back_no_token_a_spent_budget_did_not_give() -> None:
    """The address's budget (5) is spent; logins with the right password of an account of
    the guesser's own, between its guesses, do not refill it."""
    async with private_redis() as redis, shared(redis) as (logins, _):
        for n in range(POLICY.address_failures):
            first = await logins.check(HUB, "192.0.2.1", f"victim{n}", charge=True)
            assert first is not None and first.over is None
        for n in range(3):
            mine = await logins.check(HUB, "192.0.2.1", "mine", charge=True)
            assert mine is not None and mine.over == "address" and mine.taken == ("account",)
            logins.forgive(HUB, "192.0.2.1", "mine", mine.taken)
            guess = await logins.check(HUB, "192.0.2.1", f"other{n}", charge=True)
            assert guess is not None and guess.over == "address"


async def test_visitor_accounts_are_made_within_the_address_s_hourly_share() -> None:
    async with private_redis() as redis, shared(redis) as (logins, _):
        bea = VisitorRecord("example.com", "visitor-00000000000000bb", "Bea", "bea-pw")
        cid = VisitorRecord("example.com", "visitor-00000000000000cc", "Cid", "cid-pw")
        assert await logins.make_visitor("example.com 192.0.2.1", ANN) is True
        assert await logins.make_visitor("example.com 192.0.2.1", bea) is True
        assert await logins.make_visitor("example.com 192.0.2.1", cid) is False
        assert await logins.make_visitor("other.org 192.0.2.1", cid) is True
        client = redis.client()
        try:
            stored = await client.hgetall(keys.visitor(ANN.domain, ANN.sip))
            expiry = await client.pttl(keys.visitor(ANN.domain, ANN.sip))
            made = await client.exists(keys.visitor(cid.domain, cid.sip))
        finally:
            await client.aclose()
        assert stored == {b"dn": b"Ann", b"password": b"ann-pw", b"context": b'{"product":"x"}'}
        assert 60_000 < expiry <= 70_000  # visitor_ttl and the grace
        assert made == 1  # made for the other tenant, under the same sip: one account


async def test_the_visitors_of_a_tenant_are_listed_from_every_node_s_accounts() -> None:
    """``GET /admin/visitors`` on a node of a cluster (docs 12.47): every account of the
    tenant in Redis, sorted, none of another tenant or of a name matching as a pattern."""
    async with private_redis() as redis, shared(redis, wait=0.5) as (logins, _):
        bea = VisitorRecord("example.com", "visitor-00000000000000bb", "Bea", "bea-pw")
        other = VisitorRecord("other.org", "visitor-00000000000000cc", "Cid", "cid-pw")
        wild = VisitorRecord("example.co*", "visitor-00000000000000dd", "Dee", "dee-pw")
        for record in (bea, ANN, other, wild):
            assert await logins.make_visitor(f"{record.domain} 192.0.2.{len(record.dn)}", record)
        assert await logins.visitors(["example.com"]) == {
            "example.com": [(ANN.sip, "Ann"), (bea.sip, "Bea")]
        }
        assert await logins.visitors(["example.co*"]) == {"example.co*": [(wild.sip, "Dee")]}
        assert await logins.visitors(["nobody.test"]) == {"nobody.test": []}
        # every tenant at once, in one scan
        assert await logins.visitors(["example.com", "other.org", "nobody.test"]) == {
            "example.com": [(ANN.sip, "Ann"), (bea.sip, "Bea")],
            "other.org": [(other.sip, "Cid")],
            "nobody.test": [],
        }
        redis.kill()
        assert await logins.visitors(["example.com"]) is None


async def test_a_tenant_s_visitors_list_none_of_a_tenant_whose_domain_extends_it() -> None:
    """The configuration accepts a domain with a colon: the keys of ``example.com:8080``'s
    visitors match ``example.com``'s pattern, and are none of its visitors."""
    async with private_redis() as redis, shared(redis, wait=0.5) as (logins, _):
        port = VisitorRecord("example.com:8080", "visitor-00000000000000ee", "Eve", "eve-pw")
        for record in (ANN, port):
            assert await logins.make_visitor(f"{record.domain} 192.0.2.{len(record.dn)}", record)
        assert await logins.visitors(["example.com"]) == {"example.com": [(ANN.sip, "Ann")]}
        both = await logins.visitors(["example.com", "example.com:8080"])
        assert both == {"example.com": [(ANN.sip, "Ann")], "example.com:8080": [(port.sip, "Eve")]}


async def test_a_kept_account_is_written_again_after_redis_lost_it() -> None:
    async with private_redis() as redis, shared(redis) as (logins, ops):
        logins.take(KeepVisitor(ANN))
        await run_ops(redis, ops)
        await flush(redis)  # Redis lost its data
        await run_ops(redis, logins.reassert())
        client = redis.client()
        try:
            assert await client.hget(keys.visitor(ANN.domain, ANN.sip), "password") == b"ann-pw"
            logins.take(VisitorReleased(ANN.domain, ANN.sip))
            assert logins.reassert() == []  # released: lost with the data, as accepted
        finally:
            await client.aclose()


async def test_a_question_is_answered_none_when_redis_cannot_answer() -> None:
    async with private_redis() as redis, shared(redis, wait=0.5) as (logins, _):
        redis.kill()
        assert await logins.check(HUB, "192.0.2.1", "alice", charge=True) is None
        assert await logins.make_visitor("example.com 192.0.2.1", ANN) is None
        logins.forgive(HUB, "192.0.2.1", "alice", ())  # nobody waits for it: not counted
        assert await logins.check(HUB, "192.0.2.1", "alice", charge=True) is None
        assert logins.asks.unanswered == 3
    async with private_redis() as redis, shared(redis, up=False) as (logins, _):
        logins.forgive(HUB, "192.0.2.1", "alice", ())
        assert await logins.check(HUB, "192.0.2.1", "alice", charge=True) is None
        assert logins.asks.unanswered == 1


async def test_a_silent_redis_is_given_up_on_within_the_wait() -> None:
    """Redis takes the connection but answers nothing (paused): the question is answered
    None after ``wait``, however long Redis stays silent."""
    async with private_redis() as redis, shared(redis, wait=0.5) as (logins, _):
        assert redis.process is not None
        client = redis.client()
        try:
            await client.client_pause(10_000)
            assert await asyncio.wait_for(logins.check(HUB, "a", "b", charge=True), 5) is None
        finally:
            await client.aclose()
