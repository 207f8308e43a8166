"""The composition root: builds the switch, hub and routes from one ``Config``.

``create_app`` is what ``switchboard serve``, the tests and the benchmarks start; the
Starlette lifespan starts and stops the hub's background tasks.

Roles (DESIGN "Deployment modes"): ``all`` serves the hub and, when ``messages.enabled``,
the messages service in one process; the hub still reaches the service over its
AppWebsocket (loopback), exactly as it would in another process. ``hub`` links to the
service at ``messages.url``; ``messages`` serves only the service.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config import Config, ConfigError, check_cluster
from messages_service.app import MessagesService, create_messages_app
from messages_service.metrics import render as render_service_metrics
from signaling.admin_directory import DirectoryAdmin
from signaling.admin_login import AdminLogins
from signaling.appwebsocket.digest import new_challenge
from signaling.appwebsocket.transport import serve_on_transport
from signaling.bus.logins import SharedLogins
from signaling.bus.redis_bus import RedisBus
from signaling.core.actions import Action
from signaling.core.clock import Clock, SystemClock
from signaling.core.switch import Switch
from signaling.directory import Directory
from signaling.directory.change_set import ChangeLog
from signaling.directory.changes import DirectoryChanges
from signaling.directory.shared import SharedChanges
from signaling.directory.storage import ChangesTable
from signaling.endpoint import HUB_WEBSOCKET_PATH, pbx_websocket
from signaling.gc_pauses import GcPauses
from signaling.hub import Hub
from signaling.hub_link import SendQueues
from signaling.hub_socket import hub_endpoint
from signaling.messages_link import ServiceConnector
from signaling.metrics import GC_PAUSE_SECONDS
from signaling.metrics import render as render_metrics
from signaling.support.visitors import Visitors
from signaling.support.webhooks import WebhookSender
from signaling.tls import own_certificate, web_schemes
from tracing import Tracer
from tracing.logs import install_record_factory
from tracing.routes import TraceRoutes
from web import web_routes

__all__ = ["HUB_WEBSOCKET_PATH", "MESSAGES_WEBSOCKET_PATH", "Role", "create_app", "local_url"]

MESSAGES_WEBSOCKET_PATH = "/messages/websocket"

SERVICE_RECHECK = 2.0
"""Seconds between a messages service's reads of the cluster directory's version."""

log = logging.getLogger(__name__)

Role = Literal["all", "hub", "messages"]


def create_app(
    config: Config,
    *,
    clock: Clock | None = None,
    make_challenge: Callable[[], str] = new_challenge,
    role: Role = "all",
    service_url: str | None = None,
) -> Starlette:
    """The app for ``role``. ``service_url`` is where the hub finds the messages service
    (default: ``messages.url``, else this process at ``server.host``/``server.port``)."""
    if role == "messages":
        return _messages_app(config)
    install_record_factory()
    tracer = make_tracer(config)
    directory = Directory(config.tenants, config.login.default_domain)
    changes, shared = _change_log(config, directory)
    bus = _bus(config, tracer, shared) if shared is not None else None
    queues = SendQueues(config.limits.send_queue)
    switch = _switch(config, clock or SystemClock(), make_challenge, tracer, directory, bus, queues)
    service, connector = _messages_service(config, role, service_url, tracer, directory)
    build_hub = functools.partial(_hub, config, switch, queues, connector, bus)
    app = Starlette(
        lifespan=_lifespan(config, role, build_hub, service, shared),
        exception_handlers={404: _json_error, 405: _json_error},
    )
    book = bus.logins if bus is not None else None
    logins = AdminLogins(
        config.admin, config.login, switch.clock.monotonic, shared=book, tokens=book
    )
    app.router.routes.extend(_routes(app, config, switch, service, changes, logins, book))
    app.add_middleware(HttpTrace, tracer=tracer)
    serve_on_transport(app, HUB_WEBSOCKET_PATH, hub_endpoint(app))
    if service is not None:
        service.serve_on_transport(app)
    app.state.switch = switch
    app.state.tracer = tracer
    app.state.gc_pauses = GcPauses()
    app.state.messages_service = service
    app.state.shared_directory = shared
    return app


def _messages_app(config: Config) -> Starlette:
    """``--role messages``, with its ``/metrics`` (behind the server admin's login when
    ``admin.metrics_login``). When the hubs keep the admin API's changes in
    ``cluster.database``, the service follows them there too (so that a user given the
    ``messages`` licence, or a queue's agents changed, through any hub count here),
    reading the version every ``SERVICE_RECHECK`` seconds as it hears no announcements."""
    directory, shared = None, None
    if config.cluster.database:
        directory = Directory(config.tenants, config.login.default_domain)
        table = ChangesTable(config.cluster.database)
        shared = SharedChanges(table, directory, recheck=SERVICE_RECHECK)
    app = create_messages_app(config, directory=directory, before=shared)
    service: MessagesService = app.state.messages_service

    async def metrics(request: Request) -> Response:
        text = render_service_metrics(service.figures())
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    logins = AdminLogins(config.admin, config.login, SystemClock().monotonic)
    guarded = _admin_only(metrics, logins.server_admin) if config.admin.metrics_login else metrics
    app.router.routes.append(Route("/metrics", guarded))
    return app


def _change_log(config: Config, directory: Directory) -> tuple[ChangeLog, SharedChanges | None]:
    """Where the admin API's changes are kept: a file in ``server.data_dir``, made over
    ``directory`` now; when clustering, the cluster's database (made at start, by the
    lifespan), which is also returned as such."""
    path = config.server.data_dir / f"directory-{config.server.node}.json"
    if not config.cluster.redis:
        changes = DirectoryChanges(path)
        changes.load_into(directory)
        return changes, None
    check_cluster(config.cluster)  # a Config built in code has not been through the loader
    if path.exists():
        log.warning(
            "%s is not read when clustering: the admin API's changes live in cluster.database",
            path,
        )
    shared = SharedChanges(ChangesTable(config.cluster.database), directory)
    return shared, shared


def _bus(config: Config, tracer: Tracer, shared: SharedChanges) -> RedisBus:
    """The way to the other nodes, which also announces the cluster's directory changes
    and keeps the cluster's logins and visitor accounts."""
    bus = RedisBus(
        config.cluster,
        config.server.node,
        tracer,
        directory=shared,
        login=config.login,
        support=config.support,
        resume_grace=config.signaling.resume_grace,
    )
    shared.announce = bus.announce_directory
    return bus


