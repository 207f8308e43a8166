"""Fixtures of the messages service tests: the service on a real server, per backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.messages_service.support import RunningService, running_service, service_config


@pytest.fixture
async def service(database_url: str) -> AsyncIterator[RunningService]:
    """The service on SQLite and again on PostgreSQL (see ``database_url``)."""
    async with running_service(service_config(database_url)) as running:
        yield running


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite://{(tmp_path / 'messages.sqlite3').as_posix()}"


@pytest.fixture
async def sqlite_service(sqlite_url: str) -> AsyncIterator[RunningService]:
    """The service on SQLite only, for behaviour that does not depend on the database."""
    async with running_service(service_config(sqlite_url)) as running:
        yield running
