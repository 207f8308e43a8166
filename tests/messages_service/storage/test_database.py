"""Opening databases, migrations, and Tortoise contexts side by side."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from messages_service.errors import Unavailable
from messages_service.storage import MessageStore
from messages_service.storage.database import SQLITE_CACHE_KIB, Database, dialect_of
from messages_service.storage.migrations import LATEST_VERSION, migrate


async def _versions(db: Database) -> list[int]:
    async def read() -> list[int]:
        rows = await db.client().execute_query_dict("SELECT version FROM schema_version")
        return sorted(int(row["version"]) for row in rows)

    return await db.run(read())


async def _writer_indexes_partial(db: Database) -> list[bool]:
    """For each index named ``messages_writer…``: is it partial (``writer IS NOT NULL``)?"""
    client = db.client()
    if db.dialect == "sqlite":
        rows = await client.execute_query_dict(
            "SELECT sql FROM sqlite_master WHERE name LIKE 'messages_writer%'"
        )
        return [row["sql"].endswith("WHERE writer IS NOT NULL") for row in rows]
    rows = await client.execute_query_dict(
        "SELECT indexdef FROM pg_indexes WHERE indexname LIKE 'messages_writer%'"
    )
    return [row["indexdef"].endswith("WHERE (writer IS NOT NULL)") for row in rows]


async def test_migrations_run_once_and_are_recorded(database_url: str) -> None:
    db = await Database.open(database_url)
    try:
        assert await db.run(migrate(db)) == 0
        assert await db.run(migrate(db)) == LATEST_VERSION  # nothing left to do
        assert await _versions(db) == list(range(1, LATEST_VERSION + 1))
    finally:
        await db.close()


async def test_returning_gives_the_rows_of_an_insert_in_column_order(database_url: str) -> None:
    """``Database.returning``: the rows an ``INSERT … RETURNING`` gives back, each in the
    order of its columns, with the driver's types; none for a row a conflict skipped."""
    db = await Database.open(database_url)
    claim = """INSERT INTO post_keys (domain, author, client_id, call_id, seq, time_ms,
                                     stored_ms) VALUES (?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (domain, author, client_id) DO NOTHING
               RETURNING seq, client_id, author"""
    rows = ["example.com", "alice", "m1", "c", 7, 1, 1, "example.com", "bob", "m1", "c", 9, 1, 1]

    async def insert() -> list[list[object]]:
        found = await db.returning(db.client(), claim, rows)
        return sorted(list(row) for row in found)

    try:
        await db.run(migrate(db))
        assert await db.run(insert()) == [[7, "m1", "alice"], [9, "m1", "bob"]]
        assert await db.run(insert()) == []  # both keys taken: nothing inserted
    finally:
        await db.close()


async def test_a_database_from_a_newer_release_is_refused(database_url: str) -> None:
    db = await Database.open(database_url)
    try:
        await db.run(migrate(db))

        async def newer() -> None:
            await db.client().execute_query(
                db.sql("INSERT INTO schema_version (version, description) VALUES (?, ?)"),
                [LATEST_VERSION + 1, "from the future"],
            )

        await db.run(newer())
    finally:
        await db.close()
    with pytest.raises(Unavailable, match="schema version"):
        await MessageStore.open(database_url)


async def test_sqlite_runs_with_wal_normal_sync_foreign_keys_and_a_larger_cache(
    tmp_path: Path,
) -> None:
    db = await Database.open(f"sqlite://{tmp_path / 'deep' / 'er' / 'm.sqlite3'}")

    async def pragmas() -> list[object]:
        client = db.client()
        return [
            (await client.execute_query_dict(f"PRAGMA {name}"))[0][name]
            for name in ("journal_mode", "synchronous", "foreign_keys", "cache_size")
        ]

    try:
        # synchronous 1 = NORMAL; a negative cache size is KiB (SQLite's own: -2000)
        assert await db.run(pragmas()) == ["wal", 1, 1, -SQLITE_CACHE_KIB]
    finally:
        await db.close()


async def test_two_stores_of_the_same_kind_work_side_by_side(tmp_path: Path) -> None:
    first = await MessageStore.open(f"sqlite://{tmp_path / 'a.sqlite3'}")
    second = await MessageStore.open(f"sqlite://{tmp_path / 'b.sqlite3'}")
    try:
        a = await first.create_group("example.com", "only in a", "alice")
        await second.create_group("example.com", "only in b", "alice")
        await second.create_group("example.com", "also in b", "alice")
        assert [g.dn for g in await first.all_groups()] == ["only in a"]
        assert [g.dn for g in await second.all_groups()] == ["only in b", "also in b"]
        assert a.id == 1
    finally:
        await first.close()
        await second.close()


