"""Visitors (PROTOCOL §9.1): throwaway accounts for people chatting from a web page.

``POST /api/visitors {"name":…, "context":{…}, "domain":…}`` makes a user of the tenant
``domain`` names (the widget's ``data-domain``; the default tenant without it) with a
random sip (``visitor-<token>``) and password, no licence (its chats are volatile), and
answers ``{"domain", "sip", "password", "expires"}``. The account is deleted once it has
gone ``support.visitor_ttl`` without a registration: the switch owns that from the moment
it is told of the account (``Switch.visitor_made``), on the hub's clock. A node alone
keeps visitors in memory only (a restart ends them, as it ends their volatile chats); a
node of a cluster makes them in Redis first (``VisitorBook``, docs 12.44), so that they
may log in on any node, and answers 503 ``unavailable`` when Redis does not answer.

A hosted tenant's visitors use its agents' time, so a tenant may say which shop pages may
make them (``widget_origins``): a browser's request from a page elsewhere (its ``Origin``)
is refused. The widget's own frame (``/visit``, this server's origin) is checked where the
browser can enforce it, by the frame-ancestors of that page (``web.routes``). A client that
is not a browser sends no ``Origin`` and could forge one anyway; it is held by the per
address limit, which counts each tenant apart (``support.visitors_per_hour``), so that one
shop's busy network never locks another shop's visitors out.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any, Protocol, TypeGuard
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from config import Config, UserConfig

from ..core.actions import Action, VisitorRecord
from ..core.support_chat import context_of
from ..core.switch import Switch
from ..core.visitor_accounts import VISITOR_PREFIX
from ..core.window import SlidingWindow

__all__ = ["VISITOR_PREFIX", "LocalVisitors", "VisitorBook", "Visitors"]

MAX_NAME = 80
_HOUR = 3600.0


class VisitorBook(Protocol):
    """Where visitor accounts are made, counted per tenant and client address."""

    async def make_visitor(self, counted: str, record: VisitorRecord) -> bool | None:
        """True: made; False: ``support.visitors_per_hour`` were made for ``counted``
        within the hour; None: it could not be made now (nothing was)."""
        ...


class LocalVisitors:
    """The ``VisitorBook`` of a node alone: the count in memory, the account in the
    directory (``Visitors`` puts it there)."""

    def __init__(self, per_hour: int, clock: Callable[[], float]) -> None:
        self._made = SlidingWindow(per_hour, _HOUR)
        self._clock = clock

    async def make_visitor(self, counted: str, record: VisitorRecord) -> bool | None:
        now = self._clock()
        if self._made.full(counted, now):
            return False
        self._made.add(counted, now)  # counts what this address made here
        return True


class Visitors:
    def __init__(
        self,
        switch: Switch,
        config: Config,
        apply: Callable[[list[Action]], None],
        book: VisitorBook | None = None,
    ) -> None:
        """``book``: the cluster's (``signaling.bus.logins``); by default this node's."""
        self._switch = switch
        self._config = config.support
        self._origins = {tenant.domain: tenant.widget_origins for tenant in config.tenants}
        """Per configured tenant, the origins whose pages may make its visitors (none
        listed: any page; tenants the admin API added have none)."""
        self._apply = apply
        """Carries out the actions the switch returns (the hub's)."""
        clock = switch.clock.monotonic
        self._book = book or LocalVisitors(config.support.visitors_per_hour, clock)

    def routes(self) -> list[BaseRoute]:
        return [Route("/api/visitors", self._create, methods=["POST"])]

    async def _create(self, request: Request) -> Response:
        clock = self._switch.clock
        body = await request.body()
        try:
            fields = json.loads(body) if body else {}
        except (ValueError, RecursionError):
            fields = None
        if not _well_formed(fields):
            return _error(400, "bad_json", 'expected {"name": <text>, "domain": <text>, …}')
        directory = self._switch.directory
        domain = fields.get("domain") or directory.default_domain
        tenant = directory.tenant(domain)
        if tenant is None:
            return _error(404, "not_found", "no such tenant")
        if not self._origin_allowed(request, domain):
            return _error(403, "origin_refused", "this page may not make visitors of the tenant")
        address = request.client.host if request.client else "-"
        record = _new_visitor(tenant.domain, fields)
        made = await self._book.make_visitor(f"{domain} {address}", record)
        if made is None:
            return _error(503, "unavailable", "visitor accounts cannot be made now: try later")
        if not made:
            return _error(429, "rate_limited", "too many visitor accounts from this address")
        sip, password = record.sip, record.password
        tenant.put(UserConfig(sip=sip, dn=record.dn, num="", password=password))
        self._apply(self._switch.visitor_made(domain, sip, fields.get("context")))
        expires = int((clock.wall() + self._config.visitor_ttl) * 1000)
        answer = {"domain": domain, "sip": sip, "password": password, "expires": expires}
        return JSONResponse(answer, status_code=201, headers={"Cache-Control": "no-store"})

    def _origin_allowed(self, request: Request, domain: str) -> bool:
        """No ``Origin`` (not a browser), this server's own pages, or a listed origin."""
        origin = request.headers.get("origin")
        allowed = self._origins.get(domain, ())
        if origin is None or not allowed or origin in allowed:
            return True
        return urlsplit(origin).netloc == request.headers.get("host", "")


def _new_visitor(domain: str, fields: dict[str, Any]) -> VisitorRecord:
    """A new account: a random sip and password, the name given (tidied), the context
    as its chats will carry it."""
    name = " ".join(str(fields.get("name") or "Visitor").split())[:MAX_NAME] or "Visitor"
    context = fields.get("context")
    kept = context_of(context) if isinstance(context, dict) else None
    sip, password = VISITOR_PREFIX + secrets.token_hex(8), secrets.token_urlsafe(24)
    return VisitorRecord(domain, sip, name, password, kept)


def _well_formed(fields: object) -> TypeGuard[dict[str, Any]]:
    return (
        isinstance(fields, dict)
        and isinstance(fields.get("name", ""), str)
        and isinstance(fields.get("domain", ""), str)
    )


def _error(status: int, code: str, text: str) -> Response:
    return JSONResponse({"code": code, "text": text}, status_code=status)
