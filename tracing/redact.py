"""What a trace line may show of a payload (STYLE 6): shortened, and never a secret.

Passwords, login digests, keys, signatures, tokens and the capability parts of urls
(``key=``, ``sig=``, ``upload=``) are replaced by ``***`` before a record is kept,
whatever the subsystem and wherever in the text they stand; then the text is cut to
``limit`` characters, so one huge frame cannot flood the buffer.
"""

from __future__ import annotations

import os
import re

__all__ = ["MAX_TEXT", "first_cause", "redact", "shown_url"]

MAX_TEXT = 400
"""Characters a record keeps of its text."""

_SECRET_NAMES = (
    r"password|passwd|pwd|digest|key|sig|signature|secret|token|resume|authorization|upload"
)
_JSON_FIELD = re.compile(rf'("(?:{_SECRET_NAMES})"\s*:\s*)"(?:[^"\\]|\\.)*"', re.IGNORECASE)
_QUERY = re.compile(rf"([?&](?:{_SECRET_NAMES}|s)=)[^&\s\"'#]*", re.IGNORECASE)
_HEADER = re.compile(r"\b((?:Basic|Bearer|Digest)\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_ASSIGN = re.compile(
    rf"\b((?:{_SECRET_NAMES})\s*=\s*)"
    r"(?:\\\"(?:[^\"\\]|\\[^\"])*\\\"|\"[^\"]*\"|'[^']*'|[^\s,;&\"']+)",
    re.IGNORECASE,
)
_CONTROL = {code: f"\\x{code:02x}" for code in range(32)} | {10: "\\n", 13: "\\r", 9: "\\t"}


_JSON_SECRET_HINT = re.compile(rf'"(?:{_SECRET_NAMES})"\s*:\s*"')


def redact(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` without secrets, at most ``limit`` characters (plus a marker).

    Each full pattern runs only when a cheap look at the lower-cased text says it could
    match, and control characters are replaced only in a text that has a character
    ``isprintable`` refuses (every control character is one): most traced frames hold
    neither, and with the ``appwebsocket`` flag on (the default) this is the cost of
    every Post and every answer on the messages link."""
    low = text.lower()
    if _JSON_SECRET_HINT.search(low):
        text = _JSON_FIELD.sub(r'\1"***"', text)
    if "=" in text:
        text = _QUERY.sub(r"\1***", text)
        text = _ASSIGN.sub(r"\1***", text)
    if "basic" in low or "bearer" in low or "digest" in low:  # then blanks of any kind
        text = _HEADER.sub(r"\1***", text)
    if not text.isprintable():
        text = text.translate(_CONTROL)  # one record is one line: no forged lines
    if len(text) > limit:
        return f"{text[:limit]}…(+{len(text) - limit})"
    return text


def shown_url(url: str) -> str:
    """A database or Redis URL fit for a message: never the user name or password it may
    carry."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest.partition("/")[0]:
        return f"{scheme}://{rest.partition('@')[2]}"
    return url


def first_cause(exc: BaseException) -> str:
    """The driver's own words for why a connection failed: the innermost cause, which
    names the database, role or address but never the password."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()  # asyncio's own text names no reason
    return str(exc) or type(exc).__name__
