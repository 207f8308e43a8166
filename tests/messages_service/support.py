"""Test support: the messages service alone on a loopback uvicorn server, and a scripted
hub that talks to it the way the real hub does (PROTOCOL §12.10).

``HubLink.ask()`` sends a request with a fresh ``src`` and returns its answers (the
``…Ind``s and the final frame); notifications (frames without ``src``) that arrive in
between are kept in ``notifications``. ``sync()`` sends a KeepAlive and reads up to its
echo, which proves every frame queued before it has arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import uvicorn
from starlette.applications import Starlette

from config import Config, TenantConfig, UserConfig, load_config
from messages_service import MESSAGES_PATH, MessagesService, create_messages_app
from signaling.appwebsocket.client import AppWebsocketClient
from signaling.server import bound_socket, uvicorn_config

JsonObject = dict[str, Any]

PASSWORD = "service-secret-for-tests"
DOMAIN = "example.com"
OTHER_DOMAIN = "other.org"

OTHER_TENANT = TenantConfig(
    domain=OTHER_DOMAIN,
    users=(
        UserConfig(
            sip="alice", dn="Alice Other", num="201", password="x", licences=frozenset({"messages"})
        ),
        UserConfig(sip="erin", dn="Erin Other", num="202", password="y"),
    ),
)


def service_config(database_url: str, **login: Any) -> Config:
    """The default config (demo tenant: alice and bob licensed, carol and dave not) plus a
    second tenant, storing in ``database_url``."""
    config = load_config(None, env={})
    return replace(
        config,
        tenants=(*config.tenants, OTHER_TENANT),
        login=replace(config.login, **login),
        messages=replace(config.messages, database=database_url, password=PASSWORD),
    )


@dataclass
class RunningService:
    service: MessagesService
    port: int
    config: Config
    links: list[HubLink] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{MESSAGES_PATH}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def connect(self) -> AppWebsocketClient:
        client = await AppWebsocketClient.connect(self.url, max_size=None)
        self.links.append(HubLink(client))
        return client

    async def hub(self) -> HubLink:
        """A logged-in hub link that has sent its PbxInfo."""
        client = await self.connect()
        await client.login(app="messages", sip="messages", domain=DOMAIN, password=PASSWORD)
        await client.send({"mt": "PbxInfo", "domain": DOMAIN, "pbx": "test-hub"})
        return self.links[-1]


@contextlib.asynccontextmanager
async def running_service(
    config: Config, make_app: Callable[[Config], Starlette] = create_messages_app, **options: Any
) -> AsyncIterator[RunningService]:
    """The service (``make_app``'s: ``create_messages_app`` unless a test wants what
    ``--role messages`` serves) served by uvicorn on a free loopback port; ``options`` go
    over ``uvicorn_config``'s (``ws=`` picks another WebSocket protocol)."""
    app = make_app(config)
    sock = bound_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn_config(app, config, log_level="warning", **options))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        running = RunningService(app.state.messages_service, sock.getsockname()[1], config)
        try:
            yield running
        finally:
            for link in running.links:
                with contextlib.suppress(Exception):
                    await link.client.close()
    finally:
        server.should_exit = True
        await task
        sock.close()


class HubLink:
    """A scripted hub on the service's AppWebsocket."""

    def __init__(self, client: AppWebsocketClient) -> None:
        self.client = client
        self.notifications: list[JsonObject] = []
        self._tokens = itertools.count(1)

    def user(self, sip: str, domain: str = DOMAIN) -> Session:
        return Session(self, sip, domain)

    async def ask(self, mt: str, **fields: Any) -> list[JsonObject]:
        """Send one request; its answers, up to and including the final one."""
        src = f"q{next(self._tokens)}"
        await self.client.send({"mt": mt, "src": src, **fields})
        answers: list[JsonObject] = []
        while True:
            message = await self.client.recv()
            if "src" not in message:
                self.notifications.append(message)
                continue
            assert message["src"] == src, message
            answers.append(message)
            if not message["mt"].endswith("Ind"):
                return answers

    async def post(self, key: int, **fields: Any) -> JsonObject:
        """Send one Post with outbox key ``key``; its PostResult (or Error). Non-ASCII
        goes as ``\\u`` escapes, so tests can send what no UTF-8 frame holds (``\\ud800``)."""
        await self.client.send_text(json.dumps({"mt": "Post", "src": key, "type": 1, **fields}))
        return await self.answer_to(key)

    async def answer_to(self, src: object) -> JsonObject:
        while True:
            message = await self.client.recv()
            if "src" not in message:
                self.notifications.append(message)
                continue
            assert message["src"] == src, message
            return message

    async def sync(self) -> None:
        """Read everything queued before now (notifications land in ``notifications``)."""
        await self.client.send({"mt": "KeepAlive"})
        while (message := await self.client.recv()) != {"mt": "KeepAlive"}:
            assert "src" not in message, message
            self.notifications.append(message)

    async def take(self, mt: str) -> list[JsonObject]:
        """Sync, then remove and return the notifications of type ``mt``."""
        await self.sync()
        taken = [message for message in self.notifications if message["mt"] == mt]
        self.notifications = [message for message in self.notifications if message["mt"] != mt]
        return taken


@dataclass(frozen=True)
class Session:
    """Requests forwarded for one user's PbxMessages session (PROTOCOL §6.2)."""

    link: HubLink
    sip: str
    domain: str

    async def ask(self, mt: str, **fields: Any) -> list[JsonObject]:
        stamped = {"user": self.sip, "domain": self.domain, "session": f"s-{self.sip}"}
        return await self.link.ask(mt, **{**fields, **stamped})

    async def chats(self, *, unread: bool = False) -> dict[str, JsonObject]:
        *inds, result = await self.ask("ReadChats", unread=unread)
        assert result["mt"] == "ReadChatsResult", result
        return {ind["sip"]: ind for ind in inds}

    async def read(self, peer: str, **fields: Any) -> list[JsonObject]:
        """``ReadChat``: the ``msg`` objects, newest first."""
        *inds, result = await self.ask("ReadChat", sip=peer, **fields)
        assert result["mt"] == "ReadChatResult", result
        return [ind["msg"] for ind in inds]

    async def one(self, mt: str, **fields: Any) -> JsonObject:
        (answer,) = await self.ask(mt, **fields)
        return answer


def chat_post(
    author: str,
    peer: str,
    seq: int,
    text: str = "hello",
    *,
    sides: tuple[str, ...] | None = None,
    call_id: str = "c0ffee",
    domain: str = DOMAIN,
    **extra: Any,
) -> JsonObject:
    """The fields of a one-to-one Post as the hub writes it (PROTOCOL §12.10)."""
    return {
        "domain": domain,
        "author": author,
        "dn": author.title(),
        "topic": author,
        "peer": peer,
        "peer_dn": peer.title(),
        "grp": False,
        "sides": list(sides if sides is not None else (author, peer)),
        "text": text,
        "callId": call_id,
        "seq": seq,
        "time": 1_700_000_000_000 + seq,
        **extra,
    }


def group_post(author: str, group: str, seq: int, text: str, *, call_id: str = "9a") -> JsonObject:
    return {
        "domain": DOMAIN,
        "author": author,
        "dn": author.title(),
        "topic": group,
        "grp": True,
        "text": text,
        "callId": call_id,
        "seq": seq,
        "time": 1_700_000_000_000 + seq,
    }
