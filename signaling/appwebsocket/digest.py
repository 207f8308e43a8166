"""The AppWebsocket login digest and session key, exactly as documented (PROTOCOL §3.2-§3.4)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets

__all__ = ["NO_INFO", "info_json", "login_digest", "new_challenge", "session_key", "verify_digest"]


class _NoInfo:
    """Marks an ``AppLogin`` without an ``info`` property (``None`` is ``"info": null``)."""

    def __repr__(self) -> str:
        return "NO_INFO"


NO_INFO: object = _NoInfo()


def info_json(info: object) -> str:
    """``info`` as hashed: compact JSON, non-ASCII and ``/`` unescaped, key order kept."""
    return json.dumps(info, separators=(",", ":"), ensure_ascii=False)


def login_digest(
    *,
    app: str,
    domain: str,
    sip: str,
    guid: str,
    dn: str,
    info: object = NO_INFO,
    challenge: str,
    password: str,
) -> str:
    """Hex SHA-256 of ``app:domain:sip:guid:dn[:info]:challenge:password`` (§3.2)."""
    parts = [app, domain, sip, guid, dn]
    if info is not NO_INFO:
        parts.append(info_json(info))
    parts += [challenge, password]
    return hashlib.sha256(":".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def verify_digest(expected: str, received: object) -> bool:
    """Constant-time comparison; anything but a string never matches."""
    if not isinstance(received, str):
        return False
    return hmac.compare_digest(expected.encode(), received.lower().encode("utf-8", "replace"))


def session_key(challenge: str, password: str) -> str:
    """The key for field encryption (§3.4)."""
    text = f"innovaphoneAppSessionKey:{challenge}:{password}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def new_challenge() -> str:
    """16 random decimal digits, fresh for every ``AppChallenge`` (§3.1)."""
    return "".join(secrets.choice("0123456789") for _ in range(16))
