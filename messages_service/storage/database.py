"""One database behind one Tortoise context: opening, running work, closing.

Theory of operation. Tortoise 1.x keeps its state (connections, model registry) in a
``TortoiseContext`` and finds the current one through a ``ContextVar``. Our callers run
in tasks Tortoise never saw (uvicorn's connection tasks, the writer task, the hub's
lifespan), so ``Database.run(work)`` runs each unit of work in its own task, started in a
copy of a ``contextvars.Context`` in which this database's TortoiseContext is current.
Each unit therefore sees its own connections, and a transaction opened inside it (which
Tortoise also tracks through a ContextVar) never leaks into another task. Errors of the
drivers and of Tortoise are translated into ``Unavailable`` at that same boundary.

Several ``Database`` objects can be open in one process, with one limit that comes from
Tortoise: model classes are process-global, and initialising a context rewrites their
query builder (SQL dialect) and connection name, and Tortoise caches the INSERT statement
per connection name. So every SQLite database uses the connection name
``messages_sqlite`` and every PostgreSQL one ``messages_postgres`` (sequential use of
both kinds stays correct), and opening a PostgreSQL database while a SQLite one is open
(or the reverse) is refused. Closing releases everything, so a store can be opened again
at once in the same process.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, cast
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]
from tortoise.backends.base.client import BaseDBAsyncClient, TransactionContext
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.context import TortoiseContext
from tortoise.exceptions import BaseORMException, ConfigurationError

from messages_service.errors import MessagesServiceError, Unavailable
from tracing import Tracer

from .models import APP_LABEL

__all__ = ["SQLITE_CACHE_KIB", "Database", "Dialect", "dialect_of"]

log = logging.getLogger(__name__)

for _chatty in ("aiosqlite", "tortoise.db_client"):
    # Their DEBUG lines carry every statement's parameters: message text, file keys,
    # password hashes. Queries are traced by the ``database`` flag, which redacts them;
    # a root logger at DEBUG must not put them in the log.
    logging.getLogger(_chatty).setLevel(logging.INFO)

T = TypeVar("T")
Dialect = Literal["sqlite", "postgres"]

_SCHEMES: dict[str, Dialect] = {
    "sqlite": "sqlite",
    "postgres": "postgres",
    "postgresql": "postgres",
    "asyncpg": "postgres",
}
SQLITE_CACHE_KIB = 32 * 1024
_SQLITE_PRAGMAS = {
    "journal_mode": "WAL",
    "synchronous": "NORMAL",
    "foreign_keys": "ON",
    "cache_size": -SQLITE_CACHE_KIB,
}
"""WAL lets readers run beside the writer; NORMAL is durable across a process crash
with WAL (only an OS crash may lose the last commits); foreign keys guard members.

