"""The composition root: builds the switch, hub and routes from one ``Config``.

``create_app`` is what ``switchboard serve``, the tests and the benchmarks start; the
Starlette lifespan starts and stops the hub's background tasks.

Roles (DESIGN "Deployment modes"): ``all`` serves the hub and, when ``messages.enabled``,
the messages service in one process; the hub still reaches the service over its
AppWebsocket (loopback), exactly as it would in another process. ``hub`` links to the
service at ``messages.url``; ``messages`` serves only the service.
"""

from __future__ import annotations

import gc
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config import Config, ConfigError
from messages_service.app import MessagesService, create_messages_app
from signaling.admin_directory import DirectoryAdmin
from signaling.admin_login import AdminLogins
from signaling.appwebsocket.digest import new_challenge
from signaling.core.clock import Clock, SystemClock
from signaling.core.switch import Switch
from signaling.directory.changes import DirectoryChanges
from signaling.endpoint import pbx_websocket
from signaling.hub import Hub
from signaling.messages_link import ServiceLink
from signaling.metrics import render as render_metrics
from signaling.post_outbox import PostOutbox
from signaling.support.visitors import Visitors
from signaling.support.webhooks import WebhookSender
from tracing import Tracer
from tracing.logs import install_record_factory
from tracing.routes import TraceRoutes
from web import web_routes

__all__ = ["HUB_WEBSOCKET_PATH", "MESSAGES_WEBSOCKET_PATH", "Role", "create_app", "local_url"]

HUB_WEBSOCKET_PATH = "/PBX0/APPS/websocket"
MESSAGES_WEBSOCKET_PATH = "/messages/websocket"

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
        return create_messages_app(config)
    install_record_factory()
    messages = config.messages
    tracer = make_tracer(config)
    switch = Switch(config, clock or SystemClock(), make_challenge=make_challenge)
    logins = AdminLogins(config.admin, config.login, switch.clock.monotonic)
    admin_login = logins.server_admin
    changes = DirectoryChanges(config.server.data_dir / f"directory-{config.server.node}.json")
    changes.load_into(switch.directory)
    service: MessagesService | None = None
    password = messages.password
    if messages.enabled and role == "all" and not messages.url:
        password = password or secrets.token_hex(32)  # both ends live in this process
        service = MessagesService(
            config, password=password, tracer=tracer, users=switch.directory.user
        )
    if messages.enabled and role == "hub" and not messages.url:
        raise ConfigError("messages.url", "required for --role hub (where is the service?)")
    url = service_url or messages.url or local_url(config, MESSAGES_WEBSOCKET_PATH)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        hub = Hub(switch, send_queue=config.limits.send_queue, tracer=tracer)
        app.state.hub = hub
        if config.webhooks.url:
            hub.webhooks = WebhookSender(config.webhooks)
            hub.webhooks.start()
        if service is not None:
            await service.start()
        if messages.enabled:
            _link_messages_service(hub, config, url, password, tracer)
        await hub.start()
        if tracer.app:
            tracer.record("app", f"hub started ({role}), node {config.server.node}")
        # Everything alive now (modules, config, routes) lives as long as the process:
        # keep it out of the collector's full passes, which otherwise walk it all and
        # stall the relay for tens of milliseconds (docs/benchmarks.md).
        gc.freeze()
        try:
            yield
        finally:
            if tracer.app:
                tracer.record("app", "hub stopping")
            await hub.stop()
            if hub.webhooks is not None:
                await hub.webhooks.stop()
            if service is not None:
                await service.stop()

    routes: list[BaseRoute] = [
        WebSocketRoute(HUB_WEBSOCKET_PATH, pbx_websocket),
        Route("/healthz", healthz),
        Route(
            "/metrics",
            _admin_only(metrics, admin_login) if config.admin.metrics_login else metrics,
        ),
    ]
    if service is not None:
        routes += service.routes()
    routes += TraceRoutes(tracer, admin_login).routes()
    routes += DirectoryAdmin(switch.directory, changes, logins).routes()
    visitors = Visitors(switch, config.support, wake=lambda: _wake_hub(app))
    routes += visitors.routes()
    routes += web_routes(config)
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: _json_error, 405: _json_error},
    )
    app.add_middleware(HttpTrace, tracer=tracer)
    app.state.switch = switch
    app.state.tracer = tracer
    app.state.messages_service = service
    return app


