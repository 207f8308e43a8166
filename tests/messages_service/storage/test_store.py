"""The message store on SQLite and PostgreSQL (``database_url`` runs each test on both)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from messages_service.errors import NotFound
from messages_service.storage import Badge, MessageStore, NewPost
from messages_service.storage import store as store_module

D = "example.com"

BASE = NewPost(
    domain=D,
    author="alice",
    author_dn="Alice",
    topic="alice",
    peer="bob",
    peer_dn="Bob",
    grp=False,
    sides=("alice", "bob"),
    text="hi",
    attach=None,
    call_id="call-1",
    seq=1,
    client_id=None,
    time_ms=1000,
)


def post(seq: int, text: str = "hi", **changes: object) -> NewPost:
    return replace(BASE, seq=seq, text=text, time_ms=1000 + seq, **changes)


def reply(seq: int, text: str = "re") -> NewPost:
    """bob to alice, in the same conversation."""
    return post(
        seq, text, author="bob", author_dn="Bob", topic="bob", peer="alice", peer_dn="Alice"
    )


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[MessageStore]:
    opened = await MessageStore.open(database_url)
    try:
        yield opened
    finally:
        await opened.close()


async def test_one_row_per_side_and_badges_for_the_receiver(store: MessageStore) -> None:
    batch = await store.write_posts([post(1), reply(2), post(3)])
    assert all(isinstance(outcome, int) for outcome in batch.outcomes)
    assert batch.badges == (Badge(D, "bob", 2), Badge(D, "alice", 1))
    alice = await store.read_chat(D, "alice", "bob", older=None, count=50, rows=True)
    bob = await store.read_chat(D, "bob", "alice", older=None, count=50, rows=True)
    assert [(m.seq, m.author) for m in alice.messages] == [(3, "alice"), (2, "bob"), (1, "alice")]
    assert [m.seq for m in bob.messages] == [3, 2, 1]
    assert alice.messages[0].id == batch.outcomes[2]  # the author's row answers
    assert {m.id for m in alice.messages}.isdisjoint({m.id for m in bob.messages})


async def test_a_post_already_stored_writes_nothing(store: MessageStore) -> None:
    (first,) = (await store.write_posts([post(1)])).outcomes
    again = await store.write_posts([post(1, "changed"), post(2), post(2)])
    assert again.outcomes[0] == first
    assert again.outcomes[1] == again.outcomes[2]  # repeated inside one batch: once
    assert again.badges == (Badge(D, "bob", 2),)
    page = await store.read_chat(D, "bob", "alice", older=None, count=50, rows=True)
    assert [m.text for m in page.messages] == ["hi", "hi"]


async def test_a_side_named_twice_gets_one_row(store: MessageStore) -> None:
    batch = await store.write_posts([post(1, sides=("alice", "bob", "bob", "alice"))])
    assert batch.badges == (Badge(D, "bob", 1),)
    assert [c.unread for c in await store.chats(D, "bob", unread_only=False)] == [1]
    for user, peer in (("alice", "bob"), ("bob", "alice")):
        page = await store.read_chat(D, user, peer, older=None, count=50, rows=True)
        assert [m.seq for m in page.messages] == [1]


async def test_a_missing_side_is_written_when_a_resend_names_it(store: MessageStore) -> None:
    (first,) = (await store.write_posts([post(1, sides=("alice",))])).outcomes
    assert (await store.chats(D, "bob", unread_only=False)) == []
    (again,) = (await store.write_posts([post(1)])).outcomes
    assert again == first
    assert [c.unread for c in await store.chats(D, "bob", unread_only=False)] == [1]


async def test_unread_read_upto_and_the_peers_read_marks(store: MessageStore) -> None:
    await store.write_posts([post(1), post(2), post(3)])
    assert await store.unread_total(D, "bob") == 3
    (chat,) = await store.chats(D, "bob", unread_only=True)
    assert (chat.peer, chat.peer_dn, chat.unread, chat.last_time) == ("alice", "Alice", 3, 1003)
    hits = await store.search(D, "bob", "hi", 50)
    middle = hits[1]
    mark = await store.set_read(D, "bob", middle.id)
    assert mark is not None and mark.unread_changed and mark.message.seq == 2
    assert await store.unread_total(D, "bob") == 1
    own = await store.read_chat(D, "alice", "bob", older=None, count=50, rows=True)
    assert [(m.seq, m.read) for m in own.messages] == [(3, False), (2, True), (1, True)]
    page = await store.read_chat(D, "bob", "alice", older=None, count=1, rows=False)
    assert page.messages == () and page.had_unread and not page.more
    assert await store.unread_total(D, "bob") == 0
    assert await store.set_read(D, "alice", middle.id) is None  # bob's row, not alice's


async def test_delete_is_per_side_and_final(store: MessageStore) -> None:
    (own_id,) = (await store.write_posts([post(1)])).outcomes
    assert isinstance(own_id, int)
    removal = await store.delete(D, "alice", own_id)
    assert removal is not None and not removal.was_unread
    assert await store.delete(D, "alice", own_id) is None
    assert await store.delete(D, "bob", own_id) is None  # never another user's row
    assert (await store.write_posts([post(1)])).outcomes == (own_id,)
    empty = await store.read_chat(D, "alice", "bob", older=None, count=50, rows=True)
    assert empty.messages == ()
    assert await store.unread_total(D, "bob") == 1
    (bob_copy,) = await store.search(D, "bob", "", 5)
    removal = await store.delete(D, "bob", bob_copy.id)
    assert removal is not None and removal.was_unread
    assert await store.unread_total(D, "bob") == 0


async def test_groups_and_group_posts(store: MessageStore) -> None:
    group = await store.create_group(D, "Team", "alice")
    group = await store.put_member(D, group.id, "bob", admin=False) or group
    assert [(m.sip, m.admin) for m in group.members] == [("alice", True), ("bob", False)]
    group_post = replace(BASE, topic=group.sip, peer="", peer_dn="", grp=True, sides=())
    missing = replace(group_post, topic="group-999999")
    batch = await store.write_posts([group_post, missing])
    assert isinstance(batch.outcomes[0], int) and isinstance(batch.outcomes[1], NotFound)
    assert batch.badges == (Badge(D, "bob", 1),)
    (chat,) = await store.chats(D, "bob", unread_only=True)
    assert (chat.peer, chat.peer_dn, chat.grp) == (group.sip, "Team", True)
    renamed = await store.rename_group(D, group.id, "A-Team")
    assert renamed is not None and renamed.dn == "A-Team"
    assert (await store.chats(D, "bob", unread_only=False))[0].peer_dn == "A-Team"
    assert [g.id for g in await store.groups_of(D, "bob")] == [group.id]
    left = await store.remove_member(D, group.id, "bob")
    assert left is not None and [m.sip for m in left.members] == ["alice"]
    assert await store.groups_of(D, "bob") == []
    assert await store.group("other.org", group.id) is None
    assert [g.id for g in await store.all_groups()] == [group.id]


async def test_a_big_batch_commits_whole(store: MessageStore) -> None:
    posts = [post(seq, call_id=f"call-{seq % 7}") for seq in range(1, 1201)]
    batch = await store.write_posts(posts)
    assert len(set(batch.outcomes)) == 1200
    assert batch.badges == (Badge(D, "bob", 1200),)
    again = await store.write_posts(posts)
    assert again.outcomes == batch.outcomes and again.badges == ()


async def test_everything_survives_closing_and_reopening(database_url: str) -> None:
    store = await MessageStore.open(database_url)
    try:
        (first,) = (await store.write_posts([post(1)])).outcomes
        group = await store.create_group(D, "Kept", "bob")
    finally:
        await store.close()
    store = await MessageStore.open(database_url)
    try:
        assert (await store.write_posts([post(1)])).outcomes == (first,)
        assert await store.unread_total(D, "bob") == 1
        assert [g.dn for g in await store.groups_of(D, "bob")] == ["Kept"]
        (second,) = (await store.write_posts([post(2)])).outcomes
        assert isinstance(second, int) and isinstance(first, int) and second > first
        assert group.id == (await store.groups_of(D, "bob"))[0].id
    finally:
        await store.close()


async def test_kept_unread_counts_always_match_the_rows(store: MessageStore) -> None:
    """The per-chat ``unread`` counter against its definition, recounted from the rows
    after every step of a long random mix of posts, reads, partial reads and deletes."""
    rng = random.Random(3)
    read_upto = {"alice": 0, "bob": 0}
    seq = 0

    async def live_rows(user: str) -> list[tuple[int, str]]:
        return [(m.id, m.author) for m in await store.search(D, user, "", 200)]

    for _ in range(150):
        user = rng.choice(["alice", "bob"])
        step = rng.choice(["post", "post", "post", "set_read", "read_chat", "delete"])
        rows = await live_rows(user)
        if step == "post":
            seq += 1
            await store.write_posts([post(seq) if user == "alice" else reply(seq)])
        elif step == "read_chat":
            await store.read_chat(
                D,
                user,
                "bob" if user == "alice" else "alice",
                older=None,
                count=5,
                rows=rng.random() < 0.5,
            )
            read_upto[user] = max([read_upto[user], *(row_id for row_id, _ in rows)])
        elif rows:
            row_id, _ = rng.choice(rows)
            if step == "set_read":
                assert await store.set_read(D, user, row_id) is not None
                read_upto[user] = max(read_upto[user], row_id)
            else:
                assert await store.delete(D, user, row_id) is not None
        for who in ("alice", "bob"):
            expected = sum(
                1
                for row_id, author in await live_rows(who)
                if author != who and row_id > read_upto[who]
            )
            assert await store.unread_total(D, who) == expected, (step, who)
            chats = await store.chats(D, who, unread_only=False)
            assert sum(chat.unread for chat in chats) == expected


async def test_two_deletes_of_one_unread_row_at_once_count_once(store: MessageStore) -> None:
    """Two devices delete the same message at the same moment (on PostgreSQL the two
    transactions really overlap): one succeeds, the unread count drops by one only."""
    await store.write_posts([post(1), post(2)])
    first, _ = await store.search(D, "bob", "", 5)
    removals = await asyncio.gather(*(store.delete(D, "bob", first.id) for _ in range(2)))
    assert sum(removal is not None for removal in removals) == 1
    assert await store.unread_total(D, "bob") == 1


async def test_a_search_the_database_cannot_narrow_reads_a_bounded_history(
    store: MessageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "SEARCH_SCAN_MAX", 3)
    await store.write_posts([post(seq, f"café {seq}") for seq in range(1, 11)])
    folded = await store.search(D, "bob", "CAFÉ", 50)  # non-ASCII: matched in Python
    assert [hit.seq for hit in folded] == [10, 9, 8]  # the newest 3 rows only
    ascii_only = await store.search(D, "bob", "CAF", 50)  # narrowed by the database
    assert len(ascii_only) == 10
