"""Hub nodes in child processes sharing a private Redis and a scratch PostgreSQL database,
for the tests of a cluster made of real ``switchboard serve`` processes (SCALE.md
"Testing on one 2-core machine").

Each node is ``switchboard serve --node NAME`` with one config: the cluster's Redis and
database, a short lease (so a dead node is noticed within about two seconds), rate
limits out of the way, and one tenant, ``cluster.test``, whose users and other settings
(queues, webhooks, the admin login) a test chooses with ``Tenant``. Chat is volatile
unless the cluster runs with the messages service: then every hub is ``--role hub``
linked to one ``--role messages`` process on the same PostgreSQL database, and every
user holds the ``messages`` licence. No resume grace unless a test gives one
(``grace``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

from signaling.app import HUB_WEBSOCKET_PATH, MESSAGES_WEBSOCKET_PATH
from signaling.appwebsocket.client import AppWebsocketClient
from signaling.bus import keys
from tests.cluster_services import cluster_services
from tests.integration.processes import HOST, ServerProcess, free_port
from tests.redis_server import RedisServer
from tests.signaling.bus.test_cross_node_presence import until_redis
from tests.support import Phone

__all__ = ["DOMAIN", "LEASE", "ClusterNodes", "Tenant", "cluster", "gone"]

DOMAIN = "cluster.test"
LEASE = 1.5
"""Seconds a node's lease lasts; its heartbeat is a fifth of it."""


@dataclass(frozen=True)
class Tenant:
    """What the cluster's tenant holds: its users (sip -> the fields of the user's table
    besides its password, which the harness makes) and any other TOML tables (queues of
    the tenant, ``[webhooks]``, ``[admin]``)."""

    users: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: {"alice": {}, "bob": {}, "carol": {}}
    )
    settings: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Service:
    """The messages service the hubs link to."""

    process: ServerProcess
    secret: str

    @property
    def url(self) -> str:
        return f"ws://{HOST}:{self.process.port}{MESSAGES_WEBSOCKET_PATH}"