A page cache of 32 MiB instead of SQLite's 2 MiB (a negative ``cache_size`` is KiB, and
the cache grows to it only as pages are used): every stored message adds a row to each
index of ``messages`` in two users' copies, in as many places as there are chats
writing, and once those leaves outgrow the small cache each batch reads them again from
the OS; the SQLite thread's work per stored message went down a fifth to a quarter
(docs/benchmarks.md, "The storage half of a stored message")."""

_DRIVER_ERRORS = (
    BaseORMException,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    sqlite3.Error,
    OSError,
    TimeoutError,
)

_open_dialects: Counter[Dialect] = Counter()


SQLITE_MINIMUM = (3, 35, 0)
"""The SQLite library Python is linked with must know ``RETURNING``."""


def dialect_of(url: str) -> Dialect:
    """``sqlite`` or ``postgres`` for a database URL; ValueError for anything else."""
    scheme = urlsplit(url).scheme
    if scheme not in _SCHEMES:
        raise ValueError(
            f"unsupported database URL scheme {scheme!r}: use sqlite:///path or postgres://…"
        )
    return _SCHEMES[scheme]


class Database:
    """Open with ``await Database.open(url)``; then ``run()`` units of work that use
    ``client()`` and ``transaction()``; ``close()`` when done."""

    def __init__(self, url: str, tracer: Tracer | None = None) -> None:
        self.dialect = dialect_of(url)
        if self.dialect == "sqlite" and sqlite3.sqlite_version_info < SQLITE_MINIMUM:
            raise ValueError(
                f"SQLite {sqlite3.sqlite_version} is too old: the message store needs "
                f"{'.'.join(map(str, SQLITE_MINIMUM))} or newer (INSERT … RETURNING)"
            )
        self.alias = f"messages_{self.dialect}"
        try:
            self._config: dict[str, Any] = expand_db_url(url)
        except ConfigurationError as exc:
            raise ValueError(f"bad database URL: {exc}") from exc
        self._tortoise = TortoiseContext()
        self._context = contextvars.Context()
        self._context.run(self._tortoise.__enter__)
        self._open = False
        self.tracer = tracer or Tracer()
        """Each unit of work and its time go to the ``database`` flag."""

    @classmethod
    async def open(cls, url: str, tracer: Tracer | None = None) -> Database:
        database = cls(url, tracer)
        other = next((d for d in _open_dialects if d != database.dialect), None)
        if other is not None:
            raise ValueError(
                f"a {other} message store is open in this process: Tortoise models are "
                f"process-global, so a {database.dialect} one cannot be opened beside it"
            )
        _open_dialects[database.dialect] += 1
        database._open = True
        try:
            await database._run(database._init())
        except BaseException:
            await database.close()
            raise
        return database

    async def _init(self) -> None:
        credentials = self._config["credentials"]
        if self.dialect == "sqlite":
            credentials.update(_SQLITE_PRAGMAS)
            if credentials["file_path"] != ":memory:":
                Path(credentials["file_path"]).parent.mkdir(parents=True, exist_ok=True)
        await self._tortoise.init(
            config={
                "connections": {self.alias: self._config},
                "apps": {
                    APP_LABEL: {
                        "models": ["messages_service.storage.models"],
                        "default_connection": self.alias,
                    }
                },
            }
        )

    async def close(self) -> None:
        """Close every connection; safe to call twice."""
        if not self._open:
            return
        self._open = False
        _open_dialects[self.dialect] -= 1
        if not _open_dialects[self.dialect]:
            del _open_dialects[self.dialect]
        try:
            await self._run(self._tortoise.close_connections())
        except Unavailable:
            log.warning("closing the message store failed", exc_info=True)

    # -- running work --------------------------------------------------------------------

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` with this database's Tortoise context current (see module doc).

        Raises ``Unavailable`` when the database fails or the store is closed."""
        if not self._open:
            work.close()
            raise Unavailable("storage closed")
        tracer = self.tracer
        if not tracer.database:
            return await self._run(work)
        name = getattr(work, "__qualname__", "work")
        began = time.perf_counter()
        outcome = "failed"
        try:
            result = await self._run(work)
            outcome = "done"
            return result
        finally:
            millis = (time.perf_counter() - began) * 1000
            tracer.record("database", f"{name} {outcome} in {millis:.2f} ms ({self.dialect})")

    async def _run(self, work: Coroutine[Any, Any, T]) -> T:
        task = asyncio.create_task(_translated(work), context=self._context.copy())
        return await task

    def client(self) -> BaseDBAsyncClient:
        """The connection of this database; only inside ``run``."""
        return self._tortoise.db(self.alias)

    def transaction(self) -> TransactionContext:
        """``async with db.transaction() as tx``; only inside ``run``."""
        return self.client()._in_transaction()

    async def returning(
        self, conn: BaseDBAsyncClient, text: str, params: list[object]
    ) -> Sequence[Sequence[Any]]:
        """The rows a statement gives back (``INSERT … RETURNING``), each a sequence in
        the order of its columns: on SQLite the driver's rows as they come, without the
        dict per row that ``execute_query_dict`` builds (the Post writer's hot path);
        PostgreSQL's ``execute_query`` drops an INSERT's rows, so there it is the dicts'
        values, in column order."""
        if self.dialect == "sqlite":
            # Typed as dicts by Tortoise, but sqlite3.Row: a sequence of the columns.
            return cast(Sequence[Sequence[Any]], (await conn.execute_query(text, params))[1])
        return [
            tuple(row.values()) for row in await conn.execute_query_dict(self.sql(text), params)
        ]

    def sql(self, text: str) -> str:
        """Raw SQL written with ``?`` placeholders, in this dialect (``$1``… for asyncpg).

        Only for our own statements, which never contain ``?`` inside a literal."""
        if self.dialect == "sqlite":
            return text
        parts = text.split("?")
        out = [parts[0]]
        for number, part in enumerate(parts[1:], start=1):
            out.append(f"${number}{part}")
        return "".join(out)


async def _translated(work: Coroutine[Any, Any, T]) -> T:
    try:
        return await work
    except MessagesServiceError:
        raise
    except _DRIVER_ERRORS as exc:
        # The details (host names, SQL, constraint names) stay in the log.
        log.warning("database error: %s: %s", type(exc).__name__, exc)
        raise Unavailable() from exc
