"""Message text sanitizing (PROTOCOL §4.6): clients render ``data`` as HTML, so the hub
reduces it to attribute-free markup from a short allow-list before anyone sees it."""

from __future__ import annotations

import html

import bleach

from .errors import BadMime

__all__ = ["ALLOWED_TAGS", "sanitize"]

ALLOWED_TAGS = frozenset(
    {
        "p",
        "br",
        "b",
        "strong",
        "i",
        "em",
        "u",
        "s",
        "ul",
        "ol",
        "li",
        "blockquote",
        "code",
        "pre",
        "span",
        "div",
    }
)
_cleaner = bleach.Cleaner(
    tags=ALLOWED_TAGS, attributes={}, protocols=[], strip=True, strip_comments=True
)


def sanitize(data: str, mime: str | None) -> str:
    kind = (mime or "text/html").split(";", 1)[0].strip().lower()
    if kind == "text/html":
        if "<" not in data and "&" not in data and ">" not in data and "\x00" not in data:
            return data
        return str(_cleaner.clean(data))
    if kind == "text/plain":
        if "<" not in data and "&" not in data and ">" not in data and "\x00" not in data:
            return data
        return html.escape(data.replace("\x00", ""), quote=False)
    raise BadMime(f"mime {mime[:40] if mime else mime!r} is not accepted")
