"""The admin API's directory changes across hub nodes (SCALE.md decision 8): nodes in
this process on a private ``redis-server`` and a scratch PostgreSQL database, real
uvicorn servers, real HTTP and WebSocket clients. A change made through one node is
seen by the others (each test polls with a generous bound: never a claim on speed),
by a node started later, by a node whose subscription was cut, by a messages service of
the cluster, and two nodes changing at once lose nothing; ``/healthz`` shows whether the
database answers."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from config import Config
from signaling.app import create_app
from signaling.appwebsocket.errors import LoginFailed
from tests.cluster_services import ClusterServices, cluster_services, node_config, running_nodes
from tests.messages_service.support import running_service, service_config
from tests.support import RunningServer, make_config, running_server
from tests.tcp_proxy import tcp_proxy

ADMIN = ("admin", "cluster-admin-secret")
BOUND = 15.0
"""Seconds a change may take to be seen everywhere before a test fails: generous."""
ERIN = {"dn": "Erin Example", "num": "150", "password": "erin-pw", "licences": []}


def admin_node(services: ClusterServices, name: str, **cluster: Any) -> Config:
    config = make_config(messages=False, burst=5000, rate_close_after=5000)
    config = replace(config, admin=replace(config.admin, password=ADMIN[1]))
    return node_config(services, name, config, **cluster)


def nodes(
    *names: str,
) -> contextlib.AbstractAsyncContextManager[tuple[ClusterServices, list[RunningServer]]]:
    return running_nodes(admin_node, *names)


def admin(node: RunningServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=node.http, auth=ADMIN, timeout=10)


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` until it holds, for at most ``BOUND`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BOUND
    while not await check():
        assert loop.time() < deadline, f"not seen within {BOUND} s: {what}"
        await asyncio.sleep(0.02)


async def shown(node: RunningServer, path: str) -> Any:
    """What ``GET path`` of the node's admin API answers (None for 404)."""
    async with admin(node) as http:
        answer = await http.get(path)
    if answer.status_code == 404:
        return None
    assert answer.status_code == 200, answer.text
    return answer.json()


async def seen_everywhere(
    running: list[RunningServer], path: str, wanted: Callable[[Any], bool]
) -> None:
    for node in running:

        async def check(node: RunningServer = node) -> bool:
            return wanted(await shown(node, path))

        await until(check, f"{path} on node {node.config.server.node}")


async def put(node: RunningServer, path: str, fields: dict[str, Any]) -> httpx.Response:
    async with admin(node) as http:
        answer = await http.put(path, json=fields)
    assert answer.status_code in (200, 201), answer.text
    return answer


async def test_a_change_on_one_node_is_seen_on_the_others() -> None:
    async with nodes("a", "b", "c") as (_, (a, b, c)):
        await put(a, "/admin/users/example.com/erin", ERIN)
        await seen_everywhere([b, c], "/admin/users/example.com/erin", lambda user: bool(user))
        for node in (b, c):  # and it works there: erin logs in and registers
            erin = await node.phone("erin", password="erin-pw")
            await erin.sync()

        await put(a, "/admin/queues/example.com/support", {"agents": ["carol", "erin"]})
        await seen_everywhere(
            [b, c],
            "/admin/queues/example.com/support",
            lambda queue: queue["agents"] == ["carol", "erin"],
        )

        async with admin(a) as http:
            assert (await http.delete("/admin/users/example.com/dave")).status_code == 204
        await seen_everywhere([b, c], "/admin/users/example.com/dave", lambda user: user is None)
        with pytest.raises(LoginFailed):
            await c.phone("dave")


async def test_a_queue_changed_on_one_node_offers_its_chats_as_changed_on_another() -> None:
    """What a change does on the node that made it, it does on every node: a visitor's
    chat on node b goes to the agents node a gave the queue."""
    async with nodes("a", "b") as (_, (a, b)):
        await put(a, "/admin/queues/example.com/support", {"agents": ["carol"]})
        await seen_everywhere(
            [b], "/admin/queues/example.com/support", lambda queue: queue["agents"] == ["carol"]
        )
        carol, alice = await b.phone("carol"), await b.phone("alice")
        async with httpx.AsyncClient(base_url=b.http, timeout=10) as http:
            answer = await http.post("/api/visitors", json={"name": "Ann Buyer"})
        assert answer.status_code == 201, answer.text
        account = answer.json()
        visitor = await b.phone(account["sip"], password=account["password"])
        await visitor.setup(1, "support")
        await visitor.sig(1, "call_proc")
        _number, offer = await carol.offered()
        assert offer["cd"] == {"sip": "support"}
        await alice.sync()  # alice, no longer an agent of support, was offered nothing


async def test_a_node_started_after_a_change_has_it() -> None:
    async with nodes("a") as (services, (a,)):
        await put(a, "/admin/users/example.com/erin", ERIN)
        await put(a, "/admin/users/example.com/erin", {"dn": "Erin Renamed"})
        async with admin(a) as http:
            assert (await http.put("/admin/tenants/new.example")).status_code == 201
        await put(a, "/admin/users/new.example/zoe", {"password": "zoe-pw"})
        async with running_server(admin_node(services, "b")) as b:
            user = await shown(b, "/admin/users/example.com/erin")
            assert (user["dn"], user["num"]) == ("Erin Renamed", "150")
            assert (await shown(b, "/admin/users/new.example/zoe"))["sip"] == "zoe"
            zoe = await b.phone("zoe", domain="new.example", password="zoe-pw")
            await zoe.sync()


