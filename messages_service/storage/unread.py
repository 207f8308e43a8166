"""Unread counts (PROTOCOL §12.10), kept per chat so that they cost nothing to read.

Unread of a chat: its rows written by someone else (``author <> topic``), newer than
the chat's ``read_upto``, not deleted. A user's badge is the sum over their chats.

Each chat keeps that number in ``unread``, changed only inside the transaction that
changes what it counts: the Post writer adds the new rows from others, a read recounts
the rows after the new mark (normally none) while it holds the chat's row, a delete of
an unread row takes one off. Computing it from the rows instead would make every
stored message scan everything its receiver has not read yet, which grows without
bound for someone who never reads.
"""

from __future__ import annotations

from collections.abc import Sequence

from tortoise.backends.base.client import BaseDBAsyncClient

from .database import Database

__all__ = ["mark_read", "unread_totals"]

_MAX_USERS_PER_QUERY = 500

_MARK_READ = """
    UPDATE chats SET read_upto = ?, unread = (
        SELECT COUNT(*) FROM messages m
         WHERE m.domain = chats.domain AND m.topic = chats.topic AND m.peer = chats.peer
           AND m.id > ? AND m.author <> chats.topic AND NOT m.deleted)
     WHERE id = ?"""


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
            "SELECT topic, SUM(unread) AS unread FROM chats"
            f" WHERE domain = ? AND topic IN ({marks}) GROUP BY topic"
        )
        for row in await conn.execute_query_dict(db.sql(sql), [domain, *chunk]):
            totals[row["topic"]] = int(row["unread"] or 0)
    return totals


async def mark_read(db: Database, conn: BaseDBAsyncClient, chat_id: int, upto: int) -> None:
    """Set the chat's ``read_upto`` and recount what is unread after it.

    Run it in a transaction that has locked the chat's row first (``select_for_update``):
    then every writer that stored rows in this chat has committed, the count sees them,
    and writers after us wait and add to the new count."""
    await conn.execute_query(db.sql(_MARK_READ), [upto, upto, chat_id])
