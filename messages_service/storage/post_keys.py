"""Client message ids as idempotency keys per sender (PROTOCOL §4.6 revised, docs 12.21).

Theory of operation. ``(callId, seq)`` makes the hub's own resends harmless, but a client
that resends a message whose acknowledgement it lost does so on a *new* call, with a new
``(callId, seq)``: only its own id ties the two together. So every Post that carries an
id claims the key ``(domain, author, id)`` in ``post_keys``, in the same transaction as
its rows. A Post whose key is already held by another Post is a duplicate: it writes no
row and is answered with the Post that holds the key (its ``callId``, ``seq`` and time).
The same Post again (same ``callId`` and ``seq``: the hub's journal resending it) is not a
duplicate; the message rows' own uniqueness answers it.

Keys live ``messages.idempotency_ttl`` (24 h by default): an older key is taken over by
the next Post that uses it, and ``prune`` deletes them in the background.
"""

from __future__ import annotations

from collections.abc import Sequence

from tortoise.backends.base.client import BaseDBAsyncClient

from .database import Database
from .rows import NewPost, Original

__all__ = ["claim_keys", "prune_keys"]

_Key = tuple[str, str, str]
"""(domain, author, client id)."""

_COLUMNS = 7
_CLAIMS_PER_STATEMENT = (30000 - 1) // _COLUMNS
"""Keys one INSERT claims: a whole batch at once (SQLite 3.32+ allows 32766 parameters,
PostgreSQL 32767), since every statement is a round trip on the Post path."""
_LOOKUPS_PER_STATEMENT = 120  # keys per lookup of holders (resends only: rare)

_CLAIM = """
    INSERT INTO post_keys (domain, author, client_id, call_id, seq, time_ms, stored_ms)
    VALUES {rows}
    ON CONFLICT (domain, author, client_id) DO UPDATE SET
        call_id = excluded.call_id, seq = excluded.seq,
        time_ms = excluded.time_ms, stored_ms = excluded.stored_ms
    WHERE post_keys.stored_ms < ?
    RETURNING domain, author, client_id"""

_HOLDERS = """
    SELECT domain, author, client_id, call_id, seq, time_ms FROM post_keys
    WHERE {conditions}"""


def _key(post: NewPost) -> _Key:
    """Whose id it is: the writer's (a support agent's, writing as its queue), else the
    author's."""
    assert post.client_id is not None
    return (post.domain, post.writer or post.author, post.client_id)


def _same_post(post: NewPost, original: Original) -> bool:
    return post.call_id == original.call_id and post.seq == original.seq


async def claim_keys(
    db: Database,
    tx: BaseDBAsyncClient,
    posts: Sequence[tuple[int, NewPost]],
    *,
    now_ms: int,
    ttl_ms: int,
) -> dict[int, Original]:
    """Claim the key of each ``(index, post)`` that carries a client id; the duplicates,
    by index, each with the Post that holds its key. Runs inside the batch's transaction,
    so a key is held exactly when its Post's rows are written."""
    first: dict[_Key, NewPost] = {}
    claimed: list[tuple[int, NewPost, _Key]] = []
    for index, post in posts:
        if post.client_id is not None:
            key = _key(post)
            first.setdefault(key, post)  # the same id twice in a batch: the first
            claimed.append((index, post, key))
    if not first:
        return {}
    # In key order, so that two writers (PostgreSQL replicas) lock keys in one order.
    ordered = [(key, first[key]) for key in sorted(first)]
    taken = await _insert(db, tx, ordered, now_ms, now_ms - ttl_ms)
    held = await _holders(db, tx, [key for key in first if key not in taken])
    duplicates: dict[int, Original] = {}
    for index, post, key in claimed:
        # The key's holder: the Post stored before, else this batch's first with that id.
        holder = held.get(key)
        if holder is None:
            earliest = first[key]
            if earliest is post:  # the usual case: a new id, claimed by this very Post
                continue
            holder = Original(earliest.call_id, earliest.seq, earliest.time_ms)
        if not _same_post(post, holder):
            duplicates[index] = holder
    return duplicates


async def _insert(
    db: Database,
    tx: BaseDBAsyncClient,
    posts: list[tuple[_Key, NewPost]],
    now_ms: int,
    cutoff_ms: int,
) -> set[_Key]:
    """Insert (or take over, where expired) the key of each ``(key, Post)``; the keys
    it got."""
    taken: set[_Key] = set()
    for start in range(0, len(posts), _CLAIMS_PER_STATEMENT):
        chunk = posts[start : start + _CLAIMS_PER_STATEMENT]
        marks = ", ".join(["(" + ", ".join("?" * _COLUMNS) + ")"] * len(chunk))
        params: list[object] = []
        for key, post in chunk:
            params += (*key, post.call_id, post.seq, post.time_ms, now_ms)
        params.append(cutoff_ms)
        found = await db.returning(tx, _CLAIM.format(rows=marks), params)
        taken.update((domain, author, client_id) for domain, author, client_id in found)
    return taken


async def _holders(db: Database, tx: BaseDBAsyncClient, keys: list[_Key]) -> dict[_Key, Original]:
    """The Post that holds each of ``keys`` (a live key some earlier Post claimed)."""
    held: dict[_Key, Original] = {}
    for start in range(0, len(keys), _LOOKUPS_PER_STATEMENT):
        chunk = keys[start : start + _LOOKUPS_PER_STATEMENT]
        conditions = " OR ".join(["(domain = ? AND author = ? AND client_id = ?)"] * len(chunk))
        params = [value for key in chunk for value in key]
        for row in await tx.execute_query_dict(
            db.sql(_HOLDERS.format(conditions=conditions)), params
        ):
            key = (row["domain"], row["author"], row["client_id"])
            held[key] = Original(str(row["call_id"]), int(row["seq"]), int(row["time_ms"]))
    return held


async def prune_keys(db: Database, tx: BaseDBAsyncClient, cutoff_ms: int) -> int:
    """Delete the keys claimed before ``cutoff_ms``; how many went."""
    count, _ = await tx.execute_query(
        db.sql("DELETE FROM post_keys WHERE stored_ms < ?"), [cutoff_ms]
    )
    return int(count)
