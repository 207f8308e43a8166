"""Client message ids as idempotency keys per sender (PROTOCOL §4.6 revised, docs 12.21),
on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from messages_service.storage import Duplicate, MessageStore, NewPost, Original
from messages_service.storage.migrations import migrate
from tests.messages_service.storage.test_store import BASE, D

DAY = 24 * 3600.0


def sent(client_id: str, call_id: str, seq: int, **changes: object) -> NewPost:
    return replace(
        BASE, client_id=client_id, call_id=call_id, seq=seq, time_ms=5000 + seq, **changes
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[MessageStore]:
    opened = await MessageStore.open(database_url, key_ttl=DAY)
    opened.wall = Clock()
    try:
        yield opened
    finally:
        await opened.close()


async def rows(store: MessageStore, topic: str, peer: str) -> list[tuple[str, int]]:
    page = await store.read_chat(D, topic, peer, older=None, count=100, rows=True)
    return [(m.call_id, m.seq) for m in reversed(page.messages)]


async def test_a_resend_on_a_new_call_stores_nothing_and_names_the_original(
    store: MessageStore,
) -> None:
    (first,) = (await store.write_posts([sent("m1", "call-1", 7)])).outcomes
    batch = await store.write_posts([sent("m1", "call-2", 1), sent("m2", "call-2", 2)])
    assert batch.outcomes[0] == Duplicate(first, Original("call-1", 7, 5007))  # type: ignore[arg-type]
    assert isinstance(batch.outcomes[1], int)
    assert batch.badges and batch.badges[0].count == 2  # only m2 is new for bob
    for topic, peer in (("alice", "bob"), ("bob", "alice")):
        assert await rows(store, topic, peer) == [("call-1", 7), ("call-2", 2)]


async def test_the_same_post_again_is_not_a_duplicate(store: MessageStore) -> None:
    """The hub's journal resends a Post with its own (callId, seq): answered as before."""
    (first,) = (await store.write_posts([sent("m1", "call-1", 1)])).outcomes
    (again,) = (await store.write_posts([sent("m1", "call-1", 1)])).outcomes
    assert again == first


async def test_repeats_inside_one_batch_keep_the_first(store: MessageStore) -> None:
    batch = await store.write_posts(
        [sent("m1", "call-1", 1), sent("m1", "call-1", 1), sent("m1", "call-2", 1)]
    )
    first = batch.outcomes[0]
    assert isinstance(first, int) and batch.outcomes[1] == first
    assert batch.outcomes[2] == Duplicate(first, Original("call-1", 1, 5001))
    assert await rows(store, "alice", "bob") == [("call-1", 1)]


async def test_keys_are_per_sender_and_per_tenant(store: MessageStore) -> None:
    bob = {"author": "bob", "author_dn": "Bob", "topic": "bob", "peer": "alice"}
    batch = await store.write_posts(
        [
            sent("m1", "call-1", 1),
            sent("m1", "call-1", 2, **bob),  # bob's own m1
            sent("m1", "call-9", 1, domain="other.example"),
        ]
    )
    assert all(isinstance(outcome, int) for outcome in batch.outcomes)
    assert await rows(store, "alice", "bob") == [("call-1", 1), ("call-1", 2)]


async def test_a_key_expires_after_the_ttl(store: MessageStore) -> None:
    clock = store.wall
    assert isinstance(clock, Clock)
    await store.write_posts([sent("m1", "call-1", 1)])
    clock.now += DAY - 1
    (within,) = (await store.write_posts([sent("m1", "call-2", 1)])).outcomes
    assert isinstance(within, Duplicate)
    clock.now += 2  # past the day: the id is free again
    (after,) = (await store.write_posts([sent("m1", "call-3", 1)])).outcomes
    assert isinstance(after, int)
    assert await rows(store, "alice", "bob") == [("call-1", 1), ("call-3", 1)]


async def test_expired_keys_are_pruned(store: MessageStore, database_url: str) -> None:
    clock = store.wall
    assert isinstance(clock, Clock)
    await store.write_posts([sent(f"m{n}", "call-1", n) for n in range(5)])
    clock.now += DAY + 120
    await store.write_posts([sent("fresh", "call-2", 1)])
    assert await store.idempotency_keys() == 1


