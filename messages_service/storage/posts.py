"""Writing a batch of Posts in one transaction: the storage half of the group commit.

Theory of operation (PROTOCOL §7.3, §12.10). Each Post becomes one row per side (one-to-
one) or per member (group), keyed ``(domain, topic, callId, seq)``; a key repeated inside
the batch is written once, by its first Post. One multi-row ``INSERT … ON CONFLICT DO
NOTHING RETURNING`` writes the rows whose key is new and gives their ids; keys already
stored (resends) are looked up and answered with the stored id, written nowhere. One
upsert moves each touched chat's ``last_id`` and adds to its ``unread``; one sum over the
chats of the users who received something gives their new badges. So a batch costs a
handful of round trips however many Posts it holds, and the whole of it commits or none
of it does.

Before any row, each Post with a client id claims its key per sender (``post_keys``): a
Post whose id another Post already holds is a client's resend on a new call, and is
answered with that original (a ``Duplicate``), writing nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q

from messages_service.errors import MessagesServiceError, NotFound

from .database import Database
from .models import Group, Member, Message
from .post_keys import claim_keys
from .rows import (
    Badge,
    Duplicate,
    FileGrant,
    NewPost,
    Original,
    PostBatch,
    group_id_of,
    group_sip,
)
from .unread import unread_totals

__all__ = ["write_posts"]

_Key = tuple[str, str, str, int]
"""(domain, topic, call_id, seq): what makes a row unique."""

_MAX_PARAMS = 900  # per lookup query; far below every driver's limit


class _Row:
    """A row a Post asks for: in ``topic``'s copy, under ``peer``. Its ``key`` is made
    once: a batch looks each row up by it a dozen times. Never changed once made."""

    __slots__ = ("key", "peer", "peer_dn", "post", "topic")

    def __init__(self, post: NewPost, topic: str, peer: str, peer_dn: str) -> None:
        self.post = post
        self.topic = topic
        self.peer = peer
        self.peer_dn = peer_dn
        self.key: _Key = (post.domain, topic, post.call_id, post.seq)


_Plan = list[_Row] | NotFound | Original
"""What a Post asks for: its rows, the error it alone gets, or (a duplicate of a stored
client id) the Post it repeats."""


@dataclass(frozen=True, slots=True)
class _Group:
    sip: str
    dn: str
    members: tuple[str, ...]


async def write_posts(
    db: Database, posts: Sequence[NewPost], *, now_ms: int, key_ttl_ms: int
) -> PostBatch:
    """Store ``posts`` in one transaction; runs inside ``db.run``. A Post that repeats a
    client id stored under another Post (``post_keys``) writes nothing."""
    async with db.transaction() as tx:
        groups = await _groups(tx, posts)
        plans: list[_Plan] = [_plan(post, groups) for post in posts]
        keyed = [(n, post) for n, post in enumerate(posts) if _rows(plans[n])]
        duplicates = await claim_keys(db, tx, keyed, now_ms=now_ms, ttl_ms=key_ttl_ms)
        for index, original in duplicates.items():
            plans[index] = original
        wanted = _first_of_each_key(row for plan in plans for row in _rows(plan))
        ids = await _insert(db, tx, wanted)
        fresh = [row for row in wanted if row.key in ids]
        already = [row for row in wanted if row.key not in ids]
        gone: set[_Key] = set()
        if already:  # resends: answered with the rows stored before
            ids.update(await _stored_ids(tx, already))
            if any(row.post.attach for row in already):
                gone = await _deleted_keys(tx, [row for row in already if row.post.attach])
        badges: tuple[Badge, ...] = ()
        if fresh:
            await _touch_chats(db, tx, fresh, ids)
            badges = await _badges(db, tx, fresh)
        originals = await _original_ids(tx, posts, duplicates)
    outcomes = tuple(_answer(plan, ids, originals.get(n)) for n, plan in enumerate(plans))
    return PostBatch(outcomes, badges, _file_grants([r for r in wanted if r.key not in gone]))


def _file_grants(rows: list[_Row]) -> tuple[FileGrant, ...]:
    """For each Post with attachments, the users who have a row of it: those just
    written and, for a resent Post, those written before (granting is idempotent, and a
    resend may follow a crash that came before the files were granted)."""
    owners: dict[tuple[str, str, str, int], tuple[NewPost, list[str]]] = {}
    for row in rows:
        post = row.post
        if post.attach:
            key = (post.domain, post.topic, post.call_id, post.seq)
            owners.setdefault(key, (post, []))[1].append(row.topic)
    return tuple(FileGrant(post, tuple(topics)) for post, topics in owners.values())


_INSERT = """
    INSERT INTO messages (domain, topic, peer, grp, author, author_dn, text, attach,
                          call_id, seq, client_id, time_ms, deleted, writer)
    VALUES {rows}
    ON CONFLICT (domain, topic, call_id, seq) DO NOTHING
    RETURNING id, domain, topic, call_id, seq"""
_MESSAGE_COLUMNS = 14
_INSERT_PARAMS = 30000  # per statement; SQLite (3.32+) allows 32766, PostgreSQL 32767
_ROWS_PER_INSERT = _INSERT_PARAMS // _MESSAGE_COLUMNS


async def _insert(db: Database, tx: BaseDBAsyncClient, rows: list[_Row]) -> dict[_Key, int]:
    """Insert the rows whose key is not stored yet; the ids of those it inserted.

    Plain SQL rather than ORM objects: this is the hot path of storage, and building a
    model instance per row cost more than the database's own work."""
    ids: dict[_Key, int] = {}
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        chunk = rows[start : start + _ROWS_PER_INSERT]
        marks = ", ".join(["(" + ", ".join("?" * _MESSAGE_COLUMNS) + ")"] * len(chunk))
        params: list[object] = []
        for row in chunk:
            post = row.post
            params += (
                post.domain,
                row.topic,
                row.peer,
                post.grp,
                post.author,
                post.author_dn,
                post.text,
                post.attach,
                post.call_id,
                post.seq,
                post.client_id,
                post.time_ms,
                False,
                post.writer or None,
            )
        found = await db.returning(tx, _INSERT.format(rows=marks), params)
        for row_id, domain, topic, call_id, seq in found:  # _INSERT's RETURNING columns
            ids[(domain, topic, call_id, int(seq))] = int(row_id)
    return ids


