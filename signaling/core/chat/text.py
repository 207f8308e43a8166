"""The size of a message as the limits count it (bytes of UTF-8, §4.6)."""

from __future__ import annotations

__all__ = ["utf8_len"]


def utf8_len(text: str) -> int:
    """Bytes of ``text`` in UTF-8, without encoding it when it is ASCII (nearly always)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
