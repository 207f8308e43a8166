"""The hub's AppWebsocket link to the messages service (PROTOCOL §7.1, §12.10).

One task keeps the link: connect, log in as App object ``messages`` with the digest,
send ``PbxInfo``, then run a reader, a writer and a KeepAlive ticker until something
fails; then wait (doubling from ``reconnect_min`` to ``reconnect_max``, with jitter so
that many hubs do not reconnect in step) and start over.

The writer sends forwarded requests as they come and the outbox's durable Posts in key
order, whatever is waiting written in one go (several frames, one transport write);
after every reconnect it starts again from the oldest unacknowledged Post, so the
service sees them in order (§7.7). ``PostResult`` goes to the outbox; every other
answer or notification goes to the hub's core.

The reader hands each frame to the core and lets it finish before it reads the next: it
never awaits in between. The service sends a change's notification (``GroupInd``) before
the request's answer, so by the time the core forwards ``WriteGroupResult`` or
``WriteMemberResult`` to the client its own view of the groups already holds the change,
and a ``setup`` the client sends on that result is routed by it (PROTOCOL §7.6, 12.23).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from websockets.exceptions import WebSocketException

from config import Config, MessagesConfig
from signaling.appwebsocket.client import AppWebsocketClient
from signaling.appwebsocket.errors import AppWebsocketError, ReplyTimeout
from tracing import Tracer

from .appwebsocket.housekeeping import pbx_info
from .core.actions import StoredAck
from .core.switch import BUILD, VERSION
from .post_outbox import PostOutbox

__all__ = ["ServiceConnector", "ServiceEvents", "ServiceLink"]

log = logging.getLogger(__name__)

_JITTER = random.Random()
"""The retries' jitter, apart from the global generator: nothing here moves its state."""

JsonObject = dict[str, Any]

BATCH = 256
"""Frames written to the service in one write at most."""


class ServiceEvents(Protocol):
    """Who hears what the link and the outbox report: the hub, which hands each event to
    its core and carries out the actions that come back."""

    def service_up(self) -> None: ...

    def service_down(self) -> None: ...

    def from_service(self, message: JsonObject) -> None: ...

    def stored(self, acks: list[StoredAck]) -> None: ...

    def duplicate(self, post: JsonObject, original: JsonObject) -> None: ...


@dataclass(frozen=True, slots=True)
class ServiceConnector:
    """What a hub needs to reach the messages service (PROTOCOL §7.7): where it is and
    the shared secret. The hub builds its durable outbox and its link from this while it
    is built itself, so both report to it from the start and nothing is wired later."""

    config: Config
    url: str
    password: str
    tracer: Tracer
    ssl: ssl.SSLContext | None = None
    """For a wss:// url the system's roots do not vouch for (this server's own, with TLS)."""

    def build(self, events: ServiceEvents) -> tuple[PostOutbox, ServiceLink]:
        server = self.config.server
        wake = asyncio.Event()  # the link's: Posts became durable, or a request waits
        outbox = PostOutbox(
            server.data_dir / f"outbox-{server.node}.jsonl",
            on_durable=events.stored,
            on_ready=wake.set,
        )
        link = ServiceLink(
            self.url,
            password=self.password,
            domain=self.config.login.default_domain,
            node=server.node,
            dns=server.dns,
            config=self.config.messages,
            outbox=outbox,
            wake=wake,
            on_up=events.service_up,
            on_down=events.service_down,
            on_message=events.from_service,
            on_duplicate=events.duplicate,
            tracer=self.tracer,
            ssl=self.ssl,
        )
        return outbox, link