def _switch(
    config: Config,
    clock: Clock,
    make_challenge: Callable[[], str],
    tracer: Tracer,
    directory: Directory,
    bus: RedisBus | None,
    queues: SendQueues,
) -> Switch:
    """The sans-I/O core, given the tracer and directory the routes share, the send
    queues the hub fills, and, in a cluster, the bus's book of registrations."""
    return Switch(
        config,
        clock,
        directory=directory,
        tracer=tracer,
        make_challenge=make_challenge,
        node=bus.address if bus is not None else "",
        book=bus.book if bus is not None else None,
        congested=queues.congested,
    )


def _messages_service(
    config: Config, role: Role, service_url: str | None, tracer: Tracer, directory: Directory
) -> tuple[MessagesService | None, ServiceConnector | None]:
    """The messages service this process serves, if any, and how the hub reaches the
    service, when it is enabled."""
    messages = config.messages
    if not messages.enabled:
        return None, None
    if role == "hub" and not messages.url:
        raise ConfigError("messages.url", "required for --role hub (where is the service?)")
    service: MessagesService | None = None
    password = messages.password
    if role == "all" and not messages.url:
        password = password or secrets.token_hex(32)  # both ends live in this process
        service = MessagesService(config, password=password, tracer=tracer, directory=directory)
    url = service_url or messages.url or local_url(config, MESSAGES_WEBSOCKET_PATH)
    # this process's own port: trust its own certificate (docs/protocol.md 12.30)
    own = own_certificate(config) if url.startswith("wss:") and not messages.url else None
    return service, ServiceConnector(config, url, password, tracer, own)