def _link_messages_service(
    hub: Hub, config: Config, url: str, password: str, tracer: Tracer
) -> None:
    """The durable outbox and the link that empties it into the service (§7.7)."""
    outbox = PostOutbox(
        config.server.data_dir / f"outbox-{config.server.node}.jsonl", on_durable=hub.stored
    )
    hub.outbox = outbox
    hub.link = ServiceLink(
        url,
        password=password,
        domain=config.login.default_domain,
        node=config.server.node,
        dns=config.server.dns,
        config=config.messages,
        outbox=outbox,
        on_up=hub.service_up,
        on_down=hub.service_down,
        on_message=hub.from_service,
        on_duplicate=hub.duplicate,
        tracer=tracer,
    )


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
    """``ws://`` URL of ``path`` on this server, as a client on this machine reaches it."""
    host = config.server.host
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    shown = f"[{host}]" if ":" in host else host
    return f"ws://{shown}:{config.server.port}{path}"


async def healthz(request: Request) -> JSONResponse:
    """Liveness, with readiness alongside: 200 while the process serves (``status``
    ``ok``, or ``degraded`` when a dependency is down; ``checks`` say which), 503 only
    while starting. ``?ready=1`` answers 503 unless everything is up, for a load
    balancer that should send clients elsewhere meanwhile."""
    hub: Hub | None = getattr(request.app.state, "hub", None)
    if hub is None:
        return JSONResponse({"status": "starting"}, status_code=503)
    checks: dict[str, str] = {}
    if hub.link is not None:
        checks["messages_link"] = "up" if hub.link.up else "down"
    service: MessagesService | None = getattr(request.app.state, "messages_service", None)
    if service is not None:
        checks["database"] = "up" if await service.database_ready() else "down"
    ready = all(state == "up" for state in checks.values())
    body = {"status": "ok" if ready else "degraded", "checks": checks}
    status = 503 if request.query_params.get("ready") == "1" and not ready else 200
    return JSONResponse(body, status_code=status)


async def metrics(request: Request) -> Response:
    """Prometheus text (``signaling.metrics``); open like /healthz unless
    ``admin.metrics_login``."""
    hub: Hub | None = getattr(request.app.state, "hub", None)
    if hub is None:
        return JSONResponse({"code": "unavailable", "text": "starting"}, status_code=503)
    switch = hub.switch
    outbox = hub.outbox
    text = render_metrics(
        connections=hub.connection_count,
        registrations=len(switch.registry),
        calls=len(switch.chat.calls),
        messages=switch.chat.messages,
        stored=outbox.acknowledged if outbox is not None else 0,
        outbox_depth=len(outbox.pending) if outbox is not None else 0,
        errors=dict(switch.errors),
        frame_times=hub.frame_times,
        login_failures=switch.throttle.failures,
        login_throttled=dict(switch.throttle.throttled),
        throttle_keys=switch.throttle.tracked(switch.clock.monotonic()),
        sender_ids=len(switch.chat.sender_ids),
        resends=dict(switch.chat.resends),
        held=hub.held(),
    )
    return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")


def _wake_hub(app: Starlette) -> None:
    hub: Hub | None = getattr(app.state, "hub", None)
    if hub is not None:
        hub.wake()


async def _json_error(request: Request, exc: Exception) -> Response:
    """404 and 405 as JSON ``{code, text}`` (PROTOCOL §10.3), like every other error."""
    status = getattr(exc, "status_code", 500)
    code = "not_found" if status == 404 else "bad_state"
    text = "no such path" if status == 404 else "method not allowed here"
    return JSONResponse({"code": code, "text": text}, status_code=status)


def _admin_only(
    handler: Callable[[Request], Awaitable[Response]], authorized: Callable[[Request], bool]
) -> Callable[[Request], Awaitable[Response]]:
    async def guarded(request: Request) -> Response:
        if not authorized(request):
            return JSONResponse(
                {"code": "forbidden", "text": "admin login needed"},
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="Switchboard admin"'},
            )
        return await handler(request)

    return guarded