class ClusterNodes:
    def __init__(
        self,
        directory: Path,
        redis_url: str | None,
        database: str,
        names: tuple[str, ...],
        *,
        redis_for: dict[str, str] | None = None,
        tenant: Tenant | None = None,
        messages: bool = False,
        grace: float = 0.0,
    ) -> None:
        """``redis_url`` None: the nodes stand alone (one node is a whole Switchboard, to
        compare a cluster with). ``redis_for``: the Redis URL of some nodes, if not
        ``redis_url`` (a proxy the test owns in between). ``messages``: the hubs use a
        messages service process on ``database`` (``service``). ``grace``:
        ``signaling.resume_grace`` in seconds."""
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.redis_url = redis_url
        self.database = database
        self.tenant = tenant or Tenant()
        self.passwords = {sip: secrets.token_hex(12) for sip in self.tenant.users}
        self.licensed = messages
        self.grace = grace
        self.service = self._service(database) if messages else None
        self.config = directory / "cluster.toml"
        self.config.write_text(self._config(redis_url, database))
        self._configs: dict[str, Path] = {}
        for name, url in (redis_for or {}).items():
            self._configs[name] = directory / f"cluster-{name}.toml"
            self._configs[name].write_text(self._config(url, database))
        self.nodes = {name: self._node(name) for name in names}

    def _service(self, database: str) -> _Service:
        secret = secrets.token_hex(16)
        config = self.directory / "service.toml"
        link = ["[messages]", f"password = {json.dumps(secret)}"]
        config.write_text(
            "\n".join([*link, f"database = {json.dumps(database)}", *self._tenant_lines()])
        )
        process = ServerProcess(
            "messages",
            config,
            self.directory / "service",
            free_port(),
            self.directory / "service.log",
        )
        return _Service(process, secret)

    def _node(self, name: str) -> ServerProcess:
        return ServerProcess(
            "all" if self.service is None else "hub",
            self._configs.get(name, self.config),
            self.directory / name,
            free_port(),
            self.directory / f"{name}.log",
            "--node",
            name,
        )

    @property
    def processes(self) -> list[ServerProcess]:
        service = [self.service.process] if self.service is not None else []
        return [*self.nodes.values(), *service]

    async def start(self) -> None:
        """Every process at once (a hub's link to the messages service retries until
        the service listens)."""
        for process in self.processes:
            process.spawn()
        await asyncio.gather(*(process.listening() for process in self.processes))
        await asyncio.gather(*(self.ready(name) for name in self.nodes))

    async def ready(self, name: str) -> None:
        """Until node ``name`` says it is ready (``/healthz?ready=1``: its bus and its link
        to the messages service are up)."""
        async with httpx.AsyncClient(base_url=self.http(name), timeout=5) as http:
            for _ in range(1000):
                if (await http.get("/healthz?ready=1")).status_code == 200:
                    return
                await asyncio.sleep(0.02)
        raise AssertionError(f"node {name} never ready:\n{self.nodes[name].log_tail()}")

    def stop(self) -> None:
        """Every process is told to stop at once, then waited for."""
        for process in self.processes:
            if process.running:
                assert process.process is not None
                process.process.terminate()
        for process in self.processes:
            process.stop()

    def url(self, name: str) -> str:
        return f"ws://{HOST}:{self.nodes[name].port}{HUB_WEBSOCKET_PATH}"

    def http(self, name: str) -> str:
        return f"http://{HOST}:{self.nodes[name].port}"

    async def login(self, name: str, sip: str) -> Phone:
        """A logged-in client of ``sip`` on node ``name``, not registered (a board)."""
        client = await AppWebsocketClient.connect(self.url(name), max_size=None)
        await client.login(password=self.passwords[sip], sip=sip, domain=DOMAIN)
        return Phone(client, sip)

    async def phone(self, name: str, sip: str) -> Phone:
        """A registered client of ``sip`` on node ``name``, once every node can find it
        (the node writes the registration to Redis just after ``RegisterResult``)."""
        phone = await self.login(name, sip)
        if self.redis_url is None:
            await phone.register()
            return phone
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
            f"== {process.log.stem} log (last lines)\n{process.log_tail()}"
            for process in self.processes
        )

    def _config(self, redis_url: str | None, database: str) -> str:
        lines = []
        if redis_url is not None:
            lines += [
                "[cluster]",
                f"redis = {json.dumps(redis_url)}",
                f"database = {json.dumps(database)}",
                f'lease = "{LEASE}s"',
                f'heartbeat = "{LEASE / 5}s"',
            ]
        lines += ["[messages]", *self._link()]
        lines += ["[signaling]", f'resume_grace = "{self.grace}s"', *self._tenant_lines()]
        return "\n".join(lines)

    def _link(self) -> list[str]:
        if self.service is None:
            return ["enabled = false"]
        return [
            f"url = {json.dumps(self.service.url)}",
            f"password = {json.dumps(self.service.secret)}",
            'reconnect_min = "50ms"',
            'reconnect_max = "250ms"',
        ]

    def _tenant_lines(self) -> list[str]:
        """What every process of the cluster shares: the tenant, limits out of the way,
        trace flags off."""
        lines = [
            "[login]",
            f'default_domain = "{DOMAIN}"',
            "[limits]",
            "rate = 1000000.0",
            "burst = 1000000",
            "[trace]",
            "flags = []",
        ]
        licences = ["messages"] if self.licensed else []
        for sip, fields in self.tenant.users.items():
            user = {"password": self.passwords[sip], "licences": licences, **fields}
            lines.append(f'[tenants."{DOMAIN}".users.{sip}]')
            lines += [f"{key} = {json.dumps(value)}" for key, value in user.items()]
        return [*lines, *self.tenant.settings, ""]


@contextlib.asynccontextmanager
async def cluster(
    tmp_path: Path, *names: str, tenant: Tenant | None = None, messages: bool = False
) -> AsyncIterator[tuple[RedisServer, ClusterNodes]]:
    """Nodes ``names`` on a private Redis and a scratch database, started; their logs'
    last lines are printed when the test fails."""
    async with cluster_services() as services:
        nodes = ClusterNodes(
            tmp_path,
            services.redis.url,
            services.database,
            names,
            tenant=tenant,
            messages=messages,
        )
        try:
            await nodes.start()
            yield services.redis, nodes
        except BaseException:
            print(nodes.logs())
            raise
        finally:
            nodes.stop()


async def gone(redis: RedisServer, *names: str) -> None:
    """Until none of these keys is in Redis (a survivor cleaned up after a dead node, a
    group's home was let go)."""

    async def absent(client: Any) -> bool:
        return not await client.exists(*names)

    await until_redis(redis, absent, f"gone from Redis: {names}")
