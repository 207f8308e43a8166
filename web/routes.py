"""Routes that serve the web client's files, with the security headers every page gets."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from config import Config

__all__ = ["PAGES", "STATIC", "web_routes"]

STATIC = Path(__file__).parent / "static"

PAGES = {"/": "chat.html", "/agent": "agent.html", "/visit": "visit.html", "/admin": "admin.html"}
"""Path -> the page's file in ``static/``."""

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'"
)
"""The pages load nothing from elsewhere and run no inline script: text a peer wrote can
never become code, even if sanitizing ever failed."""

EMBEDDABLE = {"/visit"}
"""Pages other sites may frame: the visitor widget lives in a frame on shop pages. Which
sites: those of the tenant's ``widget_origins`` (``/visit?domain=D``), any when it lists
none."""

_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

HSTS = "max-age=31536000"
"""With ``[server] tls_cert`` the server speaks HTTPS only: browsers are told to keep to it
for a year, so a later link or typed address never goes out in clear text. Not for
subdomains: other hosts under the same name are not this server's to decide."""


def _headers(config: Config) -> dict[str, str]:
    if not config.server.tls_cert:
        return dict(_HEADERS)
    return {**_HEADERS, "Strict-Transport-Security": HSTS}


def web_routes(config: Config) -> list[BaseRoute]:
    headers = _headers(config)
    routes: list[BaseRoute] = [
        Route(path, _page(path, name, config, headers)) for path, name in PAGES.items()
    ]
    routes.append(Route("/api/emoticons", _emoticons(config)))
    routes.append(Route("/api/limits", _limits(config)))
    routes.append(Route("/favicon.ico", _favicon(headers)))
    static = _Static(directory=STATIC, headers=headers)
    routes.append(Mount("/static", app=static, name="static"))
    return routes


def _limits(config: Config) -> Callable[[Request], Awaitable[Response]]:
    """``GET /api/limits`` (docs/protocol.md 12.36): the sizes a client should keep to
    before it sends, so that it can say so rather than meet ``message_too_big``."""
    answer = {"max_message": config.limits.max_message, "max_file": config.files.max_size}

    async def limits(request: Request) -> Response:
        return JSONResponse(answer, headers={"Cache-Control": "no-cache"})

    return limits


def _page(
    path: str, name: str, config: Config, headers: dict[str, str]
) -> Callable[[Request], Awaitable[Response]]:
    ancestors = {tenant.domain: tenant.widget_origins for tenant in config.tenants}
    default = config.login.default_domain

    async def page(request: Request) -> Response:
        if path not in EMBEDDABLE:
            return FileResponse(STATIC / name, media_type="text/html", headers=headers)
        origins = ancestors.get(request.query_params.get("domain") or default, ())
        framed_by = " ".join(("'self'", *origins)) if origins else "*"
        csp = CSP.replace("frame-ancestors 'self'", f"frame-ancestors {framed_by}")
        return FileResponse(
            STATIC / name,
            media_type="text/html",
            headers={**headers, "Content-Security-Policy": csp},
        )

    return page


def _emoticons(config: Config) -> Callable[[Request], Awaitable[Response]]:
    """``GET /api/emoticons[?domain=D]`` → ``{"emoticons": {code: path}}``: a tenant's custom
    emoticons (``[tenants."<domain>".emoticons]``); public, like the images themselves."""
    by_domain = {tenant.domain: dict(tenant.emoticons) for tenant in config.tenants}
    default = config.login.default_domain

    async def emoticons(request: Request) -> Response:
        domain = request.query_params.get("domain") or default
        return JSONResponse(
            {"emoticons": by_domain.get(domain, {})}, headers={"Cache-Control": "max-age=300"}
        )

    return emoticons


def _favicon(headers: dict[str, str]) -> Callable[[Request], Awaitable[Response]]:
    async def favicon(request: Request) -> Response:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml", headers=headers)

    return favicon


class _Static(StaticFiles):
    """Static files with the same headers as the pages (the widget's script is embedded
    on other sites' pages, so it is the one file that may be loaded cross-origin)."""

    def __init__(self, *, directory: Path, headers: dict[str, str]) -> None:
        super().__init__(directory=directory)
        self._headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                for key, value in self._headers.items():
                    headers.append((key.lower().encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        await super().__call__(scope, receive, with_headers)