def _plan(post: NewPost, groups: dict[tuple[str, int], _Group]) -> list[_Row] | NotFound:
    if post.grp:
        group_id = group_id_of(post.topic)
        group = groups.get((post.domain, group_id)) if group_id is not None else None
        if group is None or not group.members:
            return NotFound(f"no group {post.topic[:80]!r} with members")
        return [_Row(post, member, group.sip, group.dn) for member in group.members]
    author, peer = post.author, post.peer
    # PROTOCOL §7.2: each side's copy names the other as peer. A side named twice asks
    # for one row: the second has the first's key, and only a key's first row is written.
    return [
        _Row(post, author, peer, post.peer_dn)
        if side == author
        else _Row(post, peer, author, post.author_dn)
        for side in post.sides
    ]


def _rows(plan: _Plan) -> list[_Row]:
    return plan if isinstance(plan, list) else []


def _answer(
    plan: _Plan, ids: dict[_Key, int], duplicate: Duplicate | None
) -> int | Duplicate | MessagesServiceError:
    """The author's row id, else the first row's (PROTOCOL §12.10 ``PostResult``)."""
    if isinstance(plan, NotFound):
        return plan
    if isinstance(plan, Original):
        assert duplicate is not None
        return duplicate
    for row in plan:
        if row.topic == row.post.author:
            return ids[row.key]
    return ids[plan[0].key]


async def _original_ids(
    tx: BaseDBAsyncClient, posts: Sequence[NewPost], duplicates: dict[int, Original]
) -> dict[int, Duplicate]:
    """Each duplicate with the row id of its original: the author's copy where there is
    one, else the peer's, else 0. Duplicates are rare (a client's resend after a crash),
    so one small query each is fine."""
    answers: dict[int, Duplicate] = {}
    for index, original in duplicates.items():
        post = posts[index]
        topics = [post.author] if post.grp else [post.author, post.peer]
        found = dict(
            await Message.filter(
                domain=post.domain,
                topic__in=topics,
                call_id=original.call_id,
                seq=original.seq,
            )
            .using_db(tx)
            .values_list("topic", "id")
        )
        row_id = next((found[topic] for topic in topics if topic in found), 0)
        answers[index] = Duplicate(int(row_id), original)
    return answers


def _first_of_each_key(rows: Iterable[_Row]) -> list[_Row]:
    """A key repeated within the batch (a resend close behind the original) is written
    once, by its first Post."""
    first: dict[_Key, _Row] = {}
    for row in rows:
        first.setdefault(row.key, row)
    return list(first.values())


async def _groups(tx: BaseDBAsyncClient, posts: Iterable[NewPost]) -> dict[tuple[str, int], _Group]:
    """The groups the batch posts to, with their members as of this transaction."""
    wanted = {
        (post.domain, group_id)
        for post in posts
        if post.grp and (group_id := group_id_of(post.topic)) is not None
    }
    if not wanted:
        return {}
    ids = {group_id for _, group_id in wanted}
    found = await Group.filter(id__in=ids).using_db(tx).values_list("id", "domain", "dn")
    members: dict[int, list[str]] = defaultdict(list)
    for group_id, sip in (
        await Member.filter(group_id__in=ids)
        .using_db(tx)
        .order_by("id")
        .values_list("group_id", "sip")
    ):
        members[group_id].append(sip)
    return {
        (domain, group_id): _Group(group_sip(group_id), dn, tuple(members[group_id]))
        for group_id, domain, dn in found
        if (domain, group_id) in wanted
    }


