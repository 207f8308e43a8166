"""Test support: a real uvicorn server on a loopback port, and a scripted chat client.

The server runs in the test's own event loop with a ``ManualClock``: tests move time with
``server.advance(seconds)`` instead of sleeping. ``Phone.sync()`` sends a KeepAlive and
expects its echo next, which proves nothing else was queued for that client.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import respx
import uvicorn
from starlette.applications import Starlette
from websockets.asyncio.client import connect

from config import Config, TenantConfig, UserConfig, load_config
from config.sections import AppConfig
from signaling.app import HUB_WEBSOCKET_PATH, MESSAGES_WEBSOCKET_PATH, create_app
from signaling.appwebsocket.client import AppWebsocketClient
from signaling.core.clock import ManualClock
from signaling.hub import Hub
from signaling.server import bound_socket, uvicorn_config

JsonObject = dict[str, Any]

OTHER_TENANT = TenantConfig(
    domain="other.org",
    users=(
        UserConfig(sip="alice", dn="Alice Other", num="201", password="other-alice-pw"),
        UserConfig(sip="erin", dn="Erin Other", num="202", password="erin-pw"),
    ),
)
BOT = AppConfig(
    name="helpdesk-bot",
    password="bot-secret",
    dn="Helpdesk bot",
    act_for=frozenset({"carol"}),
    apis=("PbxSignal",),
)

PASSWORDS = {"alice": "alice-demo", "bob": "bob-demo", "carol": "carol-demo", "dave": "dave-demo"}


def make_config(*, messages: bool = True, grace: float = 0.0, **limits: Any) -> Config:
    """The default config (demo tenant) plus a second tenant and a bot, from no env.

    ``messages=False`` switches the messages service off: every user chats volatile.
    ``grace`` is ``signaling.resume_grace``: 0 (a closed connection ends its registration
    at once) unless a test is about resuming (PROTOCOL §4.9)."""
    config = load_config(None, env={})
    demo = config.tenants[0]
    tenants = (replace(demo, apps=(*demo.apps, BOT)), OTHER_TENANT)
    return replace(
        config,
        tenants=tenants,
        limits=replace(config.limits, **limits),
        messages=replace(config.messages, enabled=messages),
        signaling=replace(config.signaling, resume_grace=grace),
    )


@dataclass
class RunningServer:
    app: Starlette
    clock: ManualClock
    port: int
    config: Config
    phones: list[Phone] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{HUB_WEBSOCKET_PATH}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def hub(self) -> Hub:
        hub: Hub = self.app.state.hub
        return hub

    async def advance(self, seconds: float) -> None:
        """Move the server's clock and let its timers run."""
        self.clock.advance(seconds)
        self.hub.wake()
        for _ in range(5):
            await asyncio.sleep(0)

    async def idle(self, seconds: float) -> None:
        """Let real time pass (for the link to the messages service, which is real I/O)."""
        await asyncio.sleep(seconds)

    async def service_ready(self, timeout: float = 10.0) -> None:
        """Wait until the hub's link to the messages service is logged in."""
        link = self.hub.link
        assert link is not None, "the messages service is not enabled"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not link.up:
            assert loop.time() < deadline, "the hub's link to the messages service is not up"
            await asyncio.sleep(0.01)

    async def connect(self, *, source: str | None = None) -> AppWebsocketClient:
        """A client; ``source`` is the local address it connects from (any of 127.0.0.0/8
        reaches the server), so that a test can have clients at several addresses."""
        if source is None:
            return await AppWebsocketClient.connect(self.url, max_size=None)
        connection = await connect(
            self.url, max_size=None, ping_interval=None, compression=None, local_addr=(source, 0)
        )
        return AppWebsocketClient(connection)

    async def phone(
        self, sip: str, *, domain: str = "", password: str | None = None, hw: str | None = None
    ) -> Phone:
        """A logged-in, registered (NO_MEDIA_CALL) client of ``sip``."""
        client = await self.connect()
        await client.login(password=password or PASSWORDS[sip], sip=sip, domain=domain)
        phone = Phone(client, sip)
        self.phones.append(phone)
        result = await phone.register(hw=hw)
        assert result == {"api": "PbxSignal", "mt": "RegisterResult", "src": "reg"}
        return phone


