"""Unread counts, the one query the ORM cannot say without a round trip per chat.

Unread of a chat (PROTOCOL §12.10): the rows of ``(domain, topic, peer)`` written by
someone else (``author <> topic``), newer than the chat's ``read_upto``, not deleted.
A user's badge is the sum over their chats. Both are computed, never stored, so no
counter can drift from the rows; the ``messages_chat`` index keeps them cheap.
"""

from __future__ import annotations

from collections.abc import Sequence

from tortoise.backends.base.client import BaseDBAsyncClient

from .database import Database

__all__ = ["chat_unread", "unread_by_peer", "unread_totals"]

_UNREAD_JOIN = """
    FROM chats c
    JOIN messages m
      ON m.domain = c.domain AND m.topic = c.topic AND m.peer = c.peer
     AND m.id > c.read_upto
    WHERE m.author <> c.topic AND NOT m.deleted"""

_MAX_USERS_PER_QUERY = 500


async def unread_totals(
    db: Database, conn: BaseDBAsyncClient, domain: str, users: Sequence[str]
) -> dict[str, int]:
    """Total unread per user of ``domain``; every user asked for is in the answer."""
    totals = dict.fromkeys(users, 0)
    unique = list(totals)
    for start in range(0, len(unique), _MAX_USERS_PER_QUERY):
        chunk = unique[start : start + _MAX_USERS_PER_QUERY]
        marks = ", ".join("?" * len(chunk))
        sql = (
            f"SELECT c.topic AS topic, COUNT(m.id) AS unread {_UNREAD_JOIN}"
            f" AND c.domain = ? AND c.topic IN ({marks}) GROUP BY c.topic"
        )
        for row in await conn.execute_query_dict(db.sql(sql), [domain, *chunk]):
            totals[row["topic"]] = int(row["unread"])
    return totals


async def unread_by_peer(
    db: Database, conn: BaseDBAsyncClient, domain: str, user: str
) -> dict[str, int]:
    """Unread per chat of one user; chats with nothing unread are left out."""
    sql = (
        f"SELECT c.peer AS peer, COUNT(m.id) AS unread {_UNREAD_JOIN}"
        " AND c.domain = ? AND c.topic = ? GROUP BY c.peer"
    )
    rows = await conn.execute_query_dict(db.sql(sql), [domain, user])
    return {row["peer"]: int(row["unread"]) for row in rows}


async def chat_unread(
    db: Database, conn: BaseDBAsyncClient, domain: str, user: str, peer: str
) -> int:
    """Unread of one chat."""
    sql = (
        f"SELECT COUNT(m.id) AS unread {_UNREAD_JOIN}"
        " AND c.domain = ? AND c.topic = ? AND c.peer = ?"
    )
    rows = await conn.execute_query_dict(db.sql(sql), [domain, user, peer])
    return int(rows[0]["unread"]) if rows else 0
