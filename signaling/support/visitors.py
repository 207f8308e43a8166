"""Visitors (PROTOCOL §9.1): throwaway accounts for people chatting from a web page.

``POST /api/visitors {"name":…, "context":{…}}`` makes a user of the tenant with a random
sip (``visitor-<token>``) and password, no licence (its chats are volatile), and answers
``{"domain", "sip", "password", "expires"}``. The account is deleted once it has gone
``support.visitor_ttl`` without a registration: the switch owns that from the moment it
is told of the account (``Switch.visitor_made``), on the hub's clock. Visitors live in
memory only (a restart ends them, as it ends their volatile chats). Each client address
may make ``support.visitors_per_hour`` of them.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from config import SupportConfig, UserConfig

from ..core.actions import Action
from ..core.switch import Switch
from ..core.window import SlidingWindow

__all__ = ["VISITOR_PREFIX", "Visitors"]

VISITOR_PREFIX = "visitor-"
MAX_NAME = 80
_HOUR = 3600.0


class Visitors:
    def __init__(
        self, switch: Switch, config: SupportConfig, apply: Callable[[list[Action]], None]
    ) -> None:
        self._switch = switch
        self._config = config
        self._apply = apply
        """Carries out the actions the switch returns (the hub's)."""
        self._made = SlidingWindow(config.visitors_per_hour, _HOUR)

    def routes(self) -> list[BaseRoute]:
        return [Route("/api/visitors", self._create, methods=["POST"])]

    async def _create(self, request: Request) -> Response:
        clock = self._switch.clock
        address = request.client.host if request.client else "-"
        if self._made.full(address, clock.monotonic()):
            return _error(429, "rate_limited", "too many visitor accounts from this address")
        body = await request.body()
        try:
            fields = json.loads(body) if body else {}
        except (ValueError, RecursionError):
            fields = None
        if not isinstance(fields, dict) or not isinstance(fields.get("name", ""), str):
            return _error(400, "bad_json", 'expected {"name": <text>, "context": {…}}')
        directory = self._switch.directory
        domain = directory.default_domain
        tenant = directory.tenant(domain)
        if tenant is None:
            return _error(404, "not_found", "no tenant for visitors")
        name = " ".join(str(fields.get("name") or "Visitor").split())[:MAX_NAME] or "Visitor"
        sip = VISITOR_PREFIX + secrets.token_hex(8)
        password = secrets.token_urlsafe(24)
        tenant.put(UserConfig(sip=sip, dn=name, num="", password=password))
        self._made.add(address, clock.monotonic())  # counts what this address made
        self._apply(self._switch.visitor_made(domain, sip, fields.get("context")))
        expires = int((clock.wall() + self._config.visitor_ttl) * 1000)
        answer = {"domain": domain, "sip": sip, "password": password, "expires": expires}
        return JSONResponse(answer, status_code=201, headers={"Cache-Control": "no-store"})


def _error(status: int, code: str, text: str) -> Response:
    return JSONResponse({"code": code, "text": text}, status_code=status)
