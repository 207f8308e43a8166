"""The operator's login to ``/admin``, ``/metrics`` and ``/debug.xml`` (PROTOCOL §10): HTTP
Basic, or a token from ``POST /admin/login``, against ``[admin]`` (the whole server) and
``[admin.tenants."<domain>"]`` (one tenant each). With no admin password configured every
request is refused, so a server started from the defaults exposes no admin surface. Failed
logins are throttled like client logins (PROTOCOL §3.6, the ``login.throttle_*`` numbers), the user
name given being the account: a guesser's (address, user) pair is made to wait, another
admin behind the same address is not. On a node of a cluster they are counted in Redis
for every node (docs 12.44), apart from client logins. A request a browser marks as
coming from another site is refused, so a page elsewhere cannot use an operator's
remembered credentials.

The token login (docs/protocol.md 12.36) lets the admin pages keep a revocable token for
their tab instead of the password: ``POST /admin/login {"user","password"}`` →
``{"token","expires_in","domain"}``, then ``Authorization: Bearer <token>`` on every admin
request until ``POST /admin/logout`` or ``TOKEN_TTL``. Tokens live in the memory of the
server that issued them: a restart signs the pages out. On a node of a cluster they live in
Redis instead (docs 12.47), so that a balancer may send each request of the pages to any
node and a logout on one ends the token on all."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from config import AdminConfig, LoginConfig
from signaling.appwebsocket.attempt_throttle import AttemptThrottle, ClusterThrottle
from signaling.appwebsocket.throttle import LoginThrottle, Throttle, ThrottlePolicy

__all__ = ["TOKEN_TTL", "AdminLogins", "AdminScope", "basic_login"]

TOKEN_TTL = 8 * 3600.0
"""How long a token from ``POST /admin/login`` is good for: a working day, then the
pages ask for the password again."""

ADMIN_SCOPE = "admin"
"""Admin logins are counted apart from client logins in the cluster's throttle."""

MAX_TOKENS = 1000
"""Tokens kept at once; past it the oldest goes (its page signs in again). Bounds what
repeated logins can make the server hold."""


@dataclass(frozen=True, slots=True)
class AdminScope:
    """Who an admin request comes from: ``domain`` None for the operator of the whole
    server, else the one tenant a tenant admin sees and changes."""

    domain: str | None

    def covers(self, domain: str) -> bool:
        return self.domain is None or self.domain == domain


_ADMIN_DESTINATIONS = frozenset({"empty", "document"})
"""What may carry an admin login: the admin pages' fetches, a typed address, curl (no
header). ``/debug.xml`` changes flags on a GET, so a chat message must not be able to make
a browser load it as an image with the operator's remembered credentials."""


class SharedTokens(Protocol):
    """The cluster's admin tokens (``signaling.bus.logins``), keyed by the hex digest of
    each token."""

    async def keep_admin_token(self, key: str, domain: str | None, ttl: float) -> bool:
        """Keep the token for ``ttl`` seconds; False when it was not kept."""
        ...

    async def admin_token(self, key: str) -> tuple[bool, str | None] | None:
        """(good, domain) of the token; None when the cluster did not answer."""
        ...

    async def end_admin_token(self, key: str) -> None:
        """End the token on every node (later if the cluster does not answer now)."""
        ...


