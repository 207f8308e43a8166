"""What every node of a cluster shows alike, with nodes as separate processes (issue 17's
tests): an admin change made through one node is in force on the others within a
second, and a user's presence follows them across nodes, dead ones included."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import httpx

from signaling.bus import keys
from tests.integration.cluster_processes import DOMAIN, LEASE, Tenant, cluster, gone
from tests.signaling.bus.test_cross_node_presence import notify, watch

SEEN_WITHIN = 1.0
"""Seconds an admin change may take to reach every node (the issue's bound)."""


async def test_an_admin_change_on_one_node_is_seen_on_the_others_within_a_second(
    tmp_path: Path,
) -> None:
    password = secrets.token_hex(12)
    tenant = Tenant(settings=("[admin]", f'password = "{password}"'))
    async with cluster(tmp_path, "a", "b", "c", tenant=tenant) as (_, nodes):
        erin = {"dn": "Erin Example", "num": "150", "password": "erin-pw", "licences": []}
        path = f"/admin/users/{DOMAIN}/erin"
        auth = ("admin", password)
        async with httpx.AsyncClient(auth=auth, timeout=10) as http:
            answer = await http.put(f"{nodes.http('a')}{path}", json=erin)
            assert answer.status_code == 201, answer.text
            loop = asyncio.get_running_loop()
            deadline = loop.time() + SEEN_WITHIN
            for name in ("b", "c"):
                while (await http.get(f"{nodes.http(name)}{path}")).status_code != 200:
                    assert loop.time() < deadline, f"erin not seen on node {name} in a second"
                    await asyncio.sleep(0.01)
        nodes.passwords["erin"] = "erin-pw"
        for name in ("b", "c"):  # and in force there: erin logs in and registers
            await (await nodes.phone(name, "erin")).sync()


async def test_an_admin_token_from_one_node_works_on_every_node_until_logged_out_on_any(
    tmp_path: Path,
) -> None:
    """Behind a balancer each request of the admin pages may reach another node: the token
    ``POST /admin/login`` gave on a is good on b and c, and a logout on c ends it on a."""
    password = secrets.token_hex(12)
    tenant = Tenant(settings=("[admin]", f'password = "{password}"'))
    async with (
        cluster(tmp_path, "a", "b", "c", tenant=tenant) as (_, nodes),
        httpx.AsyncClient(timeout=10) as http,
    ):
        login = {"user": "admin", "password": password}
        answer = await http.post(f"{nodes.http('a')}/admin/login", json=login)
        assert answer.status_code == 200, answer.text
        bearer = {"Authorization": f"Bearer {answer.json()['token']}"}
        for name in ("a", "b", "c"):
            users = await http.get(f"{nodes.http(name)}/admin/users", headers=bearer)
            assert users.status_code == 200, (name, users.text)
        ended = await http.post(f"{nodes.http('c')}/admin/logout", headers=bearer)
        assert ended.status_code == 204
        for name in ("a", "b", "c"):
            users = await http.get(f"{nodes.http(name)}/admin/users", headers=bearer)
            assert users.status_code == 401, (name, users.text)


async def test_presence_follows_a_user_across_nodes_and_a_killed_node_leaves_no_ghost(
    tmp_path: Path,
) -> None:
    async with cluster(tmp_path, "a", "b") as (redis, nodes):
        carol = await nodes.phone("a", "carol")
        assert await watch(carol, 1, "bob") == notify("closed")
        bob = await nodes.phone("b", "bob")
        assert await carol.fty(1) == notify("open", "available")
        await bob.client.close()
        assert await carol.fty(1) == notify("closed")
        await nodes.phone("b", "bob")
        assert await carol.fty(1) == notify("open", "available")
        nodes.nodes["b"].kill()
        # declared dead after its lease and two heartbeats of a's: closed, once
        closed = await carol.next(timeout=LEASE * 4)
        assert closed["sig"]["fty"] == [notify("closed")], closed
        await gone(redis, keys.registrations(DOMAIN, "bob"), keys.presence(DOMAIN, "bob"))
        await carol.sync()  # no ghost comes back
