"""Versioned schema migrations, run at start-up (never Tortoise's ``generate_schemas``).

Theory of operation: ``schema_version`` holds one row per applied migration. At start the
store takes a lock (PostgreSQL: a transaction-scoped advisory lock, so two processes
starting together do not both migrate; SQLite: the write transaction itself), reads the
highest applied version and applies every newer migration of ``MIGRATIONS`` in order,
all in the one transaction: a failure leaves the schema exactly as it was. A database
whose version is newer than this release knows is refused rather than guessed at.

To change the schema, append a ``Migration`` with the next version and its SQL for both
dialects, and update ``models.py`` to match. Never edit a migration that has shipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from messages_service.errors import Unavailable

from .database import Database, Dialect

__all__ = ["LATEST_VERSION", "MIGRATIONS", "Migration", "migrate"]

_ADVISORY_LOCK = 0x5377_6D73  # any constant shared by every process of this service


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    sqlite: tuple[str, ...]
    postgres: tuple[str, ...]

    def statements(self, dialect: Dialect) -> tuple[str, ...]:
        return self.sqlite if dialect == "sqlite" else self.postgres


def _tables(id_column: str) -> tuple[str, ...]:
    """The first schema; only the auto-increment primary key differs between dialects."""
    return (
        f"""CREATE TABLE messages (
            id {id_column},
            domain TEXT NOT NULL,
            topic TEXT NOT NULL,
            peer TEXT NOT NULL,
            grp BOOLEAN NOT NULL,
            author TEXT NOT NULL,
            author_dn TEXT NOT NULL,
            text TEXT NOT NULL,
            attach TEXT,
            call_id TEXT NOT NULL,
            seq BIGINT NOT NULL,
            client_id TEXT,
            time_ms BIGINT NOT NULL,
            deleted BOOLEAN NOT NULL DEFAULT FALSE
        )""",
        # PROTOCOL §12.10: a Post already stored is not stored again.
        "CREATE UNIQUE INDEX messages_post ON messages (domain, topic, call_id, seq)",
        # ReadChat pages and unread counts of one chat.
        "CREATE INDEX messages_chat ON messages (domain, topic, peer, id)",
        # Search walks one user's rows newest first.
        "CREATE INDEX messages_topic ON messages (domain, topic, id)",
        f"""CREATE TABLE chats (
            id {id_column},
            domain TEXT NOT NULL,
            topic TEXT NOT NULL,
            peer TEXT NOT NULL,
            peer_dn TEXT NOT NULL,
            grp BOOLEAN NOT NULL,
            last_id BIGINT NOT NULL DEFAULT 0,
            last_time BIGINT NOT NULL DEFAULT 0,
            read_upto BIGINT NOT NULL DEFAULT 0,
            peer_read_upto BIGINT NOT NULL DEFAULT 0,
            unread BIGINT NOT NULL DEFAULT 0
        )""",
        "CREATE UNIQUE INDEX chats_peer ON chats (domain, topic, peer)",
        f"""CREATE TABLE groups (
            id {id_column},
            domain TEXT NOT NULL,
            dn TEXT NOT NULL
        )""",
        f"""CREATE TABLE members (
            id {id_column},
            group_id BIGINT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
            domain TEXT NOT NULL,
            sip TEXT NOT NULL,
            admin BOOLEAN NOT NULL DEFAULT FALSE
        )""",
        "CREATE UNIQUE INDEX members_group ON members (group_id, sip)",
        "CREATE INDEX members_user ON members (domain, sip)",
    )


def _post_keys() -> tuple[str, ...]:
    """PROTOCOL §4.6 (revised), docs 12.21: a client's message id is an idempotency key per
    sender. One row per (domain, author, id) names the Post that first used it; rows older
    than ``messages.idempotency_ttl`` are pruned. Filled at once with the ids of the last
    day stored (before the newest message), so an upgrade does not forget them; older
    ones would only be pruned again."""
    return (
        """CREATE TABLE post_keys (
            domain TEXT NOT NULL,
            author TEXT NOT NULL,
            client_id TEXT NOT NULL,
            call_id TEXT NOT NULL,
            seq BIGINT NOT NULL,
            time_ms BIGINT NOT NULL,
            stored_ms BIGINT NOT NULL,
            PRIMARY KEY (domain, author, client_id)
        )""",
        "CREATE INDEX post_keys_age ON post_keys (stored_ms)",
        """INSERT INTO post_keys (domain, author, client_id, call_id, seq, time_ms, stored_ms)
            SELECT domain, author, client_id, call_id, seq, time_ms, time_ms FROM messages
            WHERE id IN (SELECT MIN(id) FROM messages WHERE client_id IS NOT NULL
                           AND time_ms > (SELECT MAX(time_ms) FROM messages) - 86400000
                         GROUP BY domain, author, client_id)""",
    )


def _chat_deletions(id_column: str) -> tuple[str, ...]:
    """docs/protocol.md 12.32: ``DeleteChat`` leaves a note for the other side (told at
    its next ``ReadChats`` when no device was connected), and a support agent writing as
    its queue is remembered per row (``writer``: the agents who took part read it)."""
    return (
        f"""CREATE TABLE chat_deletions (
            id {id_column},
            domain TEXT NOT NULL,
            topic TEXT NOT NULL,
            peer TEXT NOT NULL,
            deleter TEXT NOT NULL,
            role TEXT NOT NULL,
            removed BOOLEAN NOT NULL,
            time_ms BIGINT NOT NULL
        )""",
        "CREATE UNIQUE INDEX chat_deletions_peer ON chat_deletions (domain, topic, peer)",
        "ALTER TABLE messages ADD COLUMN writer TEXT",
        "CREATE INDEX messages_writer ON messages (domain, topic, writer)",
    )


def _replica_notes() -> tuple[str, ...]:
    """docs/protocol.md 12.41: what one replica of the service tells its hubs, for the
    other replicas to read (``notes``). ``replica_notes_pruned`` holds the highest id
    pruned, so that a replica that was away longer than the notes are kept knows it
    missed some. PostgreSQL only: replicas share one PostgreSQL, never a SQLite file."""
    return (
        """CREATE TABLE replica_notes (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            origin TEXT NOT NULL,
            body TEXT NOT NULL,
            created TIMESTAMPTZ NOT NULL DEFAULT now()
        )""",
        "CREATE INDEX replica_notes_age ON replica_notes (created)",
        "CREATE TABLE replica_notes_pruned (upto BIGINT NOT NULL)",
        "INSERT INTO replica_notes_pruned (upto) VALUES (0)",
    )


_PARTIAL_WRITER = "ON messages (domain, topic, writer) WHERE writer IS NOT NULL"


def _writer_index_partial(dialect: Dialect) -> tuple[str, ...]:
    """Only support agents writing as their queue leave a ``writer`` (12.32); every other
    row has none. Indexed only where there is one, the index costs nothing per stored
    message (it was one of the five b-trees each row went into); ``writers_in`` asks for
    ``writer = ?``, which both databases know implies ``writer IS NOT NULL``.

    PostgreSQL builds the new index beside the old one and only then drops the old one
    and renames the new: the build (a scan of every row) blocks writes to ``messages``,
    as any ``CREATE INDEX`` does, but not reads, which ``DROP INDEX`` would block until
    the transaction ends. SQLite cannot rename an index; its migration holds the write
    lock throughout anyway, and readers go on beside it (WAL)."""
    if dialect == "sqlite":
        return ("DROP INDEX messages_writer", f"CREATE INDEX messages_writer {_PARTIAL_WRITER}")
    return (
        f"CREATE INDEX messages_writer_partial {_PARTIAL_WRITER}",
        "DROP INDEX messages_writer",
        "ALTER INDEX messages_writer_partial RENAME TO messages_writer",
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "messages, chats, groups, members",
        # AUTOINCREMENT: ids are never reused, so they stay valid as read markers.
        sqlite=_tables("INTEGER PRIMARY KEY AUTOINCREMENT"),
        postgres=_tables("BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    ),
    Migration(
        2,
        "post_keys: client message ids per sender",
        sqlite=_post_keys(),
        postgres=_post_keys(),
    ),
    Migration(
        3,
        "chat_deletions, messages.writer: deleting a chat, the queue's side of support",
        sqlite=_chat_deletions("INTEGER PRIMARY KEY AUTOINCREMENT"),
        postgres=_chat_deletions("BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    ),
    Migration(
        4,
        "replica_notes: notifications between replicas of the service",
        sqlite=(),
        postgres=_replica_notes(),
    ),
    Migration(
        5,
        "messages_writer: only the rows that have a writer",
        sqlite=_writer_index_partial("sqlite"),
        postgres=_writer_index_partial("postgres"),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version

_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL
)"""


async def migrate(db: Database) -> int:
    """Bring the schema up to ``LATEST_VERSION``; returns the version found before.

    Runs inside ``db.run``."""
    async with db.transaction() as tx:
        if db.dialect == "postgres":
            await tx.execute_query(f"SELECT pg_advisory_xact_lock({_ADVISORY_LOCK})")
        await tx.execute_query(_VERSION_TABLE)
        rows = await tx.execute_query_dict("SELECT version FROM schema_version")
        applied = {int(row["version"]) for row in rows}
        found = max(applied, default=0)
        if found > LATEST_VERSION:
            raise Unavailable(
                f"the message database has schema version {found}; this release knows "
                f"up to {LATEST_VERSION}"
            )
        for migration in MIGRATIONS:
            if migration.version in applied:  # each one not recorded yet, in order
                continue
            for statement in migration.statements(db.dialect):
                await tx.execute_query(statement)
            await tx.execute_query(
                db.sql("INSERT INTO schema_version (version, description) VALUES (?, ?)"),
                [migration.version, migration.description],
            )
    return found
