"""File buffers' metadata, uploads in progress and quotas in PostgreSQL, for
``shared.SharedStore`` (SCALE.md decision 9).

Two tables, which a process creates when they are missing. ``file_buffers`` has one row
per buffer: its metadata (``model.Buffer``), what it counts toward its owner's quota
(``charged``), and the upload running into it, if any (``upload_token``, a random
value of the process that claimed it, and ``held``, the room that upload holds).
``file_quotas`` has one row per owner: ``used`` (the sum of its buffers' ``charged``)
and ``held`` (the sum of its uploads' ``held``).

Every statement that changes a buffer changes its owner's counters in the same
transaction, so the counters are exact whatever runs where: an upload holds room with
one guarded ``UPDATE … WHERE used + held + n <= quota`` (two processes holding at once
cannot both pass it past the quota: the second waits for the first's row and checks
again), its end turns what it held into what is used, and an upload that fails, or a
buffer that is deleted or collected while an upload runs, gives the room back; each of
those touches a row only while it still has the upload's token, so room is given back
once. A process that dies during an upload leaves its token and its hold on the row
until the buffer expires and is collected (within ``files.temp_ttl``).

Bytes and the rows that refer to them. A blob may be removed only while no row refers to
it, and a row may come to refer to a blob only while it is there; across processes both
hold one transaction-scoped advisory lock per digest (``_lock_bytes``). An upload's end
takes it, settles its blob and records it; a permanent copy takes it and is made only
while some row still refers to the bytes; a collection takes it, asks whether any row
refers to them and removes the blob, before letting go. Whatever order they come in, no
row is left without its bytes. Transactions take that lock first, then the buffer's
row, then its owner's; one the database still aborts (a deadlock) is tried again.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]

from .errors import NotFound, Unavailable
from .model import Buffer, Owner

__all__ = ["BufferTable"]

log = logging.getLogger(__name__)

T = TypeVar("T")

CONNECT_TIMEOUT = 5.0
COMMAND_TIMEOUT = 5.0
"""Seconds a connection or a statement may take before the database counts as failed."""
POOL_SIZE = 4
"""Connections at most; every statement is short (bytes never pass through here)."""
ACQUIRE_TIMEOUT = 5.0
"""Seconds a step waits for a free connection. While the database does not answer, each
connection waits out its statement's timeout; without this, the steps queued behind
them would wait for one such timeout after another, longer the more there are."""
ATTEMPTS = 3
"""Tries of a transaction the database aborts (a deadlock, a serialization failure)."""
HOLD_ATTEMPTS = 20
"""Tries of the guarded hold, each after others took room between its read and its write."""

_CREATION_LOCK = 0x5377_4669
"""A transaction-scoped advisory lock: processes starting together create the tables once."""
_COLLECTION_LOCK = 0x5377_4667
"""Held while one process deletes expired buffers; the others skip that round."""
_BYTES_LOCKS = 0x5377_4662
"""With 32 bits of a digest, the advisory lock of those bytes (two keys, apart from the
single-key locks above)."""

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS file_buffers (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        domain TEXT NOT NULL,
        username TEXT NOT NULL,
        name TEXT NOT NULL,
        mime TEXT NOT NULL,
        size BIGINT NOT NULL,
        sha256 TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL,
        expires DOUBLE PRECISION,
        key_hash TEXT NOT NULL,
        announced BIGINT,
        uploader TEXT NOT NULL,
        upload_hash TEXT NOT NULL,
        charged BIGINT NOT NULL,
        upload_token TEXT NOT NULL DEFAULT '',
        held BIGINT NOT NULL DEFAULT 0
    )""",
    """CREATE INDEX IF NOT EXISTS file_buffers_expires ON file_buffers (expires)
        WHERE expires IS NOT NULL""",
    "CREATE INDEX IF NOT EXISTS file_buffers_sha256 ON file_buffers (sha256)",
    """CREATE TABLE IF NOT EXISTS file_quotas (
        domain TEXT NOT NULL,
        username TEXT NOT NULL,
        used BIGINT NOT NULL DEFAULT 0,
        held BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (domain, username)
    )""",
)
_COLUMNS = (
    "id, kind, domain, username, name, mime, size, sha256, created, expires, key_hash,"
    " announced, uploader, upload_hash"
)
_INSERT = f"""INSERT INTO file_buffers ({_COLUMNS}, charged)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
    ON CONFLICT (id) DO NOTHING RETURNING true"""
_SELECT = f"SELECT {_COLUMNS} FROM file_buffers WHERE id = $1"
_USAGE = "SELECT used, held FROM file_quotas WHERE domain = $1 AND username = $2"
_OWNER_ROW = """INSERT INTO file_quotas (domain, username) VALUES ($1, $2)
    ON CONFLICT DO NOTHING"""
_CLAIM = """UPDATE file_buffers SET upload_token = $2
    WHERE id = $1 AND upload_token = '' AND sha256 = '' RETURNING true"""
_HOLD = """UPDATE file_quotas SET held = held + $3
    WHERE domain = $1 AND username = $2 AND used + held + $3 <= $4 RETURNING true"""
