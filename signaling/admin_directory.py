"""Tenants, their users, App objects and support queues, for operators (PROTOCOL §10.2):
list, read, create or change, delete; JSON in and out, passwords never out.

Tenants: ``GET /admin/tenants`` → ``{"tenants":[{domain, users, apps}…]}`` (counts);
``PUT /admin/tenants/<domain>`` adds an empty tenant (201, or 200 when it exists);
``DELETE`` removes one with everything in it (not the default tenant). Only the server's
admin adds or removes tenants.

App objects: ``/admin/apps[?domain=D]`` and ``/admin/apps/<domain>/<name>`` as for users,
with ``{dn, password, act_for, apis, num, licences}`` (``num`` and ``licences`` count once
"PbxSignal" is among ``apis``: the App object is then a device of its own, docs 12.24).

Queues: ``/admin/queues[?domain=D]`` → ``{"queues":[{domain, sip, dn, agents,
take_on_write}…]}`` and ``/admin/queues/<domain>/<sip>`` as for users, with ``{dn, agents,
take_on_write}``; agents must be users of the tenant, and a user who is an agent cannot be
deleted.

Users:

``GET /admin/users[?domain=D]`` → ``{"users":[{domain, sip, dn, num, licences,
max_chats, role}…]}`` (people with an account: visitors are not among them);
``GET /admin/users/<domain>/<sip>`` → one user; ``PUT`` the same path
with ``{dn, num, password, licences, max_chats, role}`` creates (``password`` required, 201)
or changes (fields left out keep their value, 200); ``DELETE`` removes (204). Every field
is checked as the config checks it. A change takes effect at the next lookup: the next
login, setup or PbxMessages session (a new licence lets the user open a session on the
next try); connections already open keep what they logged in with.

Visitors (the throwaway accounts of ``POST /api/visitors``, PROTOCOL §9.1) are listed apart
and read-only, without a user's fields, which mean nothing for them: ``GET
/admin/visitors[?domain=D]`` → ``{"visitors":[{domain, sip, dn}…]}`` (docs 12.36); on a node
of a cluster every node's, from Redis (docs 12.47).

The server's admin sees every tenant; a tenant admin sees and changes its own only
(``forbidden`` for any other, even to ask whether it exists).

Every change is kept (a ``ChangeLog``: a file, or the cluster's database, which then
makes it on every node) before it is answered; one that cannot be kept is answered 500
and not made.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from config import (
    AppConfig,
    ConfigError,
    QueueConfig,
    UserConfig,
    app_from_table,
    check_domain,
    queue_from_table,
    user_from_table,
)

from .admin_login import AdminLogins, AdminScope
from .directory.change_set import Change, ChangeLog, Kind, app_table, queue_table, user_table
from .directory.directory import Directory, Tenant
from .directory.errors import ChangesUnavailable
from .support.visitors import VISITOR_PREFIX

__all__ = ["DirectoryAdmin"]

_MAX_BODY = 64 * 1024
_HOSTNAME = re.compile(
    r"(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
)
log = logging.getLogger(__name__)

Handler = Callable[[Request, AdminScope], Awaitable[Response]]

VisitorList = Callable[[Collection[str]], Awaitable[dict[str, list[tuple[str, str]]] | None]]
"""(sip, dn) of the visitor accounts of each of some tenants in the whole cluster; None
when unknown now."""


class DirectoryAdmin:
    def __init__(
        self,
        directory: Directory,
        changes: ChangeLog,
        logins: AdminLogins,
        visitors: VisitorList | None = None,
    ) -> None:
        """``visitors``: on a node of a cluster, the visitor accounts of every node."""
        self._directory = directory
        self._changes = changes
        self._logins = logins
        self._cluster_visitors = visitors

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = []
        for kind in (_USERS, _APPS, _QUEUES):
            one = f"/admin/{kind.plural}/{{domain}}/{{name}}"
            routes += [
                Route(f"/admin/{kind.plural}", self._guard(self._lister(kind)), methods=["GET"]),
                Route(one, self._guard(self._getter(kind)), methods=["GET"]),
                Route(one, self._guard(self._putter(kind)), methods=["PUT"]),
                Route(one, self._guard(self._deleter(kind)), methods=["DELETE"]),
            ]
        tenant = "/admin/tenants/{domain}"
        return [
            *routes,
            Route("/admin/visitors", self._guard(self._list_visitors), methods=["GET"]),
            Route("/admin/tenants", self._guard(self._list_tenants), methods=["GET"]),
            Route(tenant, self._guard(self._put_tenant), methods=["PUT"]),
            Route(tenant, self._guard(self._delete_tenant), methods=["DELETE"]),
        ]

    def _guard(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            scope = await self._logins.who(request)
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
            except (OSError, ChangesUnavailable):
                log.exception("an admin change could not be saved; nothing was changed")
                response = _error(500, "internal", "the change could not be saved")
            response.headers["Cache-Control"] = "no-store"
            return response

        return guarded

    # -- users, App objects, queues: one shape, described by an _Entries -------------------

    def _lister(self, kind: _Entries) -> Handler:
        async def listed(request: Request, scope: AdminScope) -> Response:
            wanted = request.query_params.get("domain")
            entries: list[dict[str, Any]] = []
            for domain in [wanted] if wanted else self._directory.domains():
                tenant = self._tenant(domain)
                if tenant is None:
                    return _error(404, "not_found", "no such tenant")
                if scope.covers(domain):
                    entries += [
                        kind.shown(domain, entry)
                        for name, entry in sorted(kind.of(tenant).items())
                        if kind.listed(name)
                    ]
            return JSONResponse({kind.plural: entries})

        return listed

    async def _list_visitors(self, request: Request, scope: AdminScope) -> Response:
        listed = self._cluster_visitors
        if listed is None:  # one node: its directory holds them all
            return await self._lister(_VISITORS)(request, scope)
        wanted = request.query_params.get("domain")
        domains = [wanted] if wanted else self._directory.domains()
        if any(self._tenant(domain) is None for domain in domains):
            return _error(404, "not_found", "no such tenant")
        covered = [domain for domain in domains if scope.covers(domain)]
        found = await listed(covered) if covered else {}
        if found is None:
            return _error(503, "unavailable", "the cluster's visitors cannot be read now")
        entries = [
            {"domain": domain, "sip": sip, "dn": dn}
            for domain in covered
            for sip, dn in found.get(domain, ())
        ]
        return JSONResponse({"visitors": entries})

    def _getter(self, kind: _Entries) -> Handler:
        async def got(request: Request, scope: AdminScope) -> Response:
            domain, name = request.path_params["domain"], request.path_params["name"]
            tenant = self._tenant(domain)
            entry = kind.of(tenant).get(name) if tenant is not None else None
            if entry is None:
                return _error(404, "not_found", f"no such {kind.singular}")
            return JSONResponse(kind.shown(domain, entry))

        return got

    def _putter(self, kind: _Entries) -> Handler:
        async def put(request: Request, scope: AdminScope) -> Response:
            domain, name = request.path_params["domain"], request.path_params["name"]
            fields = await _json_object(request)  # first: the tenant is looked up after it
            if isinstance(fields, Response):
                return fields
            tenant = self._tenant(domain)
            if tenant is None:
                return _error(404, "not_found", "no such tenant")
            old = kind.of(tenant).get(name)
            table: dict[str, Any] = {**(kind.table(old) if old else {}), **fields}
            try:
                entry = kind.parse(name, table, tenant)
                kind.check_put(tenant, entry)
            except ConfigError as exc:
                return _error(400, "bad_json", str(exc))
            except ValueError as exc:
                return _error(409, "bad_state", str(exc))
            change = Change(domain, kind.kind, name, kind.table(entry))
            await self._changes.keep(change, lambda: kind.put(tenant, entry))  # saved first
            return JSONResponse(kind.shown(domain, entry), status_code=200 if old else 201)

        return put

    def _deleter(self, kind: _Entries) -> Handler:
        async def deleted(request: Request, scope: AdminScope) -> Response:
            domain, name = request.path_params["domain"], request.path_params["name"]
            tenant = self._tenant(domain)
            if tenant is None or name not in kind.of(tenant):
                return _error(404, "not_found", f"no such {kind.singular}")
            try:
                kind.check_remove(tenant, name)
            except ValueError as exc:
                return _error(409, "bad_state", str(exc))
            change = Change(domain, kind.kind, name, None)
            await self._changes.keep(change, lambda: kind.remove(tenant, name))
            return Response(status_code=204)

        return deleted

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
        change = Change.tenant(domain, added=True)
        await self._changes.keep(change, lambda: self._directory.add_tenant(domain))
        return JSONResponse({"domain": domain}, status_code=201)

    async def _delete_tenant(self, request: Request, scope: AdminScope) -> Response:
        if scope.domain is not None:
            return _error(403, "forbidden", "only the server's admin removes tenants")
        domain = request.path_params["domain"]
        if self._tenant(domain) is None:
            return _error(404, "not_found", "no such tenant")
        if domain == self._directory.default_domain:
            return _error(409, "bad_state", "the default tenant (login.default_domain) stays")
        change = Change.tenant(domain, added=False)
        await self._changes.keep(change, lambda: self._directory.remove_tenant(domain))
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


@dataclass(frozen=True, slots=True)
class _Entries:
    """What differs between users, App objects and queues in the API; the handlers are
    shared."""

    plural: str
    singular: str
    kind: Kind
    """Where its changes go (``change_set``)."""
    of: Callable[[Tenant], Mapping[str, Any]]
    parse: Callable[[str, dict[str, Any], Tenant], Any]
    table: Callable[[Any], dict[str, Any]]
    shown: Callable[[str, Any], dict[str, Any]]
    check_put: Callable[[Tenant, Any], None]
    put: Callable[[Tenant, Any], None]
    check_remove: Callable[[Tenant, str], None]
    remove: Callable[[Tenant, str], Any]
    listed: Callable[[str], bool] = lambda name: True
    """Which entries the list shows (users: not the visitors, listed apart)."""


def _shown_app(domain: str, app: AppConfig) -> dict[str, Any]:
    """An App object as the API shows it: never the password."""
    return {
        "domain": domain,
        "name": app.name,
        "dn": app.dn,
        "act_for": sorted(app.act_for),
        "apis": list(app.apis),
        "num": app.num,
        "licences": sorted(app.licences),
    }


def _shown_user(domain: str, user: UserConfig) -> dict[str, Any]:
    """A user as the API shows it: never the password."""
    return {
        "domain": domain,
        "sip": user.sip,
        "dn": user.dn,
        "num": user.num,
        "licences": sorted(user.licences),
        "max_chats": user.max_chats,
        "role": user.role,
    }


def _user_from_table(sip: str, table: dict[str, Any]) -> UserConfig:
    if _is_visitor(sip):  # the visitors' own names: such a user would be listed as one
        raise ConfigError("user.sip", f"names starting with {VISITOR_PREFIX} are for visitors")
    return user_from_table(sip, table, "user")


def _is_visitor(sip: str) -> bool:
    return sip.startswith(VISITOR_PREFIX)


def _shown_visitor(domain: str, user: UserConfig) -> dict[str, Any]:
    """A visitor: who it says it is, nothing of an agent's or a licensed user's."""
    return {"domain": domain, "sip": user.sip, "dn": user.dn}


def _shown_queue(domain: str, queue: QueueConfig) -> dict[str, Any]:
    return {
        "domain": domain,
        "sip": queue.sip,
        "dn": queue.dn,
        "agents": list(queue.agents),
        "take_on_write": queue.take_on_write,
    }


def _error(status: int, code: str, text: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"code": code, "text": text}, status_code=status, headers=headers)


_USERS = _Entries(
    plural="users",
    singular="user",
    kind="users",
    of=lambda tenant: tenant.users,
    parse=lambda sip, table, tenant: _user_from_table(sip, table),
    table=user_table,
    shown=_shown_user,
    check_put=Tenant.check_put,
    put=Tenant.put,
    check_remove=Tenant.check_remove,
    remove=Tenant.remove,
    listed=lambda sip: not _is_visitor(sip),
)
_VISITORS = dataclasses.replace(
    _USERS, plural="visitors", singular="visitor", shown=_shown_visitor, listed=_is_visitor
)
"""Only listed (``GET /admin/visitors``): they come and go through ``POST /api/visitors``."""
_APPS = _Entries(
    plural="apps",
    singular="App object",
    kind="apps",
    of=lambda tenant: tenant.apps,
    parse=lambda name, table, tenant: app_from_table(name, table, "app", set(tenant.users)),
    table=app_table,
    shown=_shown_app,
    check_put=Tenant.check_put_app,
    put=Tenant.put_app,
    check_remove=lambda tenant, name: None,
    remove=Tenant.remove_app,
)
_QUEUES = _Entries(
    plural="queues",
    singular="queue",
    kind="queues",
    of=lambda tenant: tenant.queues,
    parse=lambda sip, table, tenant: queue_from_table(sip, table, "queue", set(tenant.users)),
    table=queue_table,
    shown=_shown_queue,
    check_put=Tenant.check_put_queue,
    put=Tenant.put_queue,
    check_remove=lambda tenant, sip: None,
    remove=Tenant.remove_queue,
)
