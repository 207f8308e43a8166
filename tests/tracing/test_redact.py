"""Secrets never reach a trace record, whatever shape they come in (STYLE 6)."""

from __future__ import annotations

import pytest

from tracing import redact


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ('{"mt":"AppLogin","sip":"alice","digest":"ab12cd"}', "ab12cd"),
        ('{"password": "hunter2"}', "hunter2"),
        ('{"Password":"with \\"quote\\" inside"}', "quote"),
        ('{"key":"k3y","sig":"s1g","token":"t0k","resume":"r3s"}', "k3y"),
        ("POST /messages/files/abc?key=CAPABILITY-KEY HTTP/1.1", "CAPABILITY-KEY"),
        ("POST /messages/files/abc?upload=UPLOAD-KEY HTTP/1.1", "UPLOAD-KEY"),
        ('{"mt":"CreateFileBufferResult","upload":"/messages/files/abc?upload=U"}', "?upload=U"),
        ("GET /messages/files/abc?s=session-9&e=17&sig=SIGNATURE", "SIGNATURE"),
        ("GET /messages/files/abc?s=session-9&e=17&sig=SIGNATURE", "session-9"),
        ("Authorization: Basic YWRtaW46c2VjcmV0", "YWRtaW46c2VjcmV0"),
        ("password=plain secret=other", "plain"),
    ],
)
def test_secrets_are_replaced(text: str, hidden: str) -> None:
    shown = redact(text)
    assert hidden not in shown and "***" in shown


def test_ordinary_text_is_kept_and_long_text_is_cut() -> None:
    assert redact('{"mt":"Signaling","sig":{"type":"conn"}}') == (
        '{"mt":"Signaling","sig":{"type":"conn"}}'  # "sig" holding an object is no secret
    )
    long = "x" * 1000
    assert redact(long) == "x" * 400 + "…(+600)"
