"""The stored type comes from the bytes, not from the client's claim (PROTOCOL §8.2)."""

from __future__ import annotations

import pytest

from filebuffers import sniff


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
    ],
)
def test_the_bytes_decide(head: bytes, claimed: str | None, stored: str) -> None:
    assert sniff(head, claimed) == stored