async def test_a_node_whose_subscription_was_cut_reads_the_changes_it_missed() -> None:
    """Node b reaches Redis through a proxy the test cuts: the announcement of a change
    made meanwhile on node a never reaches b, which reads the version again once its
    subscription is back. The lease is long enough for the cut not to end b's run."""
    async with (
        cluster_services() as services,
        tcp_proxy(services.redis.port) as proxy,
        running_server(admin_node(services, "a", lease=10.0, heartbeat=2.0)) as a,
    ):
        config = admin_node(services, "b", lease=10.0, heartbeat=2.0)
        proxied = replace(config.cluster, redis=f"redis://127.0.0.1:{proxy.port}/0")
        async with running_server(replace(config, cluster=proxied)) as b:
            proxy.cut()
            before = proxy.accepted
            await put(a, "/admin/users/example.com/erin", ERIN)
            await put(a, "/admin/queues/example.com/support", {"agents": ["erin"]})
            proxy.heal()
            await seen_everywhere([b], "/admin/users/example.com/erin", lambda user: bool(user))
            await seen_everywhere(
                [b], "/admin/queues/example.com/support", lambda queue: queue["agents"] == ["erin"]
            )
            assert proxy.accepted > before  # b did reconnect to learn of it


async def test_changes_made_at_once_on_two_nodes_are_all_kept() -> None:
    async with nodes("a", "b", "c") as (services, (a, b, c)):
        for round_ in range(10):
            # two users, one on each node, at the same instant
            await asyncio.gather(
                put(a, f"/admin/users/example.com/a{round_}", {"password": "pw"}),
                put(b, f"/admin/users/example.com/b{round_}", {"password": "pw"}),
            )
        # and one user changed on both at once: the last change wins, on every node alike
        await asyncio.gather(
            put(a, "/admin/users/example.com/carol", {"dn": "Carol from a"}),
            put(b, "/admin/users/example.com/carol", {"dn": "Carol from b"}),
        )
        wanted = {f"{node}{n}" for node in "ab" for n in range(10)}
        for node in (a, b, c):

            async def everyone(node: RunningServer = node) -> bool:
                users = (await shown(node, "/admin/users?domain=example.com"))["users"]
                return wanted <= {user["sip"] for user in users}

            await until(everyone, f"all 20 users on node {node.config.server.node}")
        kept = await _kept_dn(services.database, "carol")
        assert kept in ("Carol from a", "Carol from b")
        await seen_everywhere(
            [a, b, c], "/admin/users/example.com/carol", lambda user: user["dn"] == kept
        )


async def _kept_dn(database: str, sip: str) -> str:
    connection = await asyncpg.connect(database)
    try:
        entry = await connection.fetchval(
            "SELECT entry->>'dn' FROM directory_changes WHERE kind = 'users' AND name = $1", sip
        )
    finally:
        await connection.close()
    assert isinstance(entry, str)
    return entry


async def test_a_messages_service_of_the_cluster_follows_the_changes(tmp_path: Path) -> None:
    """``--role messages`` with the cluster's database reads users and licences there:
    carol, unlicensed in the configuration, becomes a group member once a node's admin
    API gives her the licence, and erin, added through the admin API, too."""
    async with nodes("a") as (services, (a,)):
        config = service_config(f"sqlite://{(tmp_path / 'messages.sqlite3').as_posix()}")
        config = replace(
            config,
            cluster=replace(config.cluster, database=services.database),
            files=replace(config.files, dir=str(tmp_path / "files")),  # shared: 12.45
        )
        async with running_service(config, functools.partial(create_app, role="messages")) as m:
            alice = (await m.hub()).user("alice")
            group = (await alice.one("WriteGroup", dn="Team"))["id"]
            refused = await alice.one("WriteMember", grp=group, member="carol")
            assert refused["code"] == "unlicensed", refused
            await put(a, "/admin/users/example.com/carol", {"licences": ["messages"]})
            await put(a, "/admin/users/example.com/erin", {**ERIN, "licences": ["messages"]})
            for member in ("carol", "erin"):

                async def added(member: str = member) -> bool:
                    answer = await alice.one("WriteMember", grp=group, member=member)
                    return bool(answer["mt"] == "WriteMemberResult")

                await until(added, f"{member} a member")
            async with httpx.AsyncClient(base_url=m.http) as http:
                health = (await http.get("/healthz")).json()
            assert health["checks"] == {"database": "up", "directory": "up"}, health


async def test_healthz_shows_the_directory_s_database_without_draining_the_node() -> None:
    """The cluster's database cut off (through a proxy the test pauses): ``checks``
    say ``directory: down`` and the node is ``degraded``, but ``?ready=1`` stays 200:
    logins and chats go on without it. Back, it is ``up`` again."""
    async with cluster_services() as services, tcp_proxy(_port(services.database)) as proxy:
        config = admin_node(services, "a")
        cluster = replace(config.cluster, database=_through(services.database, proxy.port))
        async with (
            running_server(replace(config, cluster=cluster)) as a,
            httpx.AsyncClient(base_url=a.http, timeout=10) as http,
        ):
            health = (await http.get("/healthz")).json()
            assert health == {"status": "ok", "checks": {"bus": "up", "directory": "up"}}
            proxy.pause()
            health = (await http.get("/healthz")).json()
            assert health["checks"]["directory"] == "down" and health["status"] == "degraded"
            assert (await http.get("/healthz?ready=1")).status_code == 200
            proxy.heal()

            async def back() -> bool:
                return bool((await http.get("/healthz")).json()["status"] == "ok")

            await until(back, "the directory's database up again")


def _port(url: str) -> int:
    return urlsplit(url).port or 5432


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=f"{parts.netloc.rsplit(':', 1)[0]}:{port}").geturl()