def _hub(
    config: Config,
    switch: Switch,
    queues: SendQueues,
    connector: ServiceConnector | None,
    bus: RedisBus | None,
) -> Hub:
    """The hub, built with its parts when the app starts: the send queues the switch was
    given, the way to the messages service, the webhook sender (when configured), the bus."""
    webhooks = WebhookSender(config.webhooks) if config.webhooks.url else None
    return Hub(switch, queues=queues, service=connector, webhooks=webhooks, bus=bus)


def _lifespan(
    config: Config,
    role: Role,
    build_hub: Callable[[], Hub],
    service: MessagesService | None,
    shared: SharedChanges | None,
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """Build the hub, then start the cluster's directory changes (when clustering), the
    messages service (when served here) and the hub; stop them in the opposite order. A
    part that cannot start stops those started before it."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        hub = app.state.hub = build_hub()
        tracer = hub.tracer
        # The directory first: a node joins the cluster with the cluster's changes made.
        # The collector's watch last: what is alive by then (modules, config, routes, the
        # parts) lives as long as the process and is frozen (signaling.gc_pauses).
        parts: list[_Part | None] = [shared, service, hub, app.state.gc_pauses]
        async with contextlib.AsyncExitStack() as started:
            for part in parts:
                if part is not None:
                    await part.start()
                    started.push_async_callback(part.stop)
            if tracer.app:
                tracer.record("app", f"hub started ({role}), node {config.server.node}")
            try:
                yield
            finally:
                if tracer.app:
                    tracer.record("app", "hub stopping")

    return lifespan


class _Part(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def _routes(
    app: Starlette,
    config: Config,
    switch: Switch,
    service: MessagesService | None,
    changes: ChangeLog,
    logins: AdminLogins,
    book: SharedLogins | None,
) -> list[BaseRoute]:
    """Every route but the messages service's own WebSocket (which ``service`` brings);
    ``book``: on a node of a cluster, its logins in Redis, where visitor accounts are made
    and listed."""
    admin_login = logins.server_admin
    metrics_route = _admin_only(metrics, admin_login) if config.admin.metrics_login else metrics
    routes: list[BaseRoute] = [
        WebSocketRoute(HUB_WEBSOCKET_PATH, pbx_websocket),
        Route("/healthz", healthz),
        Route("/metrics", metrics_route),
    ]
    if service is not None:
        routes += service.routes()
    routes += logins.routes()
    routes += TraceRoutes(switch.tracer, admin_login).routes()
    cluster_visitors = book.visitors if book is not None else None
    routes += DirectoryAdmin(switch.directory, changes, logins, cluster_visitors).routes()
    visitors = Visitors(switch, config, lambda actions: _on_hub(app, actions), book)
    routes += visitors.routes()
    routes += web_routes(config)
    return routes


def make_tracer(config: Config) -> Tracer:
    """The tracer of ``[trace]``; an unknown flag name is a configuration error."""
    trace = config.trace
    try:
        return Tracer(
            flags=trace.flags,
            buffer=trace.buffer,
            file=Path(trace.file) if trace.file else None,
            file_max=trace.file_max,
            file_count=trace.file_count,
        )
    except ValueError as exc:
        raise ConfigError("trace.flags", str(exc)) from exc


class HttpTrace:
    """ASGI middleware: with the ``http`` flag on, one record per HTTP request (method,
    path, status, milliseconds); WebSocket traffic is ``pbx``'s and ``appwebsocket``'s."""

    def __init__(self, app: ASGIApp, tracer: Tracer) -> None:
        self.app = app
        self.tracer = tracer

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine itself: a WebSocket passes straight through, so this adds no
        # frame that would live as long as each connection.
        if scope["type"] != "http" or not self.tracer.http:
            return self.app(scope, receive, send)
        return self._traced(scope, receive, send)

    async def _traced(self, scope: Scope, receive: Receive, send: Send) -> None:
        began = time.monotonic()
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            # Values never: urls carry capability keys and signatures, and names may be
            # percent-encoded past any pattern. Names are shown decoded, values as ***.
            query = scope.get("query_string", b"").decode("latin-1")
            names = [name for name, _ in parse_qsl(query, keep_blank_values=True)]
            target = scope["path"] + ("?" + "&".join(f"{n}=***" for n in names) if names else "")
            millis = (time.monotonic() - began) * 1000
            client = scope.get("client") or ("-", 0)
            self.tracer.record(
                "http",
                f"{scope['method']} {target} -> {status} in {millis:.1f} ms from {client[0]}",
            )


def local_url(config: Config, path: str) -> str:
    """``ws://`` (``wss://`` with TLS) URL of ``path`` on this server, as a client on this
    machine reaches it."""
    host = config.server.host
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    shown = f"[{host}]" if ":" in host else host
    return f"{web_schemes(config)[1]}://{shown}:{config.server.port}{path}"


async def healthz(request: Request) -> JSONResponse:
    """Liveness, with readiness alongside: 200 while the process serves (``status``
    ``ok``, or ``degraded`` when a dependency is down; ``checks`` say which), 503 only
    while starting. ``?ready=1`` answers 503 unless everything the node serves with is up,
    for a load balancer that should send clients elsewhere meanwhile. The cluster's
    ``directory`` database is shown but does not count for ``ready``: logins and chats go
    on without it, and draining every node because it is down would stop them all."""
    hub: Hub | None = getattr(request.app.state, "hub", None)
    if hub is None:
        return JSONResponse({"status": "starting"}, status_code=503)
    checks: dict[str, str] = {}
    if hub.bus is not None:
        checks["bus"] = "up" if hub.bus.up else "down"
    if hub.link is not None:
        checks["messages_link"] = "up" if hub.link.up else "down"
    service: MessagesService | None = getattr(request.app.state, "messages_service", None)
    if service is not None:
        checks.update(await service.checks())
    ready = all(state == "up" for state in checks.values())
    shared: SharedChanges | None = getattr(request.app.state, "shared_directory", None)
    if shared is not None:
        checks["directory"] = "up" if await shared.reachable() else "down"
    status = "ok" if all(state == "up" for state in checks.values()) else "degraded"
    code = 503 if request.query_params.get("ready") == "1" and not ready else 200
    return JSONResponse({"status": status, "checks": checks}, status_code=code)


async def metrics(request: Request) -> Response:
    """Prometheus text (``signaling.metrics``); open like /healthz unless
    ``admin.metrics_login``."""
    hub: Hub | None = getattr(request.app.state, "hub", None)
    if hub is None:
        return JSONResponse({"code": "unavailable", "text": "starting"}, status_code=503)
    outbox = hub.outbox
    text = render_metrics(
        hub.switch.status(),
        connections=hub.connection_count,
        stored=outbox.acknowledged if outbox is not None else 0,
        outbox_depth=len(outbox.pending) if outbox is not None else 0,
        frame_times=hub.frame_times,
        held=hub.held(),
        bus=hub.bus,
        gc_pauses=request.app.state.gc_pauses.lines(GC_PAUSE_SECONDS),
    )
    return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")


def _on_hub(app: Starlette, actions: list[Action]) -> None:
    """Carry out actions of the core on the running hub; before it starts there are no
    connections to act on, and the core's timers wait for the hub's timer task."""
    hub: Hub | None = getattr(app.state, "hub", None)
    if hub is not None:
        hub.apply(actions)


async def _json_error(request: Request, exc: Exception) -> Response:
    """404 and 405 as JSON ``{code, text}`` (PROTOCOL §10.3), like every other error."""
    status = getattr(exc, "status_code", 500)
    code = "not_found" if status == 404 else "bad_state"
    text = "no such path" if status == 404 else "method not allowed here"
    return JSONResponse({"code": code, "text": text}, status_code=status)


def _admin_only(
    handler: Callable[[Request], Awaitable[Response]],
    authorized: Callable[[Request], Awaitable[bool]],
) -> Callable[[Request], Awaitable[Response]]:
    async def guarded(request: Request) -> Response:
        if not await authorized(request):
            return JSONResponse(
                {"code": "forbidden", "text": "admin login needed"},
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="Switchboard admin"'},
            )
        return await handler(request)

    return guarded
