"""A visitor account across hub nodes in separate processes (docs/protocol.md 12.44, 12.47):
made through one node's ``POST /api/visitors``, it is listed by another node's
``GET /admin/visitors`` and logs in and registers there."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx

from signaling.appwebsocket.client import AppWebsocketClient
from tests.integration.cluster_processes import DOMAIN, Tenant, cluster
from tests.support import Phone


async def test_a_visitor_made_on_one_node_logs_in_on_another(tmp_path: Path) -> None:
    password = secrets.token_hex(12)
    tenant = Tenant(settings=("[admin]", f'password = "{password}"'))
    async with cluster(tmp_path, "a", "b", tenant=tenant) as (_, nodes):
        async with httpx.AsyncClient(timeout=10) as http:
            made = await http.post(f"{nodes.http('a')}/api/visitors", json={"name": "Ann"})
            assert made.status_code == 201, made.text
            account = made.json()
            listed = await http.get(f"{nodes.http('b')}/admin/visitors", auth=("admin", password))
        assert listed.status_code == 200, listed.text
        assert listed.json()["visitors"] == [{"domain": DOMAIN, "sip": account["sip"], "dn": "Ann"}]
        client = await AppWebsocketClient.connect(nodes.url("b"), max_size=None)
        try:
            result = await client.login(
                password=account["password"], sip=account["sip"], domain=DOMAIN
            )
            assert result["ok"] is True and result["dn"] == "Ann"
            phone = Phone(client, account["sip"])
            assert (await phone.register())["mt"] == "RegisterResult"
            await phone.sync()
        finally:
            await client.close()