_HELD = "UPDATE file_buffers SET held = $2 WHERE id = $1"
_FINISH = """UPDATE file_buffers
    SET size = $3, sha256 = $4, mime = $5, charged = $6, upload_token = '', held = 0
    WHERE id = $1 AND upload_token = $2 AND (expires IS NULL OR expires > $7)
    RETURNING domain, username"""
_CLAIMED = """SELECT domain, username, held FROM file_buffers
    WHERE id = $1 AND upload_token = $2 FOR UPDATE"""
_RELEASE = "UPDATE file_buffers SET upload_token = '', held = 0 WHERE id = $1"
_COUNT = """INSERT INTO file_quotas (domain, username, used, held) VALUES ($1, $2, $3, $4)
    ON CONFLICT (domain, username) DO UPDATE
    SET used = file_quotas.used + EXCLUDED.used, held = file_quotas.held + EXCLUDED.held"""
_DELETE = "DELETE FROM file_buffers WHERE id = $1 RETURNING domain, username, charged, held"
_EXPIRED = """DELETE FROM file_buffers WHERE expires <= $1
    RETURNING domain, username, charged, held"""
_REFERS = "SELECT EXISTS (SELECT 1 FROM file_buffers WHERE sha256 = $1)"
_REFERENCED = "SELECT DISTINCT sha256 FROM file_buffers WHERE sha256 = ANY($1::text[])"

_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


class BufferTable:
    def __init__(self, url: str) -> None:
        self._url = url
        self._pool: Any = None

    async def open(self) -> None:
        """Connect and create the tables if needed; ``Unavailable`` (the driver's error
        as its cause) when the database cannot be used."""
        try:
            self._pool = await asyncpg.create_pool(
                self._url,
                min_size=1,
                max_size=POOL_SIZE,
                timeout=CONNECT_TIMEOUT,
                command_timeout=COMMAND_TIMEOUT,
                server_settings={"application_name": "switchboard files"},
            )
            async with self._pool.acquire() as connection, connection.transaction():
                await connection.execute("SELECT pg_advisory_xact_lock($1)", _CREATION_LOCK)
                for statement in _SCHEMA:
                    await connection.execute(statement)
        except (*_DRIVER_ERRORS, ValueError) as exc:
            await self.close()
            raise Unavailable("cannot open the database of file buffers") from exc

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await pool.close()
            except _DRIVER_ERRORS:
                pool.terminate()

    # -- reading ---------------------------------------------------------------------

    async def get(self, buffer_id: str) -> Buffer | None:
        async def work(connection: Any) -> Buffer | None:
            row = await connection.fetchrow(_SELECT, buffer_id)
            return None if row is None else Buffer(*row)

        return await self._run(work)

    async def usage(self, owner: Owner) -> tuple[int, int]:
        """``owner``'s (used, held) bytes."""

        async def work(connection: Any) -> tuple[int, int]:
            row = await connection.fetchrow(_USAGE, owner.domain, owner.user)
            return (0, 0) if row is None else (int(row[0]), int(row[1]))

        return await self._run(work)

    async def referenced(self, digests: list[str]) -> set[str]:
        """Those of ``digests`` that some buffer's bytes are."""

        async def work(connection: Any) -> set[str]:
            return {row[0] for row in await connection.fetch(_REFERENCED, digests)}

        return await self._run(work)

    # -- buffers coming and going ----------------------------------------------------

    async def insert(self, buffer: Buffer) -> bool:
        """Record a new buffer, counting it toward its owner's quota; False (and
        nothing changed) when a buffer of that id exists already. A buffer over bytes
        (a permanent copy) is ``NotFound`` when no buffer refers to them any more: they
        may be collected already."""

        async def work(connection: Any) -> bool:
            async with connection.transaction():
                if buffer.sha256:
                    await _lock_bytes(connection, buffer.sha256)
                    if not await connection.fetchval(_REFERS, buffer.sha256):
                        raise NotFound("the file is gone")
                made = await connection.fetchval(_INSERT, *_values(buffer), buffer.charged)
                if made and buffer.charged:
                    await connection.execute(_COUNT, buffer.domain, buffer.user, buffer.charged, 0)
                return bool(made)

        return await self._run(work)

    async def delete(self, buffer_id: str) -> bool:
        """Forget the buffer and what it counted (and what an upload into it held)."""

        async def work(connection: Any) -> bool:
            async with connection.transaction():
                row = await connection.fetchrow(_DELETE, buffer_id)
                if row is None:
                    return False
                await _uncount(connection, [row])
                return True

        return await self._run(work)

    async def delete_expired(self, now: float) -> int:
        """Delete the buffers expired at ``now`` and what they counted; 0 when another
        process is doing so right now."""

        async def work(connection: Any) -> int:
            async with connection.transaction():
                sql = "SELECT pg_try_advisory_xact_lock($1)"
                if not await connection.fetchval(sql, _COLLECTION_LOCK):
                    return 0
                rows = await connection.fetch(_EXPIRED, now)
                await _uncount(connection, rows)
                return len(rows)

        return await self._run(work)

    # -- uploads ---------------------------------------------------------------------

    async def hold(self, buffer: Buffer, token: str, most: int, quota: int) -> int | None:
        """Claim ``buffer`` for the upload ``token`` and hold room for it in its owner's
        quota: ``most`` bytes or what is left, whichever is less. The room held, or
        None when another upload claimed the buffer first (or it holds bytes)."""

        async def work(connection: Any) -> int | None:
            async with connection.transaction():
                if not await connection.fetchval(_CLAIM, buffer.id, token):
                    return None
                room = await _hold_room(connection, buffer.owner, most, quota)
                await connection.execute(_HELD, buffer.id, room)
                return room

        return await self._run(work)

    async def finish(
        self, done: Buffer, token: str, held: int, now: float, settle: Callable[[], Awaitable[None]]
    ) -> bool:
        """Make the bytes of the upload ``token`` their blob (``settle``, under the lock
        of those bytes, so no collection removes them meanwhile) and record them in its
        buffer, unless the buffer expired, was collected or lost the claim meanwhile
        (False); what the upload held becomes what the buffer uses."""

        async def work(connection: Any) -> bool:
            async with connection.transaction():
                await _lock_bytes(connection, done.sha256)
                await settle()
                values = (done.size, done.sha256, done.mime, done.charged, now)
                row = await connection.fetchrow(_FINISH, done.id, token, *values)
                if row is None:
                    return False
                await connection.execute(_COUNT, row[0], row[1], done.charged, -held)
                return True

        return await self._run(work)

    async def release(self, buffer_id: str, token: str) -> None:
        """The upload ``token`` ended without bytes: give back what it held, unless that
        was done already (the buffer was deleted or collected)."""

        async def work(connection: Any) -> None:
            async with connection.transaction():
                row = await connection.fetchrow(_CLAIMED, buffer_id, token)
                if row is not None:
                    await connection.execute(_RELEASE, buffer_id)
                    await connection.execute(_COUNT, row[0], row[1], 0, -int(row[2]))

        await self._run(work)

    async def remove_unreferenced(self, digest: str, remove: Callable[[], Awaitable[int]]) -> int:
        """``remove`` the blob of ``digest`` if no buffer refers to it, under the lock of
        those bytes; what ``remove`` answers, or 0."""

        async def work(connection: Any) -> int:
            async with connection.transaction():
                await _lock_bytes(connection, digest)
                if await connection.fetchval(_REFERS, digest):
                    return 0
                return await remove()

        return await self._run(work)

    async def _run(self, work: Callable[[Any], Awaitable[T]]) -> T:
        """``work`` on a connection of the pool, tried again when the database aborts it;
        ``Unavailable`` when the database fails (the details stay in the log)."""
        if self._pool is None:
            raise Unavailable("the database of file buffers is not open")
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as connection:
                    return await work(connection)
            except asyncpg.TransactionRollbackError as exc:
                if attempt == ATTEMPTS:
                    raise Unavailable("the database of file buffers is busy") from exc
            except _DRIVER_ERRORS as exc:
                log.warning("file buffers' database: %s: %s", type(exc).__name__, exc)
                raise Unavailable("the database of file buffers failed") from exc
        raise AssertionError("unreachable")


