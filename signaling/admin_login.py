"""The operator's login to ``/admin``, ``/metrics`` and ``/debug.xml`` (PROTOCOL §10): HTTP
Basic against ``[admin]`` (the whole server) and ``[admin.tenants."<domain>"]`` (one
tenant each). With no admin password configured every request is refused,
so a server started from the defaults exposes no admin surface. Failed logins are
throttled like client logins (PROTOCOL §3.6, the ``login.throttle_*`` numbers), the user
name given being the account: a guesser's (address, user) pair is made to wait, another
admin behind the same address is not. A request a browser marks as coming from another
site is refused, so a page elsewhere cannot use an operator's remembered credentials."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request

from config import AdminConfig, LoginConfig
from signaling.appwebsocket.throttle import LoginThrottle, ThrottlePolicy

__all__ = ["AdminLogins", "AdminScope", "basic_login"]


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


class AdminLogins:
    """The server's admin and the tenant admins of ``[admin]``, checked by HTTP Basic."""

    def __init__(
        self,
        admin: AdminConfig,
        login: LoginConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        login = login or LoginConfig()
        self._throttle = LoginThrottle(ThrottlePolicy.from_config(login))
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

    def who(self, request: Request) -> AdminScope | None:
        """The scope of the request's valid admin login, or None."""
        if not self._accounts or request.headers.get("sec-fetch-site") == "cross-site":
            return None
        if request.headers.get("sec-fetch-dest", "empty") not in _ADMIN_DESTINATIONS:
            return None  # an <img>, <script>, frame... of a page: never the operator's wish
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None  # no login tried: nothing to count
        try:
            given_user, sep, given_password = base64.b64decode(value, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            given_user, sep, given_password = b"", b"", b""
        address = request.client.host if request.client else "-"
        account = given_user.decode("utf-8", "replace")
        now = self._clock()
        if self._throttle.locked(address, account, now) > 0:
            return None
        user, password = _digest(given_user), _digest(given_password)
        found = None
        for account_user, account_password, scope in self._accounts:
            # Fixed-length digests, both parts compared for every account: neither which
            # part was wrong nor the password's length shows in the time taken.
            user_ok = hmac.compare_digest(user, account_user)
            password_ok = hmac.compare_digest(password, account_password)
            if sep and user_ok and password_ok and found is None:
                found = scope
        if found is None:
            self._throttle.failed(address, account, now)
        else:
            self._throttle.succeeded(address, account, now)
        return found

    def server_admin(self, request: Request) -> bool:
        """Only the operator of the whole server (trace, metrics: they span tenants)."""
        scope = self.who(request)
        return scope is not None and scope.domain is None


def basic_login(
    admin: AdminConfig,
    login: LoginConfig | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[Request], bool]:
    """A check that a request comes from the server's admin (not a tenant admin)."""
    return AdminLogins(admin, login, clock).server_admin


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()
