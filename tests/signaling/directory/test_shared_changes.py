"""``SharedChanges`` and its table: the admin API's changes kept in the cluster's
PostgreSQL and made over each node's directory (SCALE.md decision 8), several nodes'
logs on one scratch database in this process (the control channel left out: a test
says when a node catches up)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from config import ConfigError
from signaling.directory import Directory, Tenant
from signaling.directory.change_set import Change
from signaling.directory.errors import ChangesUnavailable
from signaling.directory.shared import SharedChanges
from signaling.directory.storage import ChangesTable
from tests.conftest import POSTGRES_DEFAULT, POSTGRES_ENV, REQUIRE_SERVICES_ENV, postgres_database
from tests.integration.processes import free_port
from tests.support import make_config

ERIN = {"dn": "Erin", "num": "150", "password": "erin-pw", "licences": [], "max_chats": 3}


def directory() -> Directory:
    config = make_config()
    return Directory(config.tenants, config.login.default_domain)


def tenant(directory: Directory, domain: str = "example.com") -> Tenant:
    found = directory.tenant(domain)
    assert found is not None and found.domain == domain
    return found


@contextlib.asynccontextmanager
async def logs(count: int) -> AsyncIterator[tuple[str, list[tuple[SharedChanges, Directory]]]]:
    """``count`` nodes' logs, started, on one fresh database (and its url)."""
    async with postgres_database("switchboard_directory") as url:
        started: list[tuple[SharedChanges, Directory]] = []
        try:
            for _ in range(count):
                made = directory()
                log = SharedChanges(ChangesTable(url), made)
                await log.start()
                started.append((log, made))
            yield url, started
        finally:
            for log, _ in started:
                await log.stop()


def unused(*_: object) -> None:
    raise AssertionError("the cluster's log makes a change from what the database holds")


async def test_a_change_kept_by_one_node_is_made_by_another_when_it_catches_up() -> None:
    async with logs(2) as (_, [(a, on_a), (b, on_b)]):
        announced: list[int] = []
        a.announce = announced.append
        await a.keep(Change("example.com", "users", "erin", ERIN), unused)
        assert tenant(on_a).users["erin"].dn == "Erin"
        assert announced == [1] and a.version == 1
        assert "erin" not in tenant(on_b).users
        await b.catch_up()
        assert tenant(on_b).users["erin"].num == "150" and b.version == 1
        await b.keep(Change("example.com", "users", "erin", None), unused)
        await b.keep(
            Change("example.com", "queues", "support", {"dn": "S", "agents": ["bob"]}), unused
        )
        await a.catch_up()
        assert "erin" not in tenant(on_a).users
        assert tenant(on_a).queues["support"].agents == ("bob",)
        assert a.version == b.version == 3


async def test_a_node_told_of_a_newer_version_reads_it_by_itself() -> None:
    async with logs(2) as (_, [(a, _), (b, on_b)]):
        await a.keep(Change("example.com", "users", "erin", ERIN), unused)
        b.announced(1)  # as the control channel does when node a announces
        for _ in range(500):
            if "erin" in tenant(on_b).users:
                break
            await asyncio.sleep(0.01)
        assert "erin" in tenant(on_b).users
        await a.keep(Change("example.com", "users", "frank", {**ERIN, "num": ""}), unused)
        b.announced(None)  # a subscription came back: read the version again
        for _ in range(500):
            if "frank" in tenant(on_b).users:
                break
            await asyncio.sleep(0.01)
        assert "frank" in tenant(on_b).users


async def test_changes_made_at_once_are_all_made_everywhere() -> None:
    async with logs(3) as (_, nodes):
        (a, on_a), (b, on_b), (c, on_c) = nodes
        await asyncio.gather(
            *(
                node.keep(
                    Change("example.com", "users", f"u{index}-{n}", {"password": "p"}), unused
                )
                for n in range(20)
                for index, (node, _) in enumerate(nodes[:2])
            ),
            a.keep(Change("example.com", "users", "carol", {**ERIN, "num": "", "dn": "A"}), unused),
            b.keep(Change("example.com", "users", "carol", {**ERIN, "num": "", "dn": "B"}), unused),
        )
        for node, _ in nodes:
            await node.catch_up()
        wanted = {f"u{index}-{n}" for index in range(2) for n in range(20)}
        for made in (on_a, on_b, on_c):
            assert wanted <= set(tenant(made).users)
        assert tenant(on_a).users["carol"] == tenant(on_b).users["carol"]
        assert tenant(on_b).users["carol"] == tenant(on_c).users["carol"]
        assert a.version == b.version == c.version == 42


async def test_an_own_change_after_a_tenant_reset_not_yet_made_here_survives_it() -> None:
    """Node b removes and adds other.org again (it starts out empty); node a, not yet
    told, then adds a user to it: a makes the reset first, then its own user."""
    async with logs(2) as (url, [(a, on_a), (b, on_b)]):
        await b.keep(Change.tenant("other.org", added=False), unused)
        await b.keep(Change.tenant("other.org", added=True), unused)
        assert tenant(on_b, "other.org").users == {}
        assert "erin" in tenant(on_a, "other.org").users  # from the config, for now
        await a.keep(Change("other.org", "users", "zoe", {"password": "z"}), unused)
        assert set(tenant(on_a, "other.org").users) == {"zoe"}
        await b.catch_up()
        assert set(tenant(on_b, "other.org").users) == {"zoe"}
        restarted = directory()  # a node starting now makes the same
        late = SharedChanges(ChangesTable(url), restarted)
        await late.start()
        await late.stop()
        assert set(tenant(restarted, "other.org").users) == {"zoe"}


async def test_a_change_the_database_refuses_is_not_made() -> None:
    async with logs(1) as (url, [(a, on_a)]):
        connection = await asyncpg.connect(url)
        try:
            await connection.execute("ALTER TABLE directory_changes RENAME TO elsewhere")
            with pytest.raises(ChangesUnavailable):
                await a.keep(Change("example.com", "users", "erin", ERIN), unused)
            assert "erin" not in tenant(on_a).users and a.version == 0
            await connection.execute("ALTER TABLE elsewhere RENAME TO directory_changes")
        finally:
            await connection.close()
        await a.keep(Change("example.com", "users", "erin", ERIN), unused)
        assert "erin" in tenant(on_a).users


async def test_a_database_that_does_not_exist_stops_the_start() -> None:
    server = urlsplit(os.environ.get(POSTGRES_ENV) or POSTGRES_DEFAULT)
    name = f"switchboard_missing_{secrets.token_hex(4)}"
    url = urlunsplit(server._replace(path=f"/{name}"))
    log = SharedChanges(ChangesTable(url), directory())
    with pytest.raises(ConfigError) as caught:
        await log.start()
    if "connection refused" in str(caught.value) and os.environ.get(REQUIRE_SERVICES_ENV) != "1":
        pytest.skip(f"PostgreSQL at ${POSTGRES_ENV} unreachable")
    assert caught.value.where == "cluster.database"
    assert f'database "{name}" does not exist' in caught.value.problem


async def test_a_database_nobody_listens_for_stops_the_start() -> None:
    url = f"postgres://switchboard:secret@127.0.0.1:{free_port()}/switchboard"
    log = SharedChanges(ChangesTable(url), directory())
    with pytest.raises(ConfigError) as caught:
        await log.start()
    assert caught.value.where == "cluster.database"
    assert "connection refused" in caught.value.problem
    assert "secret" not in str(caught.value)
