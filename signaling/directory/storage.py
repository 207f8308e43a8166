"""The cluster's directory changes in PostgreSQL (``[cluster] database``), for ``shared``.

Two small tables, which a node creates when they are missing. ``directory_changes`` has
one row per thing the admin API changed: a user, App object or queue of a tenant (its
table as JSON, NULL once deleted), or a tenant added or removed (kind ``tenant``), each
with the version of the change that wrote it last; a tenant's row replaces that
tenant's other rows (what was recorded for it before is moot). ``directory_version``
holds the one counter: every change bumps it in the transaction that writes its row.

That counter's row lock is what serializes nodes changing at once: the second writer
waits until the first has committed, so versions are committed in their order. Hence a
read that takes the counter and the rows in one snapshot has every version up to the
counter among its rows, and whatever is committed later has a higher version.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import asyncpg  # type: ignore[import-untyped]

from config import ConfigError
from tracing.redact import first_cause, shown_url

from .change_set import Change, Kind
from .errors import ChangesUnavailable

__all__ = ["ChangesTable", "Row"]

log = logging.getLogger(__name__)

T = TypeVar("T")

CONNECT_TIMEOUT = 5.0
COMMAND_TIMEOUT = 5.0
"""Seconds a connection or a statement may take before the database counts as failed."""

_CREATION_LOCK = 0x5377_4469
"""A transaction-scoped advisory lock: nodes starting together create the tables once."""

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS directory_version (
        id SMALLINT PRIMARY KEY CHECK (id = 1),
        version BIGINT NOT NULL
    )""",
    "INSERT INTO directory_version (id, version) VALUES (1, 0) ON CONFLICT DO NOTHING",
    """CREATE TABLE IF NOT EXISTS directory_changes (
        domain TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        entry JSONB,
        version BIGINT NOT NULL,
        PRIMARY KEY (domain, kind, name)
    )""",
)
_BUMP = "UPDATE directory_version SET version = version + 1 WHERE id = 1 RETURNING version"
_VERSION = "SELECT version FROM directory_version WHERE id = 1"
_ROWS = "SELECT domain, kind, name, entry::text, version FROM directory_changes ORDER BY version"
_UPSERT = """INSERT INTO directory_changes (domain, kind, name, entry, version)
    VALUES ($1, $2, $3, $4::jsonb, $5)
    ON CONFLICT (domain, kind, name)
    DO UPDATE SET entry = EXCLUDED.entry, version = EXCLUDED.version"""

_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class Row:
    """A change as the database holds it: the last one made to its entry."""

    change: Change
    version: int


class ChangesTable:
    def __init__(self, url: str) -> None:
        self._url = url
        self._pool: Any = None

    async def open(self) -> None:
        """Connect and create the tables if needed. ``ConfigError`` naming
        ``cluster.database`` when the database cannot be used (unreachable, missing,
        refused): a node does not start without it."""
        try:
            self._pool = await asyncpg.create_pool(
                self._url,
                min_size=1,
                max_size=2,
                timeout=CONNECT_TIMEOUT,
                command_timeout=COMMAND_TIMEOUT,
            )
            async with self._pool.acquire() as connection, connection.transaction():
                await connection.execute("SELECT pg_advisory_xact_lock($1)", _CREATION_LOCK)
                for statement in _SCHEMA:
                    await connection.execute(statement)
        except (*_DRIVER_ERRORS, ValueError) as exc:
            await self.close()
            reason = f"cannot open {shown_url(self._url)}: {first_cause(exc)}"
            raise ConfigError("cluster.database", reason) from exc

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await pool.close()
            except _DRIVER_ERRORS:
                pool.terminate()

    async def write(self, change: Change) -> tuple[int, list[Row]]:
        """Record ``change`` under the next version; that version and every row, the new
        one among them (and every version below it)."""

        async def work(connection: Any) -> tuple[int, list[Row]]:
            async with connection.transaction():
                version = int(await connection.fetchval(_BUMP))
                if change.kind == "tenant":
                    sql = "DELETE FROM directory_changes WHERE domain = $1"
                    await connection.execute(sql, change.domain)
                entry = None if change.table is None else json.dumps(change.table)
                await connection.execute(
                    _UPSERT, change.domain, change.kind, change.name, entry, version
                )
                return version, _rows(await connection.fetch(_ROWS))

        return await self._run(work)

    async def read(self) -> tuple[int, list[Row]]:
        """The version and every row, from one snapshot."""

        async def work(connection: Any) -> tuple[int, list[Row]]:
            async with connection.transaction(isolation="repeatable_read", readonly=True):
                version = int(await connection.fetchval(_VERSION))
                return version, _rows(await connection.fetch(_ROWS))

        return await self._run(work)

    async def version(self) -> int:
        async def work(connection: Any) -> int:
            return int(await connection.fetchval(_VERSION))

        return await self._run(work)

    async def _run(self, work: Callable[[Any], Awaitable[T]]) -> T:
        """``work`` on a connection of the pool; ``ChangesUnavailable`` when the
        database fails (the details stay in the log)."""
        if self._pool is None:
            raise ChangesUnavailable("the cluster's database is not open")
        try:
            async with self._pool.acquire() as connection:
                return await work(connection)
        except _DRIVER_ERRORS as exc:
            log.warning("cluster database: %s: %s", type(exc).__name__, exc)
            raise ChangesUnavailable(str(exc)) from exc


def _rows(records: list[Any]) -> list[Row]:
    rows = []
    for domain, kind, name, entry, version in records:
        table = None if entry is None else json.loads(entry)
        rows.append(Row(Change(domain, cast(Kind, kind), name, table), int(version)))
    return rows
