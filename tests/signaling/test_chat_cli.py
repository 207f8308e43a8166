"""The causes ``switchboard chat`` prints: each of the hub's, named as PROTOCOL §4.8 does."""

from __future__ import annotations

import re
from pathlib import Path

from signaling.chat_cli import cause_text
from signaling.core.causes import Q931

PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def test_every_cause_of_the_hub_is_named_as_the_protocol_names_it() -> None:
    text = PROTOCOL.read_text()
    causes = text[text.index("4.8 Causes:") : text.index("4.9 ")]
    flat = re.sub(r"\s+", " ", causes)
    for cause in Q931:
        named = cause_text({"loc": 1, "num": int(cause)})
        assert f" {named}" in flat, (named, flat)


def test_a_cause_outside_the_table_or_none() -> None:
    assert cause_text({"num": 18}) == "18 no user responding"
    assert cause_text({"loc": 2, "num": 99}) == "99"
    assert cause_text(None) == "no cause given"
    assert cause_text({"num": "18"}) == "no cause given"