class ServiceLink:
    def __init__(
        self,
        url: str,
        *,
        password: str,
        domain: str,
        node: str,
        dns: str = "",
        config: MessagesConfig,
        outbox: PostOutbox,
        wake: asyncio.Event,
        on_up: Callable[[], None],
        on_down: Callable[[], None],
        on_message: Callable[[JsonObject], None],
        on_duplicate: Callable[[JsonObject, JsonObject], None] = lambda post, original: None,
        tracer: Tracer | None = None,
        ssl: ssl.SSLContext | None = None,
    ) -> None:
        self.url = url
        self._ssl = ssl
        self._tracer = tracer or Tracer()
        self._password = password
        self._domain = domain
        self._node = node
        self._dns = dns
        self._config = config
        self._outbox = outbox
        self._on_up = on_up
        self._on_down = on_down
        self._on_message = on_message
        self._on_duplicate = on_duplicate
        """Told of a Post the service answered with an earlier one (``PostResult.original``)."""
        self._requests: deque[JsonObject] = deque()
        self._wake = wake  # set by a request, and by the outbox's on_ready (durable Posts)
        self._task: asyncio.Task[None] | None = None
        self._heard = 0.0
        """Loop time of the last frame from the service (``_keepalive`` watches it)."""
        self.up = False
        self.connects = 0
        """Successful logins so far (tests and metrics read it)."""

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def send(self, message: JsonObject) -> None:
        """A request for the service; dropped when the link is down (the core knows)."""
        if self.up:
            self._requests.append(message)
            self._wake.set()

    # -- the connection loop -------------------------------------------------------------

    async def _run(self) -> None:
        delay = self._config.reconnect_min
        while True:
            client: AppWebsocketClient | None = None
            try:
                client = await AppWebsocketClient.connect(self.url, max_size=None, ssl=self._ssl)
                await client.login(
                    app="messages",
                    sip="messages",
                    domain=self._domain,
                    password=self._password,
                )
                info = pbx_info(
                    domain=self._domain,
                    pbx=self._node,
                    pbx_dns=self._dns,
                    apis=("PbxSignal", "PbxMessages"),
                    version=VERSION,
                    build=BUILD,
                )
                info["batchedResults"] = True  # docs/protocol.md 12.48: PostResults
                await client.send(info)
                delay = self._config.reconnect_min
                await self._serve(client)
            except asyncio.CancelledError:
                raise
            except (OSError, AppWebsocketError, WebSocketException, TimeoutError) as exc:
                log.warning("messages service link: %r; retrying in %.1f s", exc, delay)
            except Exception:
                log.exception("messages service link failed; retrying in %.1f s", delay)
            finally:
                if self.up:
                    self.up = False
                    self._requests.clear()
                    self._on_down()
                if client is not None:
                    with contextlib.suppress(Exception):
                        await client.close()
            await asyncio.sleep(delay * _JITTER.uniform(0.5, 1.0))
            delay = min(delay * 2, self._config.reconnect_max)

    async def _serve(self, client: AppWebsocketClient) -> None:
        self._outbox.rewind()  # the service may have missed anything unacknowledged
        self.up = True
        self.connects += 1
        log.info("messages service link up (%s)", self.url)
        self._on_up()
        self._wake.set()
        tasks = [
            asyncio.create_task(self._read(client)),
            asyncio.create_task(self._write(client)),
            asyncio.create_task(self._keepalive(client)),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _read(self, client: AppWebsocketClient) -> None:
        # Each frame is handled whole before the next is read (12.23: causal order).
        # Silence is watched by ``_keepalive``, not by a timeout per frame.
        loop = asyncio.get_running_loop()
        while True:
            text, message = await client.recv_frame(None)
            self._heard = loop.time()
            if self._tracer.appwebsocket:
                self._trace("recv", text)
            mt, src = message.get("mt"), message.get("src")
            if mt == "PostResults":
                self._posts_stored(message)
            elif type(src) is int and mt in ("PostResult", "Error"):
                self._post_answered(src, message)
            elif mt != "KeepAlive":
                self._on_message(message)

    def _posts_stored(self, message: JsonObject) -> None:
        """``PostResults`` (docs 12.48): the Posts of one of the service's transactions,
        stored, as ``[src, id]`` pairs; each as a ``PostResult`` without ``original``."""
        pairs = message.get("ids")
        if not isinstance(pairs, list):
            log.warning("messages service sent PostResults without ids: %.200r", message)
            return
        done = self._outbox.done
        for pair in pairs:
            if isinstance(pair, list) and pair and type(pair[0]) is int:
                done(pair[0])

    def _post_answered(self, key: int, message: JsonObject) -> None:
        if message.get("mt") == "PostResult":
            text = self._outbox.done(key)
            original = message.get("original")
            if isinstance(original, dict) and text is not None:
                # A client's resend of an id stored under an earlier Post (docs 12.21)
                self._on_duplicate(json.loads(text), original)
        elif message.get("code") == "unavailable":
            raise ConnectionError("the service could not store a message")  # resend later
        else:  # a Post the service can never take: keeping it would block the outbox
            log.error("messages service refused stored message %d: %s", key, message)
            self._outbox.done(key)

    async def _write(self, client: AppWebsocketClient) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while batch := self._next_batch():
                await client.send_texts(batch)

    def _next_batch(self) -> list[str]:
        """What to write next, in one go: every request waiting, then the oldest durable
        Posts not sent yet, ``BATCH`` frames at most. The Posts that became durable in
        one flush of the outbox (one turn of the loop) leave in one write, one frame
        each (PROTOCOL §7), and a reader's request waits for one batch at most, never
        for a long backlog."""
        batch: list[str] = []
        requests, tracing = self._requests, self._tracer.appwebsocket
        while requests and len(batch) < BATCH:
            message = requests.popleft()
            if tracing:
                self._trace("send", json.dumps(message, ensure_ascii=False))
            batch.append(json.dumps(message, separators=(",", ":"), ensure_ascii=False))
        posts = self._outbox.take_unsent(BATCH - len(batch))
        if tracing:
            for text in posts:
                self._trace("send", text)
        return batch + posts if batch else posts

    async def _send(self, client: AppWebsocketClient, message: JsonObject) -> None:
        if self._tracer.appwebsocket:
            self._trace("send", json.dumps(message, ensure_ascii=False))
        await client.send(message)

    def _trace(self, direction: str, text: str) -> None:
        self._tracer.record("appwebsocket", f"{direction} {text}", user="messages")

    async def _keepalive(self, client: AppWebsocketClient) -> None:
        """A KeepAlive every period; and the link's one watchdog: the service answers
        our KeepAlives, so nothing from it for three periods is a dead link."""
        loop = asyncio.get_running_loop()
        period = self._config.keepalive
        silence = period * 3
        self._heard = loop.time()
        keepalive_at = self._heard + period
        while True:
            await asyncio.sleep(max(0.0, min(keepalive_at, self._heard + silence) - loop.time()))
            now = loop.time()
            if now >= self._heard + silence:
                raise ReplyTimeout(f"nothing received within {silence} s")
            if now >= keepalive_at:
                await self._send(client, {"mt": "KeepAlive"})
                keepalive_at = now + period