@contextlib.asynccontextmanager
async def running_server(
    config: Config | None = None,
    *,
    data_dir: Path | None = None,
    service_link: Callable[[str], contextlib.AbstractAsyncContextManager[str]] | None = None,
) -> AsyncIterator[RunningServer]:
    """The whole server (hub and, when enabled, the messages service) on a free port.

    ``data_dir`` keeps stored data between two servers (restart tests); by default each
    server gets a fresh temporary directory. ``service_link``, given the url of the
    messages service, opens what the hub connects to instead (a proxy in between)."""
    async with contextlib.AsyncExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        running = await stack.enter_async_context(
            _serving(config or make_config(), data_dir, service_link)
        )
        yield running


@contextlib.asynccontextmanager
async def _serving(
    config: Config,
    data_dir: Path,
    service_link: Callable[[str], contextlib.AbstractAsyncContextManager[str]] | None,
) -> AsyncIterator[RunningServer]:
    config = replace(config, server=replace(config.server, data_dir=data_dir))
    clock = ManualClock()
    sock = bound_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    # The embedded service listens on this server's own port; a configured url wins.
    service_url = config.messages.url or f"ws://127.0.0.1:{port}{MESSAGES_WEBSOCKET_PATH}"
    async with contextlib.AsyncExitStack() as links:
        if service_link is not None:
            service_url = await links.enter_async_context(service_link(service_url))
        async with _uvicorn(config, clock, sock, service_url) as running:
            yield running