class AdminLogins:
    """The server's admin and the tenant admins of ``[admin]``, checked by HTTP Basic or
    by a token their ``POST /admin/login`` was given."""

    def __init__(
        self,
        admin: AdminConfig,
        login: LoginConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        shared: ClusterThrottle | None = None,
        tokens: SharedTokens | None = None,
    ) -> None:
        """``shared``: the cluster's count of failed logins, ``tokens`` its admin
        tokens, on a node of a cluster."""
        login = login or LoginConfig()
        self._throttle = LoginThrottle(ThrottlePolicy.from_config(login))
        self._shared = shared
        self._shared_tokens = tokens
        self._clock = clock
        self._accounts: list[tuple[bytes, bytes, AdminScope]] = []
        if admin.password:
            self._accounts.append(
                (_digest(admin.user.encode()), _digest(admin.password.encode()), AdminScope(None))
            )
        for tenant in admin.tenants:
            if tenant.password:
                self._accounts.append(
                    (
                        _digest(tenant.user.encode()),
                        _digest(tenant.password.encode()),
                        AdminScope(tenant.domain),
                    )
                )
        self._tokens: OrderedDict[bytes, tuple[AdminScope, float]] = OrderedDict()
        """Issued tokens by their digest (a memory dump shows no usable token), oldest
        first, with when each stops working (on ``clock``). On a node of a cluster only
        those this node issued, asked when the cluster does not answer."""

    async def who(self, request: Request) -> AdminScope | None:
        """The scope of the request's valid admin login (Basic or a token), or None."""
        if not self._browser_may_send(request):
            return None
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            return await self._token_scope(value.strip())
        if scheme.lower() != "basic":
            return None  # no login tried: nothing to count
        try:
            given_user, sep, given_password = base64.b64decode(value, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            given_user, sep, given_password = b"", b"", b""
        address = _address(request)
        scope, _ = await self._check(address, given_user, given_password, tried=bool(sep))
        return scope

    def _browser_may_send(self, request: Request) -> bool:
        if not self._accounts or request.headers.get("sec-fetch-site") == "cross-site":
            return False
        # an <img>, <script>, frame... of a page: never the operator's wish
        return request.headers.get("sec-fetch-dest", "empty") in _ADMIN_DESTINATIONS

    async def _check(
        self, address: str, given_user: bytes, given_password: bytes, *, tried: bool = True
    ) -> tuple[AdminScope | None, bool]:
        """The account's scope (or None) and whether the pair was held back by the
        throttle."""
        account = given_user.decode("utf-8", "replace")
        throttle = await self._throttle_of(address, account)
        now = self._clock()
        if throttle.locked(address, account, now) > 0:
            return None, True
        user, password = _digest(given_user), _digest(given_password)
        found = None
        for account_user, account_password, scope in self._accounts:
            # Fixed-length digests, both parts compared for every account: neither which
            # part was wrong nor the password's length shows in the time taken.
            user_ok = hmac.compare_digest(user, account_user)
            password_ok = hmac.compare_digest(password, account_password)
            if tried and user_ok and password_ok and found is None:
                found = scope
        if found is None:
            throttle.failed(address, account, now)
        else:
            throttle.succeeded(address, account, now)
        return found, False

    async def _throttle_of(self, address: str, account: str) -> Throttle:
        """This node's throttle, or in a cluster the one of this attempt (its verdict
        asked for first, docs 12.44), unless this node refuses the attempt anyway."""
        shared = self._shared
        if shared is None or self._throttle.lock_left(address, account, self._clock()) > 0:
            return self._throttle  # a pair locked here is refused without counting it there
        verdict = await shared.check(ADMIN_SCOPE, address, account, charge=True)

        def forgive(taken: tuple[str, ...]) -> None:
            shared.forgive(ADMIN_SCOPE, address, account, taken)

        return AttemptThrottle(self._throttle, verdict, forgive)

    async def _token_scope(self, token: str) -> AdminScope | None:
        if not token:
            return None
        key = _token_key(token)
        if self._shared_tokens is not None:
            # The cluster's word first: the token may come from another node, or have
            # been ended on another node. Unanswered, this node's own tokens still work.
            known = await self._shared_tokens.admin_token(key.hex())
            if known is not None:
                good, domain = known
                if good:
                    return AdminScope(domain)
                self._tokens.pop(key, None)  # ended elsewhere: not good here in an outage
                return None
        held = self._tokens.get(key)
        if held is None:
            return None
        scope, expires = held
        if self._clock() >= expires:
            del self._tokens[key]
            return None
        return scope

    # -- POST /admin/login, POST /admin/logout ---------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/admin/login", self._login, methods=["POST"]),
            Route("/admin/logout", self._logout, methods=["POST"]),
        ]

    async def _login(self, request: Request) -> Response:
        if not self._browser_may_send(request):
            return _refused(401, "forbidden", "admin login refused")
        body = await request.body()
        try:
            fields = json.loads(body) if len(body) <= _MAX_LOGIN_BODY else None
        except (ValueError, RecursionError):
            fields = None
        if (
            not isinstance(fields, dict)
            or not isinstance(fields.get("user"), str)
            or not isinstance(fields.get("password"), str)
        ):
            return _refused(400, "bad_json", 'expected {"user": <text>, "password": <text>}')
        user, password = fields["user"].encode(), fields["password"].encode()
        scope, held = await self._check(_address(request), user, password)
        if held:
            return _refused(429, "rate_limited", "too many failed logins: wait, then try again")
        if scope is None:
            return _refused(401, "forbidden", "wrong user name or password")
        token = secrets.token_urlsafe(32)
        key = _token_key(token)
        shared = self._shared_tokens
        if shared is not None and not await shared.keep_admin_token(
            key.hex(), scope.domain, TOKEN_TTL
        ):
            # A token the other nodes cannot know would fail on every request the
            # balancer sends elsewhere: none is given out (HTTP Basic still works).
            text = "the cluster could not keep a token now: try again, or use HTTP Basic"
            return _refused(503, "unavailable", text)
        self._tokens[key] = (scope, self._clock() + TOKEN_TTL)
        while len(self._tokens) > MAX_TOKENS:
            self._tokens.popitem(last=False)
        answer = {"token": token, "expires_in": int(TOKEN_TTL), "domain": scope.domain}
        return JSONResponse(answer, headers={"Cache-Control": "no-store"})

    async def _logout(self, request: Request) -> Response:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            key = _token_key(value.strip())
            self._tokens.pop(key, None)
            if self._shared_tokens is not None:
                await self._shared_tokens.end_admin_token(key.hex())
        return Response(status_code=204)

    async def server_admin(self, request: Request) -> bool:
        """Only the operator of the whole server (trace, metrics: they span tenants)."""
        scope = await self.who(request)
        return scope is not None and scope.domain is None


def basic_login(
    admin: AdminConfig,
    login: LoginConfig | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[Request], Awaitable[bool]]:
    """A check that a request comes from the server's admin (not a tenant admin)."""
    return AdminLogins(admin, login, clock).server_admin


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


def _token_key(token: str) -> bytes:
    return _digest(token.encode("utf-8", "replace"))


def _address(request: Request) -> str:
    return request.client.host if request.client else "-"


def _refused(status: int, code: str, text: str) -> Response:
    return JSONResponse({"code": code, "text": text}, status_code=status)


_MAX_LOGIN_BODY = 4096
