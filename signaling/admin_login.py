"""The operator's login to ``/admin``, ``/metrics`` and ``/debug.xml`` (PROTOCOL §10): HTTP
Basic against ``[admin]``. With no admin password configured every request is refused,
so a server started from the defaults exposes no admin surface. Failed logins are
throttled per client address like client logins (``login.throttle_failures`` per
``login.throttle_window``), and a request a browser marks as coming from another site
is refused, so a page elsewhere cannot use an operator's remembered credentials."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable

from starlette.requests import Request

from config import AdminConfig, LoginConfig
from signaling.appwebsocket.throttle import LoginThrottle

__all__ = ["basic_login"]


def basic_login(
    admin: AdminConfig,
    login: LoginConfig | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[Request], bool]:
    """A check of a request's ``Authorization: Basic`` header against ``admin``."""
    login = login or LoginConfig()
    throttle = LoginThrottle(login.throttle_failures, login.throttle_window)
    user = _digest(admin.user.encode())
    password = _digest(admin.password.encode())
    enabled = bool(admin.password)

    def authorized(request: Request) -> bool:
        if not enabled or request.headers.get("sec-fetch-site") == "cross-site":
            return False
        address = [f"admin:{request.client.host if request.client else '-'}"]
        now = clock()
        if throttle.blocked(address, now):
            return False
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given_user, sep, given_password = base64.b64decode(value, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            given_user, sep, given_password = b"", b"", b""
        # Fixed-length digests compared, both every time: neither which part was wrong
        # nor the password's length shows in the time taken.
        user_ok = hmac.compare_digest(_digest(given_user), user)
        password_ok = hmac.compare_digest(_digest(given_password), password)
        if sep and user_ok and password_ok:
            return True
        throttle.failed(address, now)
        return False

    return authorized


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()
