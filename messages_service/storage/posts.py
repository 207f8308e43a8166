"""Writing a batch of Posts in one transaction: the storage half of the group commit.

Theory of operation (PROTOCOL §7.3, §12.10). Each Post becomes one row per side (one-to-
one) or per member (group), keyed ``(domain, topic, callId, seq)``. One query finds which
keys are stored already; those rows, and a key repeated inside the batch, are answered
with the stored id and written nowhere. The rest go in with one bulk insert; a second
query fetches their ids; one bulk upsert moves each touched chat's ``last_id``; one
aggregate gives the new unread totals of the users who received something. So a batch
costs a handful of round trips however many Posts it holds, and the whole of it commits
or none of it does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q

from messages_service.errors import MessagesServiceError, NotFound

from .database import Database
from .models import Chat, Group, Member, Message
from .rows import Badge, NewPost, PostBatch, group_id_of, group_sip
from .unread import unread_totals

__all__ = ["write_posts"]

_Key = tuple[str, str, str, int]
"""(domain, topic, call_id, seq): what makes a row unique."""

_MAX_PARAMS = 900  # per lookup query; far below every driver's limit


@dataclass(frozen=True, slots=True)
class _Row:
    """A row a Post asks for: in ``topic``'s copy, under ``peer``."""

    post: NewPost
    topic: str
    peer: str
    peer_dn: str

    @property
    def key(self) -> _Key:
        return (self.post.domain, self.topic, self.post.call_id, self.post.seq)


@dataclass(frozen=True, slots=True)
class _Group:
    sip: str
    dn: str
    members: tuple[str, ...]


async def write_posts(db: Database, posts: Sequence[NewPost]) -> PostBatch:
    """Store ``posts`` in one transaction; runs inside ``db.run``."""
    async with db.transaction() as tx:
        groups = await _groups(tx, posts)
        plans = [_plan(post, groups) for post in posts]
        wanted = [row for plan in plans if isinstance(plan, list) for row in plan]
        ids = await _stored_ids(tx, wanted)
        fresh = _first_of_each_key(row for row in wanted if row.key not in ids)
        badges: tuple[Badge, ...] = ()
        if fresh:
            await Message.bulk_create([_message(row) for row in fresh], using_db=tx)
            ids.update(await _stored_ids(tx, fresh))
            await _touch_chats(tx, fresh, ids)
            badges = await _badges(db, tx, fresh)
    outcomes = tuple(_answer(plan, ids) for plan in plans)
    return PostBatch(outcomes, badges)


def _plan(post: NewPost, groups: dict[tuple[str, int], _Group]) -> list[_Row] | NotFound:
    if post.grp:
        group_id = group_id_of(post.topic)
        group = groups.get((post.domain, group_id)) if group_id is not None else None
        if group is None or not group.members:
            return NotFound(f"no group {post.topic[:80]!r} with members")
        return [_Row(post, member, group.sip, group.dn) for member in group.members]
    rows: dict[str, _Row] = {}
    for side in post.sides:  # PROTOCOL §7.2: each side's copy names the other as peer
        if side == post.author:
            rows[side] = _Row(post, post.author, post.peer, post.peer_dn)
        else:
            rows[side] = _Row(post, post.peer, post.author, post.author_dn)
    return list(rows.values())


def _answer(plan: list[_Row] | NotFound, ids: dict[_Key, int]) -> int | MessagesServiceError:
    """The author's row id, else the first row's (PROTOCOL §12.10 ``PostResult``)."""
    if isinstance(plan, NotFound):
        return plan
    own = next((row for row in plan if row.topic == row.post.author), plan[0])
    return ids[own.key]


def _first_of_each_key(rows: Iterable[_Row]) -> list[_Row]:
    """A key repeated within the batch (a resend close behind the original) is written
    once, by its first Post."""
    first: dict[_Key, _Row] = {}
    for row in rows:
        first.setdefault(row.key, row)
    return list(first.values())


def _message(row: _Row) -> Message:
    post = row.post
    return Message(
        domain=post.domain,
        topic=row.topic,
        peer=row.peer,
        grp=post.grp,
        author=post.author,
        author_dn=post.author_dn,
        text=post.text,
        attach=post.attach,
        call_id=post.call_id,
        seq=post.seq,
        client_id=post.client_id,
        time_ms=post.time_ms,
        deleted=False,
    )


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
    """Ids of the rows already stored under the keys of ``rows`` (and of their other
    sides, which share domain, callId and seq)."""
    seqs: dict[tuple[str, str], set[int]] = defaultdict(set)
    for row in rows:
        seqs[(row.post.domain, row.post.call_id)].add(row.post.seq)
    found: dict[_Key, int] = {}
    for query in _chunked(
        (Q(domain=domain, call_id=call_id, seq__in=sorted(numbers)), 2 + len(numbers))
        for (domain, call_id), numbers in seqs.items()
    ):
        for row_id, domain, topic, call_id, seq in (
            await Message.filter(query)
            .using_db(tx)
            .values_list("id", "domain", "topic", "call_id", "seq")
        ):
            found[(domain, topic, call_id, seq)] = row_id
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


async def _touch_chats(tx: BaseDBAsyncClient, fresh: list[_Row], ids: dict[_Key, int]) -> None:
    """Create or move forward the chat of every new row: the new rows are the newest of
    their chats, so their ids and times become ``last_id``/``last_time``."""
    newest: dict[tuple[str, str, str], _Row] = {}
    for row in fresh:  # later rows of a chat replace earlier ones: they have higher ids
        newest[(row.post.domain, row.topic, row.peer)] = row
    chats = [  # in key order, so concurrent writers (PostgreSQL) lock rows in one order
        Chat(
            domain=row.post.domain,
            topic=row.topic,
            peer=row.peer,
            peer_dn=row.peer_dn,
            grp=row.post.grp,
            last_id=ids[row.key],
            last_time=row.post.time_ms,
        )
        for _, row in sorted(newest.items())
    ]
    await Chat.bulk_create(
        chats,
        on_conflict=("domain", "topic", "peer"),
        update_fields=("peer_dn", "grp", "last_id", "last_time"),
        using_db=tx,
    )


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
