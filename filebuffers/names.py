"""File names from clients, made safe to show and to send back (PROTOCOL §8.5).

A name is only ever metadata: bytes are stored under random ids and content hashes, so
no name reaches a path. Still, the name comes back in ``Content-Disposition`` and in
clients' lists, so it loses what could mislead or break them: path parts (``../``,
``C:\\``), control characters (NUL, newlines), bidirectional overrides that make
``gpj.exe`` look like ``exe.jpg``, and length beyond what file systems keep.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

__all__ = ["MAX_NAME_BYTES", "content_disposition", "safe_name"]

MAX_NAME_BYTES = 255
"""UTF-8 bytes a name keeps, at most: what common file systems allow for one name."""

FALLBACK = "file"

_BIDI_CONTROLS = dict.fromkeys(
    [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
)
_QUOTED_SAFE = re.compile(r"[^\x20-\x7e]|[\"\\]")


def safe_name(raw: str | None) -> str:
    """The last path part of ``raw`` without control, format or bidi characters, trimmed
    of dots and blanks at either end, cut to ``MAX_NAME_BYTES``; ``file`` if nothing
    is left."""
    name = unicodedata.normalize("NFC", raw or "")
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(
        char
        for char in name.translate(_BIDI_CONTROLS)
        if unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Zl", "Zp")
    )
    name = name.strip(" .\t")
    encoded = name.encode()
    if len(encoded) > MAX_NAME_BYTES:
        stem, dot, extension = name.rpartition(".")
        keep = extension if dot and 0 < len(extension.encode()) <= 16 else ""
        room = MAX_NAME_BYTES - len(keep.encode()) - (1 if keep else 0)
        cut = (stem if keep else name).encode()[:room].decode(errors="ignore").rstrip(" .")
        name = f"{cut}.{keep}" if keep else cut
    return name or FALLBACK


def content_disposition(name: str, *, inline: bool) -> str:
    """``Content-Disposition`` for ``name`` (RFC 6266): an ASCII ``filename`` for old
    clients (anything else replaced by ``_``) and the exact name as ``filename*``."""
    ascii_name = _QUOTED_SAFE.sub("_", name) or FALLBACK
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
