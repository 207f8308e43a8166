"""The errors of file buffers, one root, each with the code that goes on the wire (PROTOCOL
§8.2, §11) and the HTTP status an upload or download answers with."""

from __future__ import annotations

from typing import Any

__all__ = [
    "AlreadyUploaded",
    "BadRequest",
    "Expired",
    "FileBufferError",
    "Forbidden",
    "NotFound",
    "TooBig",
    "Unavailable",
]


class FileBufferError(Exception):
    """Root of every refusal; never carries details a client should not see."""

    code = "internal"
    status = 500

    def __init__(self, text: str = "") -> None:
        super().__init__(text or self.code)
        self.text = text or self.code

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "text": self.text}


class BadRequest(FileBufferError):
    """A malformed request, such as a ``Content-Length`` that is not a number."""

    code = "bad_json"
    status = 400


class TooBig(FileBufferError):
    """Announced, declared or streamed size over the file limit or the owner's quota."""

    code = "too_big"
    status = 413

    def __init__(self, max_bytes: int, text: str = "") -> None:
        super().__init__(text or f"at most {max_bytes} bytes")
        self.max_bytes = max_bytes

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "max_bytes": self.max_bytes}


class Expired(FileBufferError):
    code = "expired"
    status = 410


class AlreadyUploaded(FileBufferError):
    """A temporary buffer takes one upload (PROTOCOL §8.2: 409)."""

    code = "bad_state"
    status = 409


class NotFound(FileBufferError):
    """No such buffer, or a key that does not open it: the two look the same."""

    code = "not_found"
    status = 404


class Forbidden(FileBufferError):
    code = "forbidden"
    status = 403


class Unavailable(FileBufferError):
    """The shared metadata (PostgreSQL) cannot be reached or failed: retry later. The
    driver's words stay in the log and in ``__cause__``, never on the wire."""

    code = "unavailable"
    status = 503
