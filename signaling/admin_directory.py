"""Tenants, their users and their App objects, for operators (PROTOCOL §10.2): list,
read, create or change, delete; JSON in and out, passwords never out.

Tenants: ``GET /admin/tenants`` → ``{"tenants":[{domain, users, apps}…]}`` (counts);
``PUT /admin/tenants/<domain>`` adds an empty tenant (201, or 200 when it exists);
``DELETE`` removes one with everything in it (not the default tenant). Only the server's
admin adds or removes tenants.

App objects: ``/admin/apps[?domain=D]`` and ``/admin/apps/<domain>/<name>`` as for users,
with ``{dn, password, act_for, apis}``.

Users:

``GET /admin/users[?domain=D]`` → ``{"users":[{domain, sip, dn, num, licences}…]}``;
``GET /admin/users/<domain>/<sip>`` → one user; ``PUT`` the same path with ``{dn, num,
password, licences}`` creates (``password`` required, 201) or changes (fields left out
keep their value, 200); ``DELETE`` removes (204). Every field is checked as the config
checks it. A change takes effect at the next lookup: the next login, setup or
PbxMessages session (a new licence lets the user open a session on the next try);
connections already open keep what they logged in with.

The server's admin sees every tenant; a tenant admin sees and changes its own only
(``forbidden`` for any other, even to ask whether it exists).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from config import AppConfig, ConfigError, UserConfig, app_from_table, check_domain, user_from_table

from .admin_login import AdminLogins, AdminScope
from .directory.changes import DirectoryChanges, app_table, user_table
from .directory.directory import Directory, Tenant

__all__ = ["DirectoryAdmin"]

_MAX_BODY = 64 * 1024
_HOSTNAME = re.compile(
    r"(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
)
log = logging.getLogger(__name__)

Handler = Callable[[Request, AdminScope], Awaitable[Response]]


class DirectoryAdmin:
    def __init__(
        self, directory: Directory, changes: DirectoryChanges, logins: AdminLogins
    ) -> None:
        self._directory = directory
        self._changes = changes
        self._logins = logins

    def routes(self) -> list[BaseRoute]:
        one = "/admin/users/{domain}/{sip}"
        app = "/admin/apps/{domain}/{name}"
        tenant = "/admin/tenants/{domain}"
        return [
            Route("/admin/users", self._guard(self._list), methods=["GET"]),
            Route(one, self._guard(self._get), methods=["GET"]),
            Route(one, self._guard(self._put), methods=["PUT"]),
            Route(one, self._guard(self._delete), methods=["DELETE"]),
            Route("/admin/apps", self._guard(self._list_apps), methods=["GET"]),
            Route(app, self._guard(self._get_app), methods=["GET"]),
            Route(app, self._guard(self._put_app), methods=["PUT"]),
            Route(app, self._guard(self._delete_app), methods=["DELETE"]),
            Route("/admin/tenants", self._guard(self._list_tenants), methods=["GET"]),
            Route(tenant, self._guard(self._put_tenant), methods=["PUT"]),
            Route(tenant, self._guard(self._delete_tenant), methods=["DELETE"]),
        ]

    def _guard(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            scope = self._logins.who(request)
            if scope is None:
                return _error(
                    401,
                    "forbidden",
                    "admin login needed",
                    {"WWW-Authenticate": 'Basic realm="Switchboard admin"'},
                )
            domain = request.path_params.get("domain") or request.query_params.get("domain")
            if domain is not None and not scope.covers(domain):
                return _error(403, "forbidden", "another tenant's users")
            try:
                response = await handler(request, scope)
            except OSError:
                log.exception("an admin change could not be saved; nothing was changed")
                response = _error(500, "internal", "the change could not be saved")
            response.headers["Cache-Control"] = "no-store"
            return response

        return guarded

    async def _list(self, request: Request, scope: AdminScope) -> Response:
        wanted = request.query_params.get("domain")
        domains = [wanted] if wanted else self._directory.domains()
        users = []
        for domain in domains:
            tenant = self._directory.tenant(domain)
            if tenant is None or tenant.domain != domain:
                return _error(404, "not_found", "no such tenant")
            if scope.covers(domain):
                users += [_shown(domain, user) for _, user in sorted(tenant.users.items())]
        return JSONResponse({"users": users})

    async def _get(self, request: Request, scope: AdminScope) -> Response:
        domain, sip = request.path_params["domain"], request.path_params["sip"]
        tenant = self._directory.tenant(domain)
        user = tenant.user(sip) if tenant is not None and tenant.domain == domain else None
        if user is None:
            return _error(404, "not_found", "no such user")
        return JSONResponse(_shown(domain, user))

    async def _put(self, request: Request, scope: AdminScope) -> Response:
        domain, sip = request.path_params["domain"], request.path_params["sip"]
        fields = await _json_object(request)  # first: the tenant is looked up after it
        if isinstance(fields, Response):
            return fields
        tenant = self._tenant(domain)
        if tenant is None:
            return _error(404, "not_found", "no such tenant")
        old = tenant.user(sip)
        table: dict[str, Any] = {**(user_table(old) if old else {}), **fields}
        try:
            user = user_from_table(sip, table, "user")
            tenant.check_put(user)
        except ConfigError as exc:
            return _error(400, "bad_json", str(exc))
        except ValueError as exc:
            return _error(409, "bad_state", str(exc))
        self._changes.record_user(domain, sip, user)  # saved first: then made
        tenant.put(user)
        return JSONResponse(_shown(domain, user), status_code=200 if old else 201)

    async def _delete(self, request: Request, scope: AdminScope) -> Response:
        domain, sip = request.path_params["domain"], request.path_params["sip"]
        tenant = self._tenant(domain)
        if tenant is None or tenant.user(sip) is None:
            return _error(404, "not_found", "no such user")
        try:
            tenant.check_remove(sip)
        except ValueError as exc:
            return _error(409, "bad_state", str(exc))
        self._changes.record_user(domain, sip, None)
        tenant.remove(sip)
        return Response(status_code=204)

    # -- tenants -----------------------------------------------------------------------------

    async def _list_tenants(self, request: Request, scope: AdminScope) -> Response:
        tenants = []
        for domain in self._directory.domains():
            tenant = self._directory.tenant(domain)
            if tenant is not None and scope.covers(domain):
                tenants.append(
                    {"domain": domain, "users": len(tenant.users), "apps": len(tenant.apps)}
                )
        return JSONResponse({"tenants": tenants})

    async def _put_tenant(self, request: Request, scope: AdminScope) -> Response:
        if scope.domain is not None:
            return _error(403, "forbidden", "only the server's admin adds tenants")
        domain = request.path_params["domain"]
        try:
            check_domain(domain, "domain")
        except ConfigError as exc:
            return _error(400, "bad_json", str(exc))
        if _HOSTNAME.fullmatch(domain) is None:
            return _error(400, "bad_json", "domain: expected a host name such as example.com")
        if self._tenant(domain) is not None:
            return JSONResponse({"domain": domain}, status_code=200)
        self._changes.record_tenant(domain, added=True)
        self._directory.add_tenant(domain)
        return JSONResponse({"domain": domain}, status_code=201)

    async def _delete_tenant(self, request: Request, scope: AdminScope) -> Response:
        if scope.domain is not None:
            return _error(403, "forbidden", "only the server's admin removes tenants")
        domain = request.path_params["domain"]
        if self._tenant(domain) is None:
            return _error(404, "not_found", "no such tenant")
        if domain == self._directory.default_domain:
            return _error(409, "bad_state", "the default tenant (login.default_domain) stays")
        self._changes.record_tenant(domain, added=False)
        self._directory.remove_tenant(domain)
        return Response(status_code=204)

    # -- App objects ---------------------------------------------------------------------

    async def _list_apps(self, request: Request, scope: AdminScope) -> Response:
        wanted = request.query_params.get("domain")
        domains = [wanted] if wanted else self._directory.domains()
        apps = []
        for domain in domains:
            tenant = self._tenant(domain)
            if tenant is None:
                return _error(404, "not_found", "no such tenant")
            if scope.covers(domain):
                apps += [_shown_app(domain, app) for _, app in sorted(tenant.apps.items())]
        return JSONResponse({"apps": apps})

    async def _get_app(self, request: Request, scope: AdminScope) -> Response:
        domain, name = request.path_params["domain"], request.path_params["name"]
        tenant = self._tenant(domain)
        app = tenant.apps.get(name) if tenant is not None else None
        if app is None:
            return _error(404, "not_found", "no such App object")
        return JSONResponse(_shown_app(domain, app))

    async def _put_app(self, request: Request, scope: AdminScope) -> Response:
        domain, name = request.path_params["domain"], request.path_params["name"]
        fields = await _json_object(request)  # first: the tenant is looked up after it
        if isinstance(fields, Response):
            return fields
        tenant = self._tenant(domain)
        if tenant is None:
            return _error(404, "not_found", "no such tenant")
        old = tenant.apps.get(name)
        table: dict[str, Any] = {**(app_table(old) if old else {}), **fields}
        try:
            app = app_from_table(name, table, "app", set(tenant.users))
            tenant.check_put_app(app)
        except ConfigError as exc:
            return _error(400, "bad_json", str(exc))
        except ValueError as exc:
            return _error(409, "bad_state", str(exc))
        self._changes.record_app(domain, name, app)  # saved first: then made
        tenant.put_app(app)
        return JSONResponse(_shown_app(domain, app), status_code=200 if old else 201)

    async def _delete_app(self, request: Request, scope: AdminScope) -> Response:
        domain, name = request.path_params["domain"], request.path_params["name"]
        tenant = self._tenant(domain)
        if tenant is None or name not in tenant.apps:
            return _error(404, "not_found", "no such App object")
        self._changes.record_app(domain, name, None)
        tenant.remove_app(name)
        return Response(status_code=204)

    def _tenant(self, domain: str) -> Tenant | None:
        tenant = self._directory.tenant(domain)
        return tenant if tenant is not None and tenant.domain == domain else None


async def _json_object(request: Request) -> dict[str, Any] | Response:
    body = await request.body()
    if len(body) > _MAX_BODY:
        return _error(413, "too_big", "request too big")
    try:
        fields = json.loads(body)
    except (ValueError, RecursionError):
        fields = None
    if not isinstance(fields, dict):
        return _error(400, "bad_json", "the body must be a JSON object")
    return fields


def _shown_app(domain: str, app: AppConfig) -> dict[str, Any]:
    """An App object as the API shows it: never the password."""
    return {
        "domain": domain,
        "name": app.name,
        "dn": app.dn,
        "act_for": sorted(app.act_for),
        "apis": list(app.apis),
    }


def _shown(domain: str, user: UserConfig) -> dict[str, Any]:
    """A user as the API shows it: never the password."""
    return {
        "domain": domain,
        "sip": user.sip,
        "dn": user.dn,
        "num": user.num,
        "licences": sorted(user.licences),
    }


def _error(status: int, code: str, text: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"code": code, "text": text}, status_code=status, headers=headers)
