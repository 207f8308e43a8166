"""The messages service as an object and as a standalone Starlette app (PROTOCOL §7).

``MessagesService`` is the composition root of this package: it builds the store, the
writer, the handlers and the login provider from one ``Config``. The embedded hub mounts
``routes()`` in its own app and calls ``start()``/``stop()`` from its lifespan;
``create_messages_app`` wraps the same object for ``switchboard serve --role messages``.

Layers: routes (``connection``) -> ``handlers`` / ``writer`` -> ``storage``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol, runtime_checkable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from config import Config, ConfigError
from filebuffers import FileBufferError
from filebuffers.routes import FileRoutes
from signaling.appwebsocket import closecodes
from signaling.appwebsocket.throttle import LoginThrottle, ThrottlePolicy
from signaling.appwebsocket.transport import (
    CLOSED,
    Served,
    TransportSocket,
    serve_on_transport,
)
from tracing import Tracer
from tracing.redact import first_cause, shown_url

from .accounts import ServiceAccounts
from .asgi_socket import AsgiSocket
from .attachments import Attachments
from .connection import Connection, Services, Socket
from .directory import LiveDirectory, TenantDirectory
from .errors import Unavailable
from .file_store import make_file_store, open_file_store
from .handlers import Handlers
from .hubs import HubConnections
from .metrics import ServiceFigures
from .replicas import Replicas
from .storage import MessageStore
from .storage.database import dialect_of
from .writer import PostWriter

__all__ = ["MESSAGES_PATH", "MessagesService", "create_messages_app", "database_url"]

log = logging.getLogger(__name__)

MESSAGES_PATH = "/messages/websocket"
"""The service's AppWebsocket (PROTOCOL §2)."""

CLOSE_TIMEOUT = 5.0
"""How long ``stop()`` waits for connections to finish closing."""
READY_TIMEOUT = 2.0
"""Seconds ``/healthz`` waits for the database's answer before calling it down."""


def database_url(config: Config) -> str:
    """``messages.database``, or the SQLite file ``messages.sqlite3`` in ``server.data_dir``."""
    if config.messages.database:
        return config.messages.database
    return f"sqlite://{(config.server.data_dir / 'messages.sqlite3').as_posix()}"