async def test_a_store_of_the_other_kind_is_refused_while_one_is_open(
    database_url: str, tmp_path: Path
) -> None:
    other = (
        "postgres://nobody@127.0.0.1:1/none"
        if dialect_of(database_url) == "sqlite"
        else f"sqlite://{tmp_path / 'other.sqlite3'}"
    )
    store = await MessageStore.open(database_url)
    try:
        with pytest.raises(ValueError, match="process-global"):
            await MessageStore.open(other)
    finally:
        await store.close()
    if dialect_of(other) == "sqlite":  # once closed, the other kind opens fine
        await (await MessageStore.open(other)).close()


def test_only_sqlite_and_postgres_urls() -> None:
    assert dialect_of("sqlite:///x") == "sqlite"
    assert dialect_of("postgresql://h/db") == "postgres"
    with pytest.raises(ValueError, match="mysql"):
        dialect_of("mysql://h/db")


async def test_a_closed_store_is_unavailable(tmp_path: Path) -> None:
    store = await MessageStore.open(f"sqlite://{tmp_path / 'm.sqlite3'}")
    await store.close()
    with pytest.raises(Unavailable):
        await store.unread_total("example.com", "bob")
    await store.close()  # twice is fine


def test_an_sqlite_without_returning_is_refused_with_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 34, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.34.1")
    with pytest.raises(ValueError, match=r"SQLite 3\.34\.1 is too old.*3\.35\.0"):
        Database(f"sqlite://{tmp_path / 'm.sqlite3'}")


async def test_the_writer_index_holds_only_rows_with_a_writer_and_serves_its_query(
    database_url: str,
) -> None:
    """Migration 5: ``messages_writer`` is partial, and the query of ``writers_in`` still
    reads it: a queue's topic of many rows, a few of them written by an agent."""
    store = await MessageStore.open(database_url)
    db = store._db
    query = "SELECT DISTINCT peer FROM messages WHERE domain = ? AND topic = ? AND writer = ?"
    row = "(?, 'queue', ?, FALSE, 'queue', 'Queue', 'hi', NULL, 'c', ?, NULL, 1, FALSE, ?)"

    async def fill_and_plan() -> str:
        client = db.client()
        params: list[object] = []
        for n in range(1000):
            params += ["d", f"visitor{n % 50}", n, "agent" if n % 250 == 0 else None]
        await client.execute_query(
            db.sql(
                "INSERT INTO messages (domain, topic, peer, grp, author, author_dn, text,"
                " attach, call_id, seq, client_id, time_ms, deleted, writer) VALUES "
                + ", ".join([row] * 1000)
            ),
            params,
        )
        await client.execute_query("ANALYZE")
        explain = "EXPLAIN QUERY PLAN" if db.dialect == "sqlite" else "EXPLAIN"
        rows = await client.execute_query_dict(
            db.sql(f"{explain} {query}"), ["d", "queue", "agent"]
        )
        assert await _writer_indexes_partial(db) == [True]
        return " ".join(str(value) for found in rows for value in found.values())

    try:
        assert "messages_writer" in await db.run(fill_and_plan())
        assert await store.writers_in("d", "queue", "agent") == {"visitor0"}
    finally:
        await store.close()


async def test_a_database_of_version_4_with_rows_gets_the_partial_writer_index(
    database_url: str,
) -> None:
    """The upgrade as it happens on a running site: version 4's full index, rows with
    and without a writer; afterwards one index, partial, and the same answers."""
    db = await Database.open(database_url)

    async def back_to_version_4() -> None:
        async with db.transaction() as tx:
            await tx.execute_query("DROP INDEX messages_writer")
            await tx.execute_query(
                "CREATE INDEX messages_writer ON messages (domain, topic, writer)"
            )
            await tx.execute_query("DELETE FROM schema_version WHERE version = 5")
            for seq, writer in enumerate(["agent", None, "agent", None]):
                await tx.execute_query(
                    db.sql(
                        "INSERT INTO messages (domain, topic, peer, grp, author, author_dn,"
                        " text, call_id, seq, time_ms, deleted, writer) VALUES"
                        " ('d', 'queue', ?, FALSE, 'queue', 'Q', 'hi', 'c', ?, 1, FALSE, ?)"
                    ),
                    [f"visitor{seq}", seq, writer],
                )

    try:
        await db.run(migrate(db))
        await db.run(back_to_version_4())
        assert await db.run(_writer_indexes_partial(db)) == [False]
        assert await db.run(migrate(db)) == 4
        assert await _versions(db) == list(range(1, LATEST_VERSION + 1))
        assert await db.run(_writer_indexes_partial(db)) == [True]
    finally:
        await db.close()
    store = await MessageStore.open(database_url)
    try:
        assert await store.writers_in("d", "queue", "agent") == {"visitor0", "visitor2"}
    finally:
        await store.close()
