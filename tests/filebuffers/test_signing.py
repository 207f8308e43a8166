"""Signed download urls: one buffer, one session, until they expire (PROTOCOL §8.4)."""

from __future__ import annotations

from filebuffers import sign, verify

SECRET = b"k" * 32


def test_a_signature_opens_its_buffer_for_its_session_until_it_expires() -> None:
    signature = sign(SECRET, "buf", "session-a", 1000)
    assert verify(SECRET, "buf", "session-a", 1000, signature, now=999.0)
    assert not verify(SECRET, "buf", "session-a", 1000, signature, now=1000.0)  # expired
    assert not verify(SECRET, "buf", "session-b", 1000, signature, now=999.0)  # other session
    assert not verify(SECRET, "other", "session-a", 1000, signature, now=999.0)
    assert not verify(SECRET, "buf", "session-a", 2000, signature, now=999.0)  # longer life
    assert not verify(b"x" * 32, "buf", "session-a", 1000, signature, now=999.0)
    tampered = signature[:-1] + ("B" if signature.endswith("A") else "A")
    assert not verify(SECRET, "buf", "session-a", 1000, tampered, now=999.0)
