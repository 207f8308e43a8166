"""The operator's login to ``/admin`` and ``/debug.xml`` (PROTOCOL §10): HTTP Basic against
``[admin]``. With no admin password configured every request is refused, so a server
started from the defaults exposes no admin surface."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable

from starlette.requests import Request

from config import AdminConfig

__all__ = ["basic_login"]


def basic_login(admin: AdminConfig) -> Callable[[Request], bool]:
    """A check of a request's ``Authorization: Basic`` header against ``admin``."""
    user = admin.user.encode()
    password = admin.password.encode()

    def authorized(request: Request) -> bool:
        if not password:
            return False
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given_user, sep, given_password = base64.b64decode(value, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        # Both compared every time, in constant time: no hint which one was wrong.
        user_ok = hmac.compare_digest(given_user, user)
        password_ok = hmac.compare_digest(given_password, password)
        return bool(sep) and user_ok and password_ok

    return authorized
