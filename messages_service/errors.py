"""Errors of the messages service, each carrying the stable code that goes on the wire.

Theory: an error either says *the hub asked for something we refuse* (the hub gets
``{"mt":"Error","src":…,"code":…,"text":…}`` and the connection stays open) or *we cannot
do it right now* (``Unavailable``: the database is down; the hub keeps its Posts and
retries). Anything else that escapes a handler is a bug: the hub gets ``internal`` and
the log gets the traceback. Codes are the ones of PROTOCOL §11 and §12.10::

    MessagesServiceError     code (str) + text (str), both safe to send
    ├── BadJson              bad_json       a field missing or of the wrong type (§1.4)
    ├── UnknownMt            unknown_mt     (§1.3)
    ├── NotLoggedIn          not_logged_in  (§3.1)
    ├── BadState             bad_state      AppChallenge/AppLogin after login (§12.6)
    ├── Forbidden            forbidden      another user's topic, a non-admin's group action
    ├── NotFound             not_found      an id outside the user's topic, an unknown group
    ├── Unlicensed           unlicensed     a group member without the messages licence
    └── Unavailable          unavailable    the database failed; retry later

The storage package translates database errors into ``Unavailable`` at its boundary, so
nothing above it ever sees a Tortoise, asyncpg or sqlite3 exception.
"""

from __future__ import annotations

__all__ = [
    "BadJson",
    "BadState",
    "Forbidden",
    "MessagesServiceError",
    "NotFound",
    "NotLoggedIn",
    "Unavailable",
    "UnknownMt",
    "Unlicensed",
]


class MessagesServiceError(Exception):
    """Root of every error the service raises on purpose; ``code`` goes on the wire."""

    code = "internal"

    def __init__(self, text: str = "") -> None:
        super().__init__(text or self.code)
        self.text = text or self.code

    def to_wire(self, src: object = None) -> dict[str, object]:
        """The ``Error`` answer (PROTOCOL §12.10), echoing the request's ``src``."""
        message: dict[str, object] = {"mt": "Error", "code": self.code, "text": self.text}
        if src is not None:
            message["src"] = src
        return message


class BadJson(MessagesServiceError):
    code = "bad_json"


class UnknownMt(MessagesServiceError):
    code = "unknown_mt"


class NotLoggedIn(MessagesServiceError):
    code = "not_logged_in"


class BadState(MessagesServiceError):
    code = "bad_state"


class Forbidden(MessagesServiceError):
    code = "forbidden"


class NotFound(MessagesServiceError):
    code = "not_found"


class Unlicensed(MessagesServiceError):
    code = "unlicensed"


class Unavailable(MessagesServiceError):
    """A dependency (the database) failed. The text never carries its details, which may
    name hosts, users or SQL: those go to the log only."""

    code = "unavailable"

    def __init__(self, text: str = "storage unavailable") -> None:
        super().__init__(text)
