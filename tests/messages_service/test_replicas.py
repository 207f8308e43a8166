"""Replicas of the messages service on one PostgreSQL (docs/protocol.md 12.41): what one
replica tells its hubs reaches the hubs of the other, whatever its size, and across a
cut of the listening connection; a replica that missed notes for good makes its hubs
ask again; a single service pays nothing.

Two services, A and B, run in this process on one scratch database, each on its own
loopback port with ``messages.replicas`` on; scripted hubs (``HubLink``) log in to one
replica each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import asyncpg
import httpx
import pytest

from config import Config, ConfigError, UserConfig, load_config
from messages_service.replicas import Replicas
from messages_service.storage import notes
from signaling.appwebsocket.errors import ConnectionClosed
from tests.messages_service.support import (
    DOMAIN,
    HubLink,
    RunningService,
    chat_post,
    running_service,
    service_config,
)

JsonObject = dict[str, Any]

WAIT = 10.0
"""Seconds a test waits for a note to cross (it takes milliseconds)."""
MEMBERS = 60
LONG = "x" * 120


def replica_config(database: str, node: str, *, members: int = 0) -> Config:
    """``service_config`` with replicas on, named ``node``; ``members`` more licensed
    users in the demo tenant, with names long enough to make a big ``GroupInd``."""
    config = service_config(database)
    demo, *others = config.tenants
    extra = tuple(
        UserConfig(
            sip=f"member{n:03}-{LONG}",
            dn=f"Member {n}",
            num=str(1000 + n),
            password="pw",
            licences=frozenset({"messages"}),
        )
        for n in range(members)
    )
    return replace(
        config,
        server=replace(config.server, node=node),
        messages=replace(config.messages, replicas=True),
        tenants=(replace(demo, users=(*demo.users, *extra)), *others),
    )


@contextlib.asynccontextmanager
async def replicas(
    database: str, *, members: int = 0
) -> AsyncIterator[tuple[RunningService, RunningService]]:
    async with (
        running_service(replica_config(database, "a", members=members)) as a,
        running_service(replica_config(database, "b", members=members)) as b,
    ):
        yield a, b


def replicas_of(running: RunningService) -> Replicas:
    found = running.service.replicas
    assert found is not None, "replicas are off"
    return found


async def heard(link: HubLink, mt: str, count: int) -> list[JsonObject]:
    """The first ``count`` notifications of type ``mt`` on ``link`` (waiting for them),
    taken out of ``link.notifications``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while sum(1 for note in link.notifications if note["mt"] == mt) < count:
        message = await link.client.recv(max(0.01, deadline - loop.time()))
        assert "src" not in message, message
        link.notifications.append(message)
    taken = [note for note in link.notifications if note["mt"] == mt][:count]
    for note in taken:
        link.notifications.remove(note)
    return taken


async def quiet(link: HubLink) -> list[JsonObject]:
    """Every notification left on ``link`` once both replicas have written theirs."""
    await asyncio.sleep(0.2)  # not an assert on time: only lets any stray copy arrive
    await link.sync()
    left, link.notifications = link.notifications, []
    return left


async def listening_pid(admin: asyncpg.Connection, running: RunningService) -> int:
    name = f"switchboard {replicas_of(running).run} listen"
    pid = await admin.fetchval(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1", name[:63]
    )
    assert pid is not None, f"no connection named {name!r}"
    return int(pid)


