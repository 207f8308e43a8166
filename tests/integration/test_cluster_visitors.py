"""A visitor account across hub nodes in separate processes (docs/protocol.md 12.44): made
through one node's ``POST /api/visitors``, it logs in and registers on another."""

from __future__ import annotations

from pathlib import Path

import httpx

from signaling.appwebsocket.client import AppWebsocketClient
from tests.integration.cluster_processes import DOMAIN
from tests.integration.test_cluster_nodes import cluster
from tests.support import Phone


async def test_a_visitor_made_on_one_node_logs_in_on_another(tmp_path: Path) -> None:
    async with cluster(tmp_path, "a", "b") as (_, nodes):
        async with httpx.AsyncClient(timeout=10) as http:
            made = await http.post(f"{nodes.http('a')}/api/visitors", json={"name": "Ann"})
        assert made.status_code == 201, made.text
        account = made.json()
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