class Part(Protocol):
    """Something started with the service and stopped after it."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@runtime_checkable
class Reachable(Protocol):
    """A ``Part`` whose database ``/healthz`` shows (the cluster's directory)."""

    async def reachable(self) -> bool: ...


class MessagesService:
    """The service: ``start()`` opens the store and the writer, ``routes()`` serve the
    AppWebsocket, ``stop()`` drains and closes. ``password`` is App object ``messages``'s
    shared secret (an empty one would let nobody in, and is refused). ``clock`` is the
    wall time of file buffers (their expiry, signed urls' lifetimes), which tests move."""

    def __init__(
        self,
        config: Config,
        *,
        password: str,
        tracer: Tracer | None = None,
        directory: LiveDirectory | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not password:
            raise ConfigError(
                "messages.password", "required: the hub logs in to the service with it"
            )
        self.config = config
        self.tracer = tracer or Tracer()
        self.database_url = database_url(config)
        self._accounts = ServiceAccounts(password)
        self._throttle = LoginThrottle(ThrottlePolicy.from_config(config.login))
        self._directory = TenantDirectory(config.tenants, directory)
        self.hubs = HubConnections()
        self._store: MessageStore | None = None
        self._services: Services | None = None
        self.file_store = make_file_store(config, clock)
        # The key of signed download urls: from the shared secret, so that every service
        # process of one deployment signs alike (and a url outlives a restart).
        secret = hashlib.sha256(b"switchboard file urls\n" + password.encode()).digest()
        self.file_routes = FileRoutes(
            self.file_store, secret, base_url=config.files.url, clock=clock
        )
        self.attachments = Attachments(self.file_store, self.file_routes, secret, clock)
        self._collector: asyncio.Task[None] | None = None
        self.replicas: Replicas | None = None
        """With ``messages.replicas``: what this replica tells the others' hubs (12.41)."""

    async def start(self) -> None:
        """Open the store (running migrations), join the other replicas (when
        ``messages.replicas``) and start the Post writer."""
        if self._services is not None:
            return
        store = await self._open_store()
        try:
            await self._open_shared_parts()
        except BaseException:
            await store.close()
            raise
        self._collector = asyncio.get_running_loop().create_task(self._collect_garbage())
        writer = PostWriter(
            store,
            batch_max=self.config.messages.batch_max,
            notify=self.hubs.broadcast,
            on_files=self.attachments.grant,
        )
        writer.start()
        self._store = store
        self._services = Services(
            login=self.config.login,
            limits=self.config.limits,
            accounts=self._accounts,
            throttle=self._throttle,
            handlers=Handlers(store, self._directory, self.attachments),
            writer=writer,
            hubs=self.hubs,
        )
        log.info("messages service started (%s)", store.dialect)

    async def _open_store(self) -> MessageStore:
        try:
            return await MessageStore.open(
                self.database_url, self.tracer, key_ttl=self.config.messages.idempotency_ttl
            )
        except ValueError as exc:
            raise ConfigError("messages.database", str(exc)) from exc
        except Unavailable as exc:
            # At start-up nothing can be retried yet: the operator must fix the setting
            # (a missing database, a wrong port or role), so say which and why.
            reason = f"cannot open {shown_url(self.database_url)}: {first_cause(exc)}"
            raise ConfigError("messages.database", reason) from exc

    async def _open_shared_parts(self) -> None:
        """The other replicas (when ``messages.replicas``) and the file buffers; what
        was opened is closed again when the next part cannot be."""
        if self.config.messages.replicas:
            await self._join_replicas()
        try:
            await open_file_store(self.file_store, self.config)
        except BaseException:
            await self._leave_replicas()
            raise

    async def _join_replicas(self) -> None:
        """docs/protocol.md 12.41: every notification made here goes to the other
        replicas' hubs too, and theirs to this one's."""
        if dialect_of(self.database_url) != "postgres":
            raise ConfigError("messages.replicas", "needs a postgres:// messages.database")
        replicas = Replicas(
            self.database_url,
            self.config.server.node,
            deliver=self.hubs.deliver,
            lost=lambda: self.hubs.close_logged_in(closecodes.WS_1012_SERVICE_RESTART),
        )
        try:
            await replicas.start()
        except Unavailable as exc:
            reason = f"cannot listen on {shown_url(self.database_url)}: {first_cause(exc)}"
            raise ConfigError("messages.replicas", reason) from exc
        self.replicas = replicas
        self.hubs.relay = replicas.publish

    async def stop(self) -> None:
        """Write every queued Post, close the connections (1012), close the store."""
        services, self._services = self._services, None
        if services is None:
            return
        await services.writer.stop()
        await self._leave_replicas()  # after the writer: its last badges go out too
        if self._collector is not None:
            self._collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._collector
            self._collector = None
        await self.file_store.close()
        await self.hubs.close_all(closecodes.WS_1012_SERVICE_RESTART, CLOSE_TIMEOUT)
        if self._store is not None:
            await self._store.close()
            self._store = None
        log.info("messages service stopped")

    async def _leave_replicas(self) -> None:
        if self.replicas is not None:
            self.hubs.relay = None
            await self.replicas.stop()
            self.replicas = None

    async def database_ready(self) -> bool:
        """True when the message store answers a trivial query now (``/healthz``)."""
        if self._store is None:
            return False
        try:  # a database that hangs is not ready, and must not hang the probe
            return await asyncio.wait_for(self._store.ready(), READY_TIMEOUT)
        except TimeoutError:
            return False

    async def checks(self) -> dict[str, str]:
        """``/healthz``'s checks of the service: ``database``, and ``replicas`` (the
        connection that hears the other replicas) when ``messages.replicas``."""
        checks = {"database": "up" if await self.database_ready() else "down"}
        if self.replicas is not None:
            checks["replicas"] = "up" if self.replicas.up else "down"
        return checks

    def figures(self) -> ServiceFigures:
        """What ``/metrics`` shows of the service now."""
        writer = self._services.writer if self._services is not None else None
        return ServiceFigures(
            hubs=len(self.hubs),
            posts=writer.posts if writer is not None else 0,
            batches=writer.batches if writer is not None else 0,
            refused=writer.refused if writer is not None else 0,
            waiting=writer.waiting if writer is not None else 0,
            replicas_up=self.replicas.up if self.replicas is not None else None,
        )

    def routes(self) -> list[BaseRoute]:
        return [WebSocketRoute(MESSAGES_PATH, self._websocket), *self.file_routes.routes()]

    async def _collect_garbage(self) -> None:
        """Expired and orphaned buffers, every ``files.gc_interval`` (PROTOCOL §8.6)."""
        while True:
            await asyncio.sleep(self.config.files.gc_interval)
            try:
                removed = await self.file_store.collect_garbage()
            except (OSError, FileBufferError) as exc:  # the folder, or the shared database
                log.warning("collecting file buffers failed: %r", exc)
                continue
            if removed.buffers or removed.incoming or removed.blobs:
                log.info("file buffers collected: %s", removed)

    def serve_on_transport(self, app: Starlette) -> None:
        """Under ``switchboard serve`` the service's WebSocket is served on the transport,
        without ASGI (docs/protocol.md 12.40); ``routes()`` keep an ASGI route for it,
        for other servers."""
        serve_on_transport(app, MESSAGES_PATH, self._serve_socket)

    def _serve_socket(self, socket: TransportSocket) -> Served:
        return self._open(socket, socket.address())

    def _open(self, socket: Socket, address: str) -> Served:
        services = self._services
        if services is None:  # not started yet, or stopping
            socket.close_now(closecodes.WS_1012_SERVICE_RESTART)
            return CLOSED
        return Connection(socket, address, services).served()

    async def _websocket(self, websocket: WebSocket) -> None:
        adapter = AsgiSocket(websocket)
        await adapter.serve(lambda socket: self._open(socket, adapter.address))


def create_messages_app(
    config: Config,
    *,
    password: str | None = None,
    directory: LiveDirectory | None = None,
    before: Part | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The service alone (``--role messages``); ``password`` defaults to
    ``messages.password``. ``directory``, when given, is where users, licences and queues
    are read (else the configuration); ``before`` starts before the service and stops
    after it (what keeps that directory up to date); ``clock`` is ``MessagesService``'s."""
    trace = config.trace
    try:  # [trace] applies here too; its flags are switched through a hub's admin API
        tracer = Tracer(flags=trace.flags, buffer=trace.buffer)
    except ValueError as exc:
        raise ConfigError("trace.flags", str(exc)) from exc
    service = MessagesService(
        config,
        password=config.messages.password if password is None else password,
        tracer=tracer,
        directory=directory,
        clock=clock,
    )

    routes = [Route("/healthz", _healthz(service, before)), *service.routes()]
    app = Starlette(routes=routes, lifespan=_lifespan(service, before))
    app.state.messages_service = service
    service.serve_on_transport(app)
    return app


def _lifespan(
    service: MessagesService, before: Part | None
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as started:
            for part in (before, service):
                if part is not None:
                    await part.start()
                    started.push_async_callback(part.stop)
            yield

    return lifespan


def _healthz(
    service: MessagesService, before: Part | None
) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def healthz(request: Request) -> JSONResponse:
        """As the hub's ``/healthz``: 200 while serving (``degraded`` when a check is
        down), and with ``?ready=1`` 503 unless the service's own checks are up, so that
        a balancer in front of replicas sends hubs elsewhere meanwhile."""
        checks = await service.checks()
        ready = all(state == "up" for state in checks.values())
        if isinstance(before, Reachable):  # shown, not for ready: as on a hub
            checks["directory"] = "up" if await before.reachable() else "down"
        status = "ok" if all(state == "up" for state in checks.values()) else "degraded"
        code = 503 if request.query_params.get("ready") == "1" and not ready else 200
        return JSONResponse({"status": status, "checks": checks}, status_code=code)

    return healthz