async def _hold_room(connection: Any, owner: Owner, most: int, quota: int) -> int:
    """Hold up to ``most`` bytes of ``owner``'s quota with the guarded update; what was
    held (0 when nothing is left)."""
    await connection.execute(_OWNER_ROW, owner.domain, owner.user)
    for _ in range(HOLD_ATTEMPTS):
        used, held = await connection.fetchrow(_USAGE, owner.domain, owner.user)
        room = max(0, min(most, quota - int(used) - int(held)))
        if room == 0 or await connection.fetchval(_HOLD, owner.domain, owner.user, room, quota):
            return room
    raise Unavailable("the quota kept changing; try again")


async def _lock_bytes(connection: Any, digest: str) -> None:
    """Take the advisory lock of the bytes ``digest`` until the transaction ends."""
    part = int.from_bytes(bytes.fromhex(digest[:8]), "big", signed=True)
    await connection.execute("SELECT pg_advisory_xact_lock($1, $2)", _BYTES_LOCKS, part)


async def _uncount(connection: Any, rows: list[Any]) -> None:
    """Take what deleted buffers counted (``domain, username, charged, held`` rows) off
    their owners' counters, one update per owner, in one order."""
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for domain, username, charged, held in rows:
        total = totals[(domain, username)]
        total[0] += int(charged)
        total[1] += int(held)
    for (domain, username), (charged, held) in sorted(totals.items()):
        if charged or held:
            await connection.execute(_COUNT, domain, username, -charged, -held)


def _values(buffer: Buffer) -> tuple[Any, ...]:
    return (
        buffer.id,
        buffer.kind,
        buffer.domain,
        buffer.user,
        buffer.name,
        buffer.mime,
        buffer.size,
        buffer.sha256,
        buffer.created,
        buffer.expires,
        buffer.key_hash,
        buffer.announced,
        buffer.uploader,
        buffer.upload_hash,
    )
