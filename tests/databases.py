"""A PostgreSQL database made for one test or benchmark run and dropped after it, shared
by ``tests/conftest.py`` and ``bench/faults.py``."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg

__all__ = ["scratch_postgres"]


@contextlib.asynccontextmanager
async def scratch_postgres(
    admin: asyncpg.Connection, server: str, prefix: str
) -> AsyncIterator[str]:
    """A new empty database on ``server`` (reached through ``admin``), its url yielded;
    whoever is still connected to it at the end is cut off before it is dropped."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlsplit(server)._replace(path=f"/{name}").geturl()
    finally:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
