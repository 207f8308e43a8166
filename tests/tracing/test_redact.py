"""Secrets never reach a trace record, whatever shape they come in (STYLE 6)."""

from __future__ import annotations

import importlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracing import redact

redact_module = importlib.import_module("tracing.redact")  # the package names the function


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


def _every_pattern(text: str, limit: int = redact_module.MAX_TEXT) -> str:
    """What ``redact`` shows with every pattern and the control characters' table
    always applied, whatever the cheap looks say."""
    text = redact_module._JSON_FIELD.sub(r'\1"***"', text)
    text = redact_module._QUERY.sub(r"\1***", text)
    text = redact_module._ASSIGN.sub(r"\1***", text)
    text = redact_module._HEADER.sub(r"\1***", text)
    text = text.translate(redact_module._CONTROL)
    return f"{text[:limit]}…(+{len(text) - limit})" if len(text) > limit else text


pieces = st.sampled_from(
    [
        *('"password"', '"Digest" : ', '"sig":', '"key":"k"', "?key=", "&s=", "token = "),
        *("Basic ", "BEARER\t", "digest\n", '"', "\\", "=", " ", "\n", "\r", "\t", "\x00"),
        *("\x1f", "\x7f", "\u2028", "\x85", "ü", "x"),
    ]
)
traced_texts = st.lists(
    st.one_of(pieces, st.text(st.characters(max_codepoint=0xFF), max_size=6)), max_size=24
).map("".join)


@settings(max_examples=500)
@given(traced_texts)
def test_the_cheap_looks_never_skip_a_secret_or_a_control_character(text: str) -> None:
    """The looks that let most frames skip a pattern never skip one that would hide
    something (a header's token after a tab, too)."""
    assert redact(text) == _every_pattern(text)
    assert redact(text, limit=20) == _every_pattern(text, limit=20)
