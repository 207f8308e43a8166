"""The notes replicas of the service leave each other in PostgreSQL (docs/protocol.md
12.41): each statement of ``messages_service.replicas``, on its own asyncpg connections.

Theory of operation. A replica writes what it tells its hubs (``Badge``, ``Seen``,
``GroupInd``, ``ChatDeleted``: a JSON text each) as rows of ``replica_notes`` and, in the
same transaction, sends ``NOTIFY`` on ``CHANNEL`` with a payload of a few bytes (its run's
name and the ids written), so a note of any size travels. Every replica ``LISTEN``s and,
woken, reads the rows after the last id it has seen.

Reading by "after the last id" is only sound if ids become visible in the order they are
numbered. An identity column alone does not give that (two transactions take 10 and 11;
11 commits first, a reader moves past 10 before it commits). So every writer takes one
transaction-scoped advisory lock before it numbers its rows: PostgreSQL makes a
transaction visible before it releases its locks, so the next writer's ids are all
larger and become visible later. Gaps in the numbers (a rolled-back write) are harmless.

Notes are kept ``keep`` seconds (by the database's clock) and then pruned; the highest id
pruned goes to ``replica_notes_pruned``. ``read_after`` returns it together with the rows,
in one statement (one snapshot), so a reader that was away longer than ``keep`` knows
exactly whether it missed something.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from tortoise.backends.base.config_generator import expand_db_url

__all__ = [
    "CHANNEL",
    "FAILURES",
    "Note",
    "Notes",
    "Unwritable",
    "append",
    "connect",
    "newest",
    "prune",
    "read_after",
]

FAILURES = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
"""What a note connection's statements raise when the database or the link fails."""
Unwritable = asyncpg.DataError
"""A note the database refuses whatever the moment: writing it again cannot help."""

CHANNEL = "switchboard_replica_notes"
_LOCK = 0x5377_6E74  # one constant for every replica's writes (migrations use another)
_CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Note:
    id: int
    origin: str
    body: str


@dataclass(frozen=True, slots=True)
class Notes:
    """What ``read_after`` found: the rows after the id asked for, oldest first, and the
    highest id pruned so far (a reader whose last id is below it missed notes)."""

    notes: tuple[Note, ...]
    pruned: int


async def connect(url: str, name: str) -> Any:
    """A connection of its own to the database at ``url`` (the service's setting, which
    may carry Tortoise's pool options: only what asyncpg knows is passed on), named
    ``application_name`` so that an operator sees which replica holds it."""
    credentials = dict(expand_db_url(url)["credentials"])
    options: dict[str, Any] = {
        key: credentials[key]
        for key in ("host", "port", "user", "password", "database", "ssl")
        if credentials.get(key) is not None
    }
    return await asyncpg.connect(
        **options,
        timeout=_CONNECT_TIMEOUT,
        server_settings={"application_name": name[:63]},
    )


async def append(connection: Any, origin: str, bodies: list[str]) -> tuple[int, int]:
    """Write ``bodies`` (JSON texts, in order) as notes of ``origin`` and notify every
    listener; returns the first and last id given."""
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
        rows = await connection.fetch(
            "INSERT INTO replica_notes (origin, body)"
            " SELECT $1, body FROM unnest($2::text[]) WITH ORDINALITY AS t (body, n)"
            " ORDER BY n RETURNING id",
            origin,
            bodies,
        )
        ids = sorted(int(row["id"]) for row in rows)
        first, last = ids[0], ids[-1]
        await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, f"{origin} {first} {last}")
    return first, last


async def read_after(connection: Any, last: int, limit: int) -> Notes:
    """Up to ``limit`` notes with ids above ``last``, and the pruned mark, seen at once."""
    rows = await connection.fetch(
        "SELECT p.upto, n.id, n.origin, n.body FROM replica_notes_pruned p"
        " LEFT JOIN LATERAL (SELECT id, origin, body FROM replica_notes WHERE id > $1"
        " ORDER BY id LIMIT $2) n ON TRUE ORDER BY n.id",
        last,
        limit,
    )
    pruned = int(rows[0]["upto"]) if rows else 0
    notes = tuple(
        Note(int(row["id"]), str(row["origin"]), str(row["body"]))
        for row in rows
        if row["id"] is not None
    )
    return Notes(notes, pruned)


async def newest(connection: Any) -> int:
    """The highest id written so far (0 for none): where a replica starting reads from."""
    value = await connection.fetchval(
        "SELECT GREATEST(COALESCE((SELECT MAX(id) FROM replica_notes), 0),"
        " (SELECT MAX(upto) FROM replica_notes_pruned))"
    )
    return int(value or 0)


async def prune(connection: Any, keep: float) -> int:
    """Drop the notes older than ``keep`` seconds and raise the pruned mark past them;
    returns how many went. Any replica may run it, at any time."""
    value = await connection.fetchval(
        "WITH gone AS (DELETE FROM replica_notes"
        " WHERE created < now() - make_interval(secs => $1) RETURNING id),"
        " mark AS (UPDATE replica_notes_pruned"
        " SET upto = GREATEST(upto, (SELECT MAX(id) FROM gone))"
        " WHERE EXISTS (SELECT 1 FROM gone))"
        " SELECT COUNT(*) FROM gone",
        keep,
    )
    return int(value or 0)
