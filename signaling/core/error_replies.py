"""How a switch answers a frame it cannot act on (PROTOCOL §1.4, §4.11, §11): an
``Error`` with the code of the ``ProtocolError``, the request's ``api`` and ``src``
echoed and, for a ``Signaling``, its call number; each one counted by code for
``/metrics``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .errors import ProtocolError, RateLimited
from .login_phase import reply
from .messages import Inbound
from .outbox import Outbox

__all__ = ["ErrorReplies"]

JsonObject = dict[str, Any]


class ErrorReplies:
    def __init__(self, outbox: Outbox) -> None:
        self._out = outbox
        self.counts: Counter[str] = Counter()
        """``Error`` replies sent, by code."""

    def error(
        self, conn: int, error: ProtocolError, inbound: Inbound | None, code: str | None = None
    ) -> None:
        """Answer ``inbound`` (None: a frame that did not parse) with ``error``; ``code``
        replaces the error's own (``internal`` for what should never happen)."""
        answer: JsonObject = {"mt": "Error", "code": code or error.code, "text": error.text}
        self.counts[answer["code"]] += 1
        if inbound is None:
            return self._out.send(conn, answer)
        if inbound.mt == "Signaling":
            call = inbound.body.get("call")
            if type(call) is int:
                answer["call"] = call
        reply(self._out, conn, inbound, answer)

    def rate_limited(self, conn: int, wait_ms: int) -> None:
        """A frame over the rate (§4.11): when the client may send again."""
        error = RateLimited(wait_ms)
        self.counts[error.code] += 1
        answer = {"mt": "Error", "code": error.code, "text": error.text, "retry_after_ms": wait_ms}
        self._out.send(conn, answer)
