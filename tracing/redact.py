"""What a trace line may show of a payload (STYLE 6): shortened, and never a secret.

Passwords, login digests, keys, signatures, tokens and the capability parts of urls
(``key=``, ``sig=``) are replaced by ``***`` before a record is kept, whatever the
subsystem and wherever in the text they stand; then the text is cut to ``limit``
characters, so one huge frame cannot flood the buffer.
"""

from __future__ import annotations

import re

__all__ = ["MAX_TEXT", "redact"]

MAX_TEXT = 400
"""Characters a record keeps of its text."""

_SECRET_NAMES = r"password|passwd|pwd|digest|key|sig|signature|secret|token|resume|authorization"
_JSON_FIELD = re.compile(rf'("(?:{_SECRET_NAMES})"\s*:\s*)"(?:[^"\\]|\\.)*"', re.IGNORECASE)
_QUERY = re.compile(rf"([?&](?:{_SECRET_NAMES}|s)=)[^&\s\"'#]*", re.IGNORECASE)
_HEADER = re.compile(r"\b((?:Basic|Bearer|Digest)\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_ASSIGN = re.compile(rf"\b((?:{_SECRET_NAMES})\s*=\s*)[^\s,;&\"']+", re.IGNORECASE)


def redact(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` without secrets, at most ``limit`` characters (plus a marker)."""
    text = _JSON_FIELD.sub(r'\1"***"', text)
    text = _QUERY.sub(r"\1***", text)
    text = _HEADER.sub(r"\1***", text)
    text = _ASSIGN.sub(r"\1***", text)
    if len(text) > limit:
        return f"{text[:limit]}…(+{len(text) - limit})"
    return text
