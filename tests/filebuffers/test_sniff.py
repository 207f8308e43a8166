"""The stored type comes from the bytes, not from the client's claim (PROTOCOL §8.2)."""

from __future__ import annotations

import pytest

from filebuffers import sniff
from filebuffers.sniff import media_type


@pytest.mark.parametrize(
    ("head", "claimed", "stored"),
    [
        (b"\x89PNG\r\n\x1a\n....", "image/png", "image/png"),
        (b"\x89PNG\r\n\x1a\n....", "text/html", "image/png"),
        (b"\xff\xd8\xff\xe0....", None, "image/jpeg"),
        (b"GIF89a...", "image/png", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", None, "image/webp"),
        (b"%PDF-1.7", "image/png", "application/pdf"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script/>", "image/png", "image/svg+xml"),
        (b"<?xml version='1.0'?>\n<svg>", None, "image/svg+xml"),
        (b"  <!DOCTYPE html><p>hi", "image/jpeg", "text/html"),
        (b"hello <script>alert(1)</script>", "text/plain", "text/html"),
        (b"plain words", "image/png", "text/plain"),
        (b"a,b\n1,2\n", "text/csv", "text/csv"),
        (b"a,b\n1,2\n", "text/html", "text/plain"),
        (b"\x00\x01\x02binary", "image/png", "application/octet-stream"),
        ("café".encode()[:-1], None, "text/plain"),  # cut inside the last character
        (b"words", "text/plain\r\nX-Injected: 1", "text/plain"),  # never a header's worth
        (b"words", "text/x-weird type", "text/plain"),
    ],
)
def test_the_bytes_decide(head: bytes, claimed: str | None, stored: str) -> None:
    assert sniff(head, claimed) == stored


@pytest.mark.parametrize(
    ("claimed", "kept"),
    [
        ("Text/CSV; charset=utf-8", "text/csv"),
        ("application/vnd.ms-excel", "application/vnd.ms-excel"),
        ("text/plain\r\nSet-Cookie: x=1", "application/octet-stream"),
        ("", "application/octet-stream"),
        (None, "application/octet-stream"),
        ("nonsense", "application/octet-stream"),
    ],
)
def test_a_claimed_type_is_a_plain_media_type_or_nothing(claimed: str | None, kept: str) -> None:
    assert media_type(claimed) == kept
