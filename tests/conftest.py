"""Shared fixtures: ``server`` is a real uvicorn server on a loopback port (see support)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from tests.databases import scratch_postgres
from tests.support import RunningServer, running_server


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    async with running_server() as running:
        yield running


# -- databases for the messages service's storage tests ------------------------------------

POSTGRES_ENV = "SWITCHBOARD_TEST_POSTGRES"
"""Server the PostgreSQL runs use; each test gets a fresh database created on it."""
POSTGRES_DEFAULT = "postgres://postgres@127.0.0.1:5432/postgres"
REQUIRE_SERVICES_ENV = "SWITCHBOARD_REQUIRE_SERVICES"
"""Set to 1 (CI) to make an unreachable PostgreSQL a failure instead of a skip."""


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database: a SQLite file in ``tmp_path``, or a PostgreSQL database
    made for this test on ``$SWITCHBOARD_TEST_POSTGRES`` and dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite://{(tmp_path / 'messages.sqlite3').as_posix()}"
        return
    async with postgres_database() as url:
        yield url


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database only (what SQLite cannot do, such as replicas
    of the messages service sharing one database)."""
    async with postgres_database() as url:
        yield url


@contextlib.asynccontextmanager
async def postgres_database(prefix: str = "switchboard_test") -> AsyncIterator[str]:
    """A fresh PostgreSQL database on ``$SWITCHBOARD_TEST_POSTGRES``, dropped after; the
    test is skipped (failed in CI) when that server cannot be reached."""
    server = os.environ.get(POSTGRES_ENV) or POSTGRES_DEFAULT
    try:
        admin = await asyncpg.connect(server, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        message = f"PostgreSQL at ${POSTGRES_ENV} unreachable: {exc!r}"
        if os.environ.get(REQUIRE_SERVICES_ENV) == "1":
            pytest.fail(message)
        pytest.skip(message)
    try:
        async with scratch_postgres(admin, server, prefix) as url:
            yield url
    finally:
        await admin.close()
