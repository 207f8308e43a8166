"""Which store keeps the service's file buffers (PROTOCOL §8; docs/protocol.md 12.45).

One service process keeps them in a folder of its own (``LocalStore``), as it always
has. When ``cluster.database`` is set, the service is one of several processes that
serve the same buffers (replicas of the messages service, or the embedded services of a
cluster's nodes): then the metadata, uploads in progress and quotas live in that
PostgreSQL database and the bytes in ``files.dir``, a folder every process mounts
(``SharedStore``). That folder must be named: the default under ``server.data_dir`` is
each node's own disk, where another node would not find the bytes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from config import Config, ConfigError
from filebuffers import BufferStore, LocalStore, SharedStore, Unavailable
from tracing.redact import first_cause, shown_url

__all__ = ["files_folder", "make_file_store", "open_file_store"]

log = logging.getLogger(__name__)


def files_folder(config: Config) -> Path:
    """``files.dir``, or the folder ``files`` in ``server.data_dir``."""
    return Path(config.files.dir) if config.files.dir else config.server.data_dir / "files"


def make_file_store(config: Config, clock: Callable[[], float] = time.time) -> BufferStore:
    """The store ``config`` asks for; ``ConfigError`` when a shared one is asked for
    without a shared folder, or on a database that is not PostgreSQL."""
    files = config.files
    limits = {"max_size": files.max_size, "quota": files.quota}
    database = config.cluster.database
    if not database:
        if config.messages.replicas:
            log.warning(
                "file buffers are this replica's own (in %s): set cluster.database and "
                "files.dir to share them with the other replicas",
                files_folder(config),
            )
        return LocalStore(files_folder(config), temp_ttl=files.temp_ttl, clock=clock, **limits)
    if not database.startswith(("postgres://", "postgresql://")):
        raise ConfigError(
            "cluster.database",
            "must be PostgreSQL (postgres://…): the file buffers of every node are kept there",
        )
    if not files.dir:
        raise ConfigError(
            "files.dir",
            "required when cluster.database is set: the folder every node mounts for the "
            "bytes of file buffers (server.data_dir is each node's own)",
        )
    folder = Path(files.dir)
    return SharedStore(folder, database, temp_ttl=files.temp_ttl, clock=clock, **limits)


async def open_file_store(store: BufferStore, config: Config) -> None:
    """Open ``store``; ``ConfigError`` naming ``cluster.database`` when its database
    cannot be used (the service does not start without its file buffers)."""
    try:
        await store.open()
    except Unavailable as exc:
        reason = f"cannot open {shown_url(config.cluster.database)}: {first_cause(exc)}"
        raise ConfigError("cluster.database", reason) from exc