@contextlib.asynccontextmanager
async def _uvicorn(
    config: Config, clock: ManualClock, sock: socket.socket, service_url: str
) -> AsyncIterator[RunningServer]:
    port = sock.getsockname()[1]
    app = create_app(config, clock=clock, service_url=service_url)
    server = uvicorn.Server(uvicorn_config(app, config, log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.005)
    running = RunningServer(app, clock, port, config)
    try:
        if config.messages.enabled and not config.messages.url:
            await running.service_ready()
        yield running
    finally:
        for phone in running.phones:
            with contextlib.suppress(Exception):
                await phone.client.close()
        server.should_exit = True
        await task
        sock.close()


class Phone:
    """A scripted PbxSignal device."""

    def __init__(self, client: AppWebsocketClient, sip: str) -> None:
        self.client = client
        self.sip = sip
        self._ids = itertools.count(1)
        self.resume_token = ""
        """From the last RegisterResult (PROTOCOL §4.9)."""

    async def register(self, *, hw: str | None = None, flags: str = "NO_MEDIA_CALL") -> JsonObject:
        message: JsonObject = {"api": "PbxSignal", "mt": "Register", "src": "reg", "flags": flags}
        if hw is not None:
            message["hw"] = hw
        await self.client.send(message)
        result = await self.client.recv()
        token = result.pop("resume", None)
        if result.get("mt") == "RegisterResult" and "err" not in result:
            assert isinstance(token, str) and len(token) >= 32, result
            self.resume_token = token
        return result

    async def signal(self, call: int, sig: JsonObject) -> None:
        await self.client.send({"api": "PbxSignal", "mt": "Signaling", "call": call, "sig": sig})

    async def setup(self, call: int, to: str, *messages: JsonObject, **sig: Any) -> None:
        fty = [{"type": "im_setup"}, *({"type": "im_message", **m} for m in messages)]
        await self.signal(
            call, {"type": "setup", "channel": 0, "cd": {"sip": to}, "fty": fty, **sig}
        )

    async def say(self, call: int, data: str | None = None, **fields: Any) -> None:
        message: JsonObject = {"type": "im_message", **fields}
        if data is not None:
            message.setdefault("mime", "text/plain")
            message["data"] = data
        await self.signal(call, {"type": "facility", "fty": [message]})

    async def next(self, timeout: float = 5.0) -> JsonObject:
        return await self.client.recv(timeout)

    async def sig(self, call: int | None = None, kind: str | None = None) -> JsonObject:
        """The next message, which must be a Signaling (of ``call``, of type ``kind``)."""
        message = await self.next()
        assert message.get("mt") == "Signaling", message
        assert message.get("src") == "reg", message
        if call is not None:
            assert message["call"] == call, message
        if kind is not None:
            assert message["sig"]["type"] == kind, message
        return message

    async def fty(self, call: int | None = None) -> JsonObject:
        """The single facility object of the next Signaling, which must be a facility."""
        message = await self.sig(call, "facility")
        (item,) = message["sig"]["fty"]
        return dict(item)

    async def offered(self) -> tuple[int, JsonObject]:
        message = await self.sig(kind="setup")
        assert message["call"] < 0
        return message["call"], message["sig"]

    async def sync(self) -> None:
        """Prove nothing is pending for this client: the next frame is our KeepAlive echo."""
        await self.client.send({"mt": "KeepAlive"})
        assert await self.next() == {"mt": "KeepAlive"}


async def connected_pair(
    server: RunningServer, a: str = "alice", b: str = "bob"
) -> tuple[Phone, Phone, int]:
    """A calls B, B answers; returns both phones and B's (negative) call number."""
    pa, pb = await server.phone(a), await server.phone(b)
    await pa.setup(1, b)
    assert (await pa.sig(1, "call_proc"))["sig"]["confId"]
    number, _ = await pb.offered()
    await pb.signal(number, {"type": "conn"})
    await pa.sig(1, "conn")
    return pa, pb, number


async def answered_call(caller: Phone, callee: Phone) -> tuple[str, int]:
    """``caller`` calls ``callee`` on call 1, which answers: the call's confId and the
    callee's call number."""
    await caller.setup(1, callee.sip)
    conf: str = (await caller.sig(1, "call_proc"))["sig"]["confId"]
    number, _ = await callee.offered()
    await callee.signal(number, {"type": "conn"})
    await caller.sig(1, "conn")
    return conf, number


async def answer_resumed(phone: Phone, conf: str) -> int:
    """Call ``conf`` offered again after a resume (PROTOCOL §4.9), answered: its new
    call number."""
    number, setup = await phone.offered()
    assert setup["confId"] == conf and {"type": "resumed"} in setup["fty"], setup
    await phone.signal(number, {"type": "conn"})
    return number


async def acks_until_delivered(phone: Phone, count: int) -> dict[str, list[str]]:
    """The states each of ``count`` message ids is acknowledged with, once every one
    has been acknowledged ``delivered``."""
    states: dict[str, list[str]] = {}
    while sum("delivered" in got for got in states.values()) < count:
        ack = await phone.fty(1)
        assert ack["type"] == "im_ack", ack
        for message_id in ack.get("ids") or [ack["id"]]:
            states.setdefault(message_id, []).append(ack["state"])
    return states


async def drained(server: RunningServer) -> None:
    """Wait until the messages service has acknowledged every Post the hub took (it
    stores them in the background; histories are read from there)."""
    outbox = server.hub.outbox
    assert outbox is not None
    for _ in range(1000):
        await outbox.flushed()
        if not outbox.pending:
            return
        await server.idle(0.01)
    raise AssertionError(f"{len(outbox.pending)} Posts never acknowledged")


async def posted(route: respx.Route, count: int) -> list[httpx.Request]:
    """The requests of a mocked webhook ``route`` once ``count`` have arrived (the
    sender POSTs from its own task: real I/O, polled)."""
    for _ in range(500):
        if route.call_count >= count:
            return [call.request for call in route.calls]
        await asyncio.sleep(0.01)
    raise AssertionError(f"{route.call_count} of {count} webhooks posted")


async def resume_phone(
    server: RunningServer, old: Phone, password: str, seqs: dict[str, Any] | None = None
) -> tuple[Phone, dict[str, Any]]:
    """A new connection of ``old``'s user registers with ``old``'s resume token (and
    ``seqs``, the last seq seen of each call, when given; PROTOCOL §4.9). Returns the new
    phone and its RegisterResult."""
    client = await server.connect()
    await client.login(password=password, sip=old.sip)
    phone = Phone(client, old.sip)
    server.phones.append(phone)
    register: dict[str, Any] = {
        "api": "PbxSignal",
        "mt": "Register",
        "src": "reg",
        "flags": "NO_MEDIA_CALL",
        "resume": old.resume_token,
    }
    if seqs is not None:
        register["seqs"] = seqs
    await client.send(register)
    result = await phone.next()
    assert result["mt"] == "RegisterResult" and "err" not in result, result
    assert isinstance(result["resume"], str) and result["resume"] != old.resume_token
    phone.resume_token = result["resume"]
    return phone, result
