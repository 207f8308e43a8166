"""Errors of the signaling core, each carrying the stable code that goes on the wire.

Theory: an error either says *the peer broke the protocol* (``ProtocolError`` and its
children: the client gets ``{"mt":"Error","code":…}`` and the connection stays open) or
*we broke something* (any other exception: the client gets ``internal`` and the log gets
the traceback). Codes are the ones listed in PROTOCOL §11::

    SignalingError                 code (str) + text (str), both safe to send
    └── ProtocolError              the peer sent something we refuse
        ├── BadJson                bad_json        (§1.4)
        ├── UnknownMt              unknown_mt      (§1.3)
        ├── NotLoggedIn            not_logged_in   (§3.1)
        ├── BadState               bad_state       (§5)
        ├── BadMime                bad_mime        (§4.6)
        ├── MessageTooBig          message_too_big (§4.6)
        ├── RateLimited            rate_limited    (§4.11)
        ├── Forbidden              forbidden
        ├── NotFound               not_found
        ├── AlreadyTaken           already_taken   (§9.2)
        └── Unavailable            unavailable
"""

from __future__ import annotations

__all__ = [
    "AlreadyTaken",
    "BadJson",
    "BadMime",
    "BadState",
    "Forbidden",
    "MessageTooBig",
    "NotFound",
    "NotLoggedIn",
    "ProtocolError",
    "RateLimited",
    "SignalingError",
    "Unavailable",
    "UnknownMt",
]


class SignalingError(Exception):
    """Root of every error the signaling core raises on purpose."""

    code = "internal"

    def __init__(self, text: str = "") -> None:
        super().__init__(text or self.code)
        self.text = text or self.code


class ProtocolError(SignalingError):
    """The peer sent something the protocol does not allow; answered with ``Error``."""

    code = "bad_request"

    def answer(self) -> dict[str, str]:
        """The ``Error`` answering it, without the request's ``api`` and ``src``."""
        return {"mt": "Error", "code": self.code, "text": self.text}


class BadJson(ProtocolError):
    code = "bad_json"


class UnknownMt(ProtocolError):
    code = "unknown_mt"


class NotLoggedIn(ProtocolError):
    code = "not_logged_in"


class BadState(ProtocolError):
    code = "bad_state"


class BadMime(ProtocolError):
    code = "bad_mime"


class MessageTooBig(ProtocolError):
    code = "message_too_big"


class Forbidden(ProtocolError):
    code = "forbidden"


class RateLimited(ProtocolError):
    code = "rate_limited"

    def __init__(self, retry_after_ms: int) -> None:
        super().__init__(f"rate limit exceeded, retry after {retry_after_ms} ms")
        self.retry_after_ms = retry_after_ms


class NotFound(ProtocolError):
    code = "not_found"


class AlreadyTaken(ProtocolError):
    """Another agent took the support chat first (PROTOCOL §9.2)."""

    code = "already_taken"


class Unavailable(ProtocolError):
    code = "unavailable"
