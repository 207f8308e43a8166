"""The content type of an upload, from its first bytes (PROTOCOL §8.2).

A client's ``Content-Type`` is a claim; the bytes decide. The sniffer knows the types
that matter for safe serving: the images shown inline (PNG, JPEG, GIF, WebP), SVG and
HTML (both can carry script, so they are recognised to be served as attachments in a
sandbox), PDF, ZIP, and plain UTF-8 text; anything else is
``application/octet-stream``. When the claim names the sniffed type, or a subtype of
text the bytes do not contradict, the claim stands; otherwise the sniffed type wins.
"""

from __future__ import annotations

import re

__all__ = ["INLINE_IMAGES", "SNIFF_BYTES", "media_type", "sniff"]

SNIFF_BYTES = 512
"""How much of the start of a file the sniffer looks at."""

INLINE_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
"""The only types served inline (PROTOCOL §8.5); everything else is an attachment."""

OCTETS = "application/octet-stream"

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
)
_HTML_MARKS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<script", b"<iframe")


_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}")


def media_type(claimed: str | None) -> str:
    """``type/subtype`` of a claimed Content-Type, lower case and without parameters;
    ``application/octet-stream`` for anything that is not one (it ends up in a header)."""
    claim = (claimed or "").split(";", 1)[0].strip().lower()
    return claim if _MEDIA_TYPE.fullmatch(claim) else OCTETS


def sniff(head: bytes, claimed: str | None = None) -> str:
    """The type to store for a file starting with ``head`` and announced as ``claimed``."""
    found = _by_bytes(head)
    claim = media_type(claimed)
    if found == "text/plain" and claim.startswith("text/") and claim not in _ACTIVE_TEXT:
        return claim  # text/csv, text/markdown...: the bytes are text, the claim is finer
    return found


_ACTIVE_TEXT = frozenset({"text/html", "text/xml", "text/javascript", "text/xsl"})


def _by_bytes(head: bytes) -> str:
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "image/svg+xml"
    if any(mark in text for mark in _HTML_MARKS):
        return "text/html"
    if _is_text(head):
        return "text/plain"
    return OCTETS


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # the sample may end inside a character: text if only the last bytes are cut
        return exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return True