async def _stored_ids(tx: BaseDBAsyncClient, rows: Iterable[_Row]) -> dict[_Key, int]:
    """Ids of the rows already stored under the keys of ``rows``.

    Asked per (domain, topic, callId) with the seqs as a list, so that each condition
    is a range of the unique index ``messages_post``: its cost does not grow with the
    table."""
    seqs: dict[tuple[str, str, str], set[int]] = defaultdict(set)
    for row in rows:
        seqs[(row.post.domain, row.topic, row.post.call_id)].add(row.post.seq)
    found: dict[_Key, int] = {}
    for query in _chunked(
        (Q(domain=domain, topic=topic, call_id=call_id, seq__in=sorted(numbers)), 3 + len(numbers))
        for (domain, topic, call_id), numbers in seqs.items()
    ):
        for row_id, domain, topic, call_id, seq in (
            await Message.filter(query)
            .using_db(tx)
            .values_list("id", "domain", "topic", "call_id", "seq")
        ):
            found[(domain, topic, call_id, seq)] = row_id
    return found


async def _deleted_keys(tx: BaseDBAsyncClient, rows: list[_Row]) -> set[_Key]:
    """The keys of ``rows`` whose stored row its owner has deleted (a tombstone): a
    resend must not give them their files back."""
    found: set[_Key] = set()
    for row in rows:
        post = row.post
        if await (
            Message.filter(
                domain=post.domain,
                topic=row.topic,
                call_id=post.call_id,
                seq=post.seq,
                deleted=True,
            )
            .using_db(tx)
            .exists()
        ):
            found.add(row.key)
    return found


def _chunked(conditions: Iterable[tuple[Q, int]]) -> Iterable[Q]:
    """OR the conditions together, a few hundred query parameters at a time."""
    batch: list[Q] = []
    params = 0
    for condition, cost in conditions:
        if batch and params + cost > _MAX_PARAMS:
            yield Q(*batch, join_type="OR")
            batch, params = [], 0
        batch.append(condition)
        params += cost
    if batch:
        yield Q(*batch, join_type="OR")


_UPSERT_CHATS = """
    INSERT INTO chats (domain, topic, peer, peer_dn, grp, last_id, last_time, unread)
    VALUES {rows}
    ON CONFLICT (domain, topic, peer) DO UPDATE SET
        peer_dn = excluded.peer_dn, grp = excluded.grp,
        last_id = CASE WHEN excluded.last_id > chats.last_id
                       THEN excluded.last_id ELSE chats.last_id END,
        last_time = CASE WHEN excluded.last_id > chats.last_id
                         THEN excluded.last_time ELSE chats.last_time END,
        unread = chats.unread + CASE WHEN excluded.last_id > chats.read_upto
                                     THEN excluded.unread ELSE 0 END"""
_CHAT_COLUMNS = 8
_CHATS_PER_UPSERT = _MAX_PARAMS // _CHAT_COLUMNS


async def _touch_chats(
    db: Database, tx: BaseDBAsyncClient, fresh: list[_Row], ids: dict[_Key, int]
) -> None:
    """Create or move forward the chat of every new row: the newest new row of a chat
    gives its ``last_id``/``last_time`` (unless another writer already stored a newer
    one), and rows from someone else add to the chat's ``unread`` (see ``unread``)."""
    newest: dict[tuple[str, str, str], _Row] = {}
    received: dict[tuple[str, str, str], int] = defaultdict(int)
    for row in fresh:
        chat = (row.post.domain, row.topic, row.peer)
        if chat not in newest or ids[row.key] > ids[newest[chat].key]:
            newest[chat] = row
        received[chat] += row.topic != row.post.author
    # In key order, so concurrent writers (PostgreSQL) lock chat rows in one order.
    values = [
        (*chat, row.peer_dn, row.post.grp, ids[row.key], row.post.time_ms, received[chat])
        for chat, row in sorted(newest.items())
    ]
    for start in range(0, len(values), _CHATS_PER_UPSERT):
        chunk = values[start : start + _CHATS_PER_UPSERT]
        marks = ", ".join(["(" + ", ".join("?" * _CHAT_COLUMNS) + ")"] * len(chunk))
        params = [value for chat in chunk for value in chat]
        await tx.execute_query(db.sql(_UPSERT_CHATS.format(rows=marks)), params)


async def _badges(db: Database, tx: BaseDBAsyncClient, fresh: list[_Row]) -> tuple[Badge, ...]:
    """One Badge per user who received a new row (PROTOCOL §12.10)."""
    receivers: dict[str, dict[str, None]] = defaultdict(dict)  # ordered sets
    for row in fresh:
        if row.topic != row.post.author:
            receivers[row.post.domain][row.topic] = None
    badges: list[Badge] = []
    for domain, users in receivers.items():
        totals = await unread_totals(db, tx, domain, list(users))
        badges += (Badge(domain, user, totals[user]) for user in users)
    return tuple(badges)