async def test_group_posts_are_keyed_by_their_author(store: MessageStore) -> None:
    group = await store.create_group(D, "Team", "alice")
    await store.put_member(D, group.id, "bob", admin=False)
    to_group = {"topic": group.sip, "peer": group.sip, "grp": True, "sides": ()}
    (first,) = (await store.write_posts([sent("g1", "call-1", 1, **to_group)])).outcomes
    (again,) = (await store.write_posts([sent("g1", "call-2", 5, **to_group)])).outcomes
    assert again == Duplicate(first, Original("call-1", 1, 5001))  # type: ignore[arg-type]
    page = await store.read_chat(D, "bob", group.sip, older=None, count=10, rows=True)
    assert len(page.messages) == 1


async def test_the_upgrade_makes_keys_of_the_ids_already_stored(database_url: str) -> None:
    """Migration 2 fills ``post_keys`` from the rows stored before it: the first Post of
    each (domain, author, id) holds the key, even where older releases stored it twice."""
    store = await MessageStore.open(database_url, key_ttl=DAY)
    clock = store.wall = Clock()
    clock.now = 60.0  # a minute after the messages' own times: their keys are live
    try:
        await store.write_posts(
            [sent("m1", "call-1", 1), sent("m2", "call-1", 2), sent("m3", "call-1", 3)]
        )
        db = store._db

        async def back_to_schema_1_with_a_doubled_id() -> None:
            async with db.transaction() as tx:
                await tx.execute_query("DROP TABLE post_keys")
                await tx.execute_query("DELETE FROM schema_version WHERE version = 2")
                await tx.execute_query(
                    db.sql(
                        "INSERT INTO messages (domain, topic, peer, grp, author, author_dn,"
                        " text, call_id, seq, client_id, time_ms, deleted)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    ),
                    [D, "alice", "bob", False, "alice", "Alice", "hi", "call-0", 9, "m2", 1, False],
                )

        await db.run(back_to_schema_1_with_a_doubled_id())
        await db.run(migrate(db))
        assert await store.idempotency_keys() == 3
        (resend,) = (await store.write_posts([sent("m2", "call-5", 1)])).outcomes
        assert isinstance(resend, Duplicate)
        assert resend.original == Original("call-1", 2, 5002)  # the first stored row
    finally:
        await store.close()


async def test_a_resend_ahead_of_the_journals_copy_in_one_batch(store: MessageStore) -> None:
    """The holder is the Post stored before, not whichever comes first in the batch: the
    journal's own resend stays the original, the client's resend is the duplicate."""
    (stored,) = (await store.write_posts([sent("m1", "call-1", 7)])).outcomes
    batch = await store.write_posts([sent("m1", "call-2", 1), sent("m1", "call-1", 7)])
    assert batch.outcomes == (Duplicate(stored, Original("call-1", 7, 5007)), stored)  # type: ignore[arg-type]
    assert await rows(store, "alice", "bob") == [("call-1", 7)]


async def test_an_agents_id_is_the_agents_own_not_its_queues(store: MessageStore) -> None:
    """Support agents write as their queue (author); the key is the writer's."""
    queue = {"author": "support", "author_dn": "Support", "topic": "support", "peer": "alice"}
    batch = await store.write_posts(
        [
            sent("a1", "call-1", 1, sides=("alice",), writer="carol", **queue),
            sent("a1", "call-1", 2, sides=("alice",), writer="dave", **queue),
        ]
    )
    assert all(isinstance(outcome, int) for outcome in batch.outcomes)
    page = await store.read_chat(D, "alice", "support", older=None, count=10, rows=True)
    assert len(page.messages) == 2


async def test_two_writers_claiming_the_same_keys_at_once(database_url: str) -> None:
    """Two service replicas on one database (PostgreSQL) claim overlapping keys in
    opposite orders: no deadlock, and each key is held by exactly one Post."""
    first = await MessageStore.open(database_url, key_ttl=DAY)
    second = await MessageStore.open(database_url, key_ttl=DAY)
    try:
        for round_ in range(10):
            ids = [f"r{round_}-{n}" for n in range(30)]
            one = [sent(i, f"one-{round_}", n) for n, i in enumerate(ids)]
            two = [sent(i, f"two-{round_}", n) for n, i in enumerate(reversed(ids))]
            a, b = await asyncio.gather(first.write_posts(one), second.write_posts(two))
            fresh = sum(isinstance(o, int) for o in (*a.outcomes, *b.outcomes))
            assert fresh == 30, round_
        page = await first.read_chat(D, "bob", "alice", older=None, count=400, rows=True)
        assert len(page.messages) == 300
    finally:
        await first.close()
        await second.close()
