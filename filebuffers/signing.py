"""Signed, expiring download urls for permanent buffers (PROTOCOL §8.4).

``Attachments`` hands a client urls valid for its session only. The url carries the
buffer id, an expiry time and an HMAC-SHA256 over both and the session's token, keyed
with a server secret: the server keeps no state per url, and a url copied to another
session, or used after its time, does not verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

__all__ = ["sign", "verify"]


def sign(secret: bytes, buffer_id: str, session: str, expires: int) -> str:
    """The signature for ``buffer_id`` read by ``session`` until ``expires`` (unix s)."""
    message = f"{buffer_id}\n{session}\n{expires}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def verify(
    secret: bytes, buffer_id: str, session: str, expires: int, signature: str, now: float
) -> bool:
    """True when ``signature`` was made by ``sign`` for these values and has not expired."""
    if now >= expires:
        return False
    return hmac.compare_digest(sign(secret, buffer_id, session, expires), signature)
