"""Hub nodes in child processes sharing a private Redis and a scratch PostgreSQL database,
for the tests of a cluster that kill a node (SCALE.md "Testing on one 2-core machine").

Each node is ``switchboard serve --node NAME`` with one config: the cluster's Redis and
database, a short lease (so a dead node is noticed within about two seconds), volatile
chat (the messages service is not part of these tests), rate limits out of the way, and
no resume grace unless a test gives one (``grace``).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from signaling.app import HUB_WEBSOCKET_PATH
from signaling.appwebsocket.client import AppWebsocketClient
from signaling.bus import keys
from tests.integration.processes import HOST, ServerProcess, free_port
from tests.support import Phone

__all__ = ["LEASE", "ClusterNodes"]

DOMAIN = "cluster.test"
LEASE = 1.5
"""Seconds a node's lease lasts; its heartbeat is a fifth of it."""


class ClusterNodes:
    def __init__(
        self,
        directory: Path,
        redis_url: str,
        database: str,
        names: tuple[str, ...],
        *,
        redis_for: dict[str, str] | None = None,
        grace: float = 0.0,
    ) -> None:
        """``redis_for``: the Redis URL of some nodes, if not ``redis_url`` (a proxy the
        test owns in between); ``grace``: ``signaling.resume_grace`` in seconds."""
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.redis_url = redis_url
        self.passwords = {sip: secrets.token_hex(12) for sip in ("alice", "bob", "carol")}
        self.config = directory / "cluster.toml"
        self.config.write_text(_config(redis_url, database, self.passwords, grace))
        self._configs: dict[str, Path] = {}
        for name, url in (redis_for or {}).items():
            self._configs[name] = directory / f"cluster-{name}.toml"
            self._configs[name].write_text(_config(url, database, self.passwords, grace))
        self.nodes = {name: self._node(name) for name in names}

    def _node(self, name: str) -> ServerProcess:
        return ServerProcess(
            "all",
            self._configs.get(name, self.config),
            self.directory / name,
            free_port(),
            self.directory / f"{name}.log",
            "--node",
            name,
        )

    async def start(self) -> None:
        for node in self.nodes.values():
            await node.start()

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()

    def url(self, name: str) -> str:
        return f"ws://{HOST}:{self.nodes[name].port}{HUB_WEBSOCKET_PATH}"

    def http(self, name: str) -> str:
        return f"http://{HOST}:{self.nodes[name].port}"

    async def phone(self, name: str, sip: str) -> Phone:
        """A registered client of ``sip`` on node ``name``, once every node can find it
        (the node writes the registration to Redis just after ``RegisterResult``)."""
        client = await AppWebsocketClient.connect(self.url(name), max_size=None)
        await client.login(password=self.passwords[sip], sip=sip, domain=DOMAIN)
        phone = Phone(client, sip)
        redis = aioredis.Redis.from_url(self.redis_url)
        try:
            before = await redis.hlen(keys.registrations(DOMAIN, sip))
            await phone.register()
            for _ in range(500):
                if await redis.hlen(keys.registrations(DOMAIN, sip)) > before:
                    return phone
                await asyncio.sleep(0.01)
        finally:
            await redis.aclose()
        raise AssertionError(f"{sip}'s registration on node {name} never reached Redis")

    async def resume(
        self, name: str, old: Phone, seqs: dict[str, int]
    ) -> tuple[Phone, dict[str, Any]]:
        """A new connection of ``old``'s user on node ``name`` registers with ``old``'s
        resume token and ``seqs`` (PROTOCOL §4.9): the new phone and its RegisterResult."""
        client = await AppWebsocketClient.connect(self.url(name), max_size=None)
        await client.login(password=self.passwords[old.sip], sip=old.sip, domain=DOMAIN)
        phone = Phone(client, old.sip)
        register = {"api": "PbxSignal", "mt": "Register", "src": "reg", "flags": "NO_MEDIA_CALL"}
        await client.send({**register, "resume": old.resume_token, "seqs": seqs})
        result = await phone.next()
        assert result["mt"] == "RegisterResult" and "err" not in result, result
        phone.resume_token = result["resume"]
        return phone, result

    def logs(self) -> str:
        return "\n".join(
            f"== node {name} log (last lines)\n{node.log_tail()}"
            for name, node in self.nodes.items()
        )


def _config(redis_url: str, database: str, passwords: dict[str, str], grace: float) -> str:
    lines = [
        "[cluster]",
        f"redis = {json.dumps(redis_url)}",
        f"database = {json.dumps(database)}",
        f'lease = "{LEASE}s"',
        f'heartbeat = "{LEASE / 5}s"',
        "[messages]",
        "enabled = false",
        "[login]",
        f'default_domain = "{DOMAIN}"',
        "[limits]",
        "rate = 1000000.0",
        "burst = 1000000",
        "[signaling]",
        f'resume_grace = "{grace}s"',
        "[trace]",
        "flags = []",
    ]
    for sip, password in passwords.items():
        lines += [f'[tenants."{DOMAIN}".users.{sip}]', f"password = {json.dumps(password)}"]
    return "\n".join([*lines, ""])