async def until_listening_again(
    admin: asyncpg.Connection, running: RunningService, old: int
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        with contextlib.suppress(AssertionError):
            if await listening_pid(admin, running) != old and replicas_of(running).up:
                return
        assert loop.time() < deadline, "the replica did not listen again"
        await asyncio.sleep(0.01)


async def health(running: RunningService) -> JsonObject:
    """``/healthz?ready=1`` of a service process (``--role messages``)."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.port}") as http:
        answer = await http.get("/healthz", params={"ready": "1"})
    body: JsonObject = answer.json()
    assert answer.status_code == (200 if body["status"] == "ok" else 503), body
    return body


async def test_every_kind_of_notification_reaches_the_other_replicas_hubs(
    postgres_url: str,
) -> None:
    async with replicas(postgres_url) as (a, b):
        hub_a, hub_b = await a.hub(), await b.hub()
        created = await hub_a.user("alice").one("WriteGroup", dn="Team")
        await hub_a.user("alice").one("WriteMember", grp=created["id"], member="bob")
        local = await heard(hub_a, "GroupInd", 2)  # before the answers, on A (12.23)
        assert await heard(hub_b, "GroupInd", 2) == local
        assert local[-1]["members"] == [
            {"sip": "alice", "admin": True},
            {"sip": "bob", "admin": False},
        ]

        stored = await hub_a.post(1, **chat_post("alice", "bob", 1, "read me"))
        assert stored["mt"] == "PostResult"
        badge = {"mt": "Badge", "domain": DOMAIN, "user": "bob", "count": 1}
        assert await heard(hub_b, "Badge", 1) == [badge]
        assert await heard(hub_a, "Badge", 1) == [badge]

        # bob reads through B: his Badge (ReadChat) and Seen (SetRead) reach B's own hub
        # before each answer (12.23), and A's hub after
        (row,) = await hub_b.user("bob").read("alice")
        assert [note["mt"] for note in hub_b.notifications] == ["Badge"]
        result = await hub_b.user("bob").ask("SetRead", id=row["id"])
        assert result == [{"mt": "SetReadResult", "id": row["id"], "src": result[0]["src"]}]
        assert [note["mt"] for note in hub_b.notifications] == ["Badge", "Seen"]
        seen = {"mt": "Seen", "domain": DOMAIN, "user": "bob", "peer": "alice"}
        assert (await heard(hub_a, "Seen", 1))[0] | seen == {**seen, "callId": "c0ffee", "seq": 1}
        assert (await heard(hub_a, "Badge", 1))[0]["count"] == 0

        deleted = await hub_a.user("alice").one("DeleteChat", sip="bob")
        assert deleted["mt"] == "DeleteChatResult", deleted
        (note,) = await heard(hub_b, "ChatDeleted", 1)
        assert (note["user"], note["sip"], note["by"]) == ("bob", "alice", "alice")

        # each hub got each notification once: A's own are not read back, B's not sent twice
        assert [m["mt"] for m in await quiet(hub_a)] == ["ChatDeleted"]
        assert [m["mt"] for m in await quiet(hub_b)] == ["Badge", "Seen"]
        assert replicas_of(a).published == 4 and replicas_of(b).published == 2
        assert replicas_of(a).delivered == 2 and replicas_of(b).delivered == 4


async def test_a_notification_bigger_than_notify_carries_arrives_whole(
    postgres_url: str,
) -> None:
    async with replicas(postgres_url, members=MEMBERS) as (a, b):
        hub_a, hub_b = await a.hub(), await b.hub()
        alice = hub_a.user("alice")
        group = await alice.one("WriteGroup", dn="Everyone")
        for n in range(MEMBERS):
            await alice.one("WriteMember", grp=group["id"], member=f"member{n:03}-{LONG}")
        sent = (await heard(hub_a, "GroupInd", MEMBERS + 1))[-1]
        assert len(json.dumps(sent).encode()) > 8000  # PostgreSQL's limit for a payload
        got = await heard(hub_b, "GroupInd", MEMBERS + 1)
        assert got[-1] == sent and len(got[-1]["members"]) == MEMBERS + 1


async def test_a_cut_listening_connection_loses_no_note(postgres_url: str) -> None:
    async with replicas(postgres_url) as (a, b):
        hub_a, hub_b = await a.hub(), await b.hub()
        admin = await asyncpg.connect(postgres_url)
        try:
            old = await listening_pid(admin, b)
            # Notes B never heard of: written with no NOTIFY, as while B did not listen.
            missed = [_group_ind(f"missed {n}") for n in range(3)]
            await admin.executemany(
                "INSERT INTO replica_notes (origin, body) VALUES ('elsewhere', $1)",
                [(json.dumps(note),) for note in missed],
            )
            await admin.execute("SELECT pg_terminate_backend($1)", old)
            renamed = [
                await hub_a.user("alice").one("WriteGroup", dn=f"after {n}") for n in range(3)
            ]  # group ids 1..3, made while B reconnects (or just after)
            await until_listening_again(admin, b, old)
            got = await heard(hub_b, "GroupInd", 6)
        finally:
            await admin.close()
        assert [note["dn"] for note in got] == [
            *(f"missed {n}" for n in range(3)),
            *(f"after {n}" for n in range(3)),
        ]
        assert [note["id"] for note in got[3:]] == [r["id"] for r in renamed]
        assert await quiet(hub_b) == []
        assert replicas_of(b).gaps == 0
        assert (await health(b))["checks"] == {"database": "up", "replicas": "up"}


async def test_a_cut_writing_connection_loses_no_note(postgres_url: str) -> None:
    async with replicas(postgres_url) as (a, b):
        hub_a, hub_b = await a.hub(), await b.hub()
        admin = await asyncpg.connect(postgres_url)
        try:
            name = f"switchboard {replicas_of(a).run} notes"
            cut = await admin.fetchval(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = $1",
                name,
            )
            assert cut is True
        finally:
            await admin.close()
        for n in range(3):  # A writes them once it has connected again
            await hub_a.user("alice").one("WriteGroup", dn=f"while cut {n}")
        got = await heard(hub_b, "GroupInd", 3)
        assert [note["dn"] for note in got] == [f"while cut {n}" for n in range(3)]
        assert await quiet(hub_b) == []


async def test_notes_pruned_before_they_were_read_close_the_hub_links_of_who_missed_them(
    postgres_url: str,
) -> None:
    async with replicas(postgres_url) as (a, b):
        hub_a, hub_b = await a.hub(), await b.hub()
        admin = await asyncpg.connect(postgres_url)
        try:
            old = await listening_pid(admin, b)
            await admin.execute(  # with no NOTIFY: neither replica reads it in time
                "INSERT INTO replica_notes (origin, body) VALUES ('elsewhere', $1)",
                json.dumps(_group_ind("never read")),
            )
            assert await notes.prune(admin, 0.0) == 1
            await admin.execute("SELECT pg_terminate_backend($1)", old)  # B reads again
            await admin.execute("SELECT pg_notify($1, 'elsewhere 0 0')", notes.CHANNEL)  # A too
            for link in (hub_b, hub_a):
                with pytest.raises(ConnectionClosed) as closed:
                    while True:  # each finds the gap and closes its hub links
                        await link.client.recv(WAIT)
                assert closed.value.code == 1012
            assert (replicas_of(a).gaps, replicas_of(b).gaps) == (1, 1)
            await until_listening_again(admin, b, old)
        finally:
            await admin.close()
        again_a, again_b = await a.hub(), await b.hub()  # hubs log in again, ask afresh
        await again_a.user("alice").one("WriteGroup", dn="after the gap")
        (note,) = await heard(again_b, "GroupInd", 1)
        assert note["dn"] == "after the gap"
        assert [m["dn"] for m in await quiet(again_a)] == ["after the gap"]  # its own
        assert await quiet(again_b) == []


async def test_one_service_pays_nothing_for_replicas(database_url: str) -> None:
    async with running_service(service_config(database_url)) as running:
        assert running.service.replicas is None
        assert await health(running) == {"status": "ok", "checks": {"database": "up"}}
        hub = await running.hub()
        await hub.user("alice").one("WriteGroup", dn="Team")
        assert len(await heard(hub, "GroupInd", 1)) == 1
        if database_url.startswith("postgres"):
            admin = await asyncpg.connect(database_url)
            try:
                assert await admin.fetchval("SELECT COUNT(*) FROM replica_notes") == 0
                names = await admin.fetch(
                    "SELECT application_name FROM pg_stat_activity WHERE datname = $1",
                    database_url.rpartition("/")[2],
                )
                assert not [r for r in names if r[0].startswith("switchboard")], names
            finally:
                await admin.close()


def test_replicas_need_postgres() -> None:
    env = {"SWITCHBOARD_MESSAGES_REPLICAS": "true"}
    with pytest.raises(ConfigError) as refused:
        load_config(None, env=env)
    assert refused.value.where == "messages.replicas"
    sqlite = {**env, "SWITCHBOARD_MESSAGES_DATABASE": "sqlite:///tmp/messages.sqlite3"}
    with pytest.raises(ConfigError):
        load_config(None, env=sqlite)
    postgres = {**env, "SWITCHBOARD_MESSAGES_DATABASE": "postgres://db.example/messages"}
    assert load_config(None, env=postgres).messages.replicas is True


def _group_ind(dn: str) -> JsonObject:
    return {"mt": "GroupInd", "domain": DOMAIN, "id": 999, "sip": "group-999", "dn": dn}
