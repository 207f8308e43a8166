"""The AppWebsocket login digest and session key (PROTOCOL §3.2-§3.4).

The password never crosses the wire: the server sends a fresh challenge, the client
answers with a SHA-256 over the login fields, the challenge and the password (§3.2), and
both sides derive the same session key from challenge and password (§3.4). Interop with
innovaphone clients depends on reproducing the hashed string byte for byte, which is why
the ``info`` rules below are so fussy.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import secrets
from typing import Final

__all__ = [
    "NO_INFO",
    "info_json",
    "login_digest",
    "new_challenge",
    "session_key",
    "verify_digest",
]


class _Absent(enum.Enum):
    """Type of ``NO_INFO``; an enum member so it stays a singleton across copy/pickle."""

    NO_INFO = "NO_INFO"

    def __repr__(self) -> str:
        return "NO_INFO"

    __str__ = __repr__


NO_INFO: Final = _Absent.NO_INFO
"""``info`` of an ``AppLogin`` that has no ``info`` property; ``None`` means ``null``."""

_CHALLENGE_DIGITS: Final = 16
_SESSION_KEY_PREFIX: Final = "innovaphoneAppSessionKey"


def info_json(info: object) -> str:
    """Serialise ``info`` the way it is hashed (PROTOCOL §3.2).

    Compact separators, non-ASCII kept as is, ``/`` not escaped and keys in the order
    received (parsed dicts keep it): the JavaScript ``JSON.stringify`` output a client
    hashes.
    """
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
    """Lowercase hex SHA-256 of ``app:domain:sip:guid:dn[:info]:challenge:password``.

    PROTOCOL §3.2: missing fields are passed as ``""``; the ``:info`` segment is there
    exactly when the login message has an ``info`` property, even ``{}`` or ``null``
    (``info=None``); leave ``info`` at ``NO_INFO`` when the property is absent.
    """
    fields = [app, domain, sip, guid, dn]
    if info is not NO_INFO:
        fields.append(info_json(info))
    fields += [challenge, password]
    return _sha256_hex(":".join(fields))


def verify_digest(expected: str, received: object) -> bool:
    """Compare a received digest with the expected one in constant time (PROTOCOL §3.2).

    Hex case does not matter; anything but a string (a missing or mistyped ``digest``
    property) never matches.
    """
    if not isinstance(received, str):
        return False
    return hmac.compare_digest(_utf8(expected.lower()), _utf8(received.lower()))


def session_key(challenge: str, password: str) -> str:
    """Lowercase hex SHA-256 of ``innovaphoneAppSessionKey:challenge:password`` (§3.4)."""
    return _sha256_hex(f"{_SESSION_KEY_PREFIX}:{challenge}:{password}")


def new_challenge() -> str:
    """16 random decimal digits from ``secrets``, fresh for every login (PROTOCOL §3.2).

    Unpredictable so that a recorded digest cannot be replayed.
    """
    return f"{secrets.randbelow(10**_CHALLENGE_DIGITS):0{_CHALLENGE_DIGITS}d}"


def _sha256_hex(text: str) -> str:
    return hashlib.sha256(_utf8(text)).hexdigest()


def _utf8(text: str) -> bytes:
    """UTF-8 that never raises: a lone surrogate (legal in parsed JSON) is encoded as is.

    Such a login cannot match what a real client hashed, so it simply fails instead of
    turning into an internal error.
    """
    return text.encode("utf-8", "surrogatepass")
