"""The close codes of the code and of the documentation are the same list (PROTOCOL §1.6):
a code sent but not documented, or documented but never named, fails here."""

from __future__ import annotations

import re
from pathlib import Path

from signaling.appwebsocket import closecodes

PROTOCOL = Path(__file__).resolve().parents[3] / "docs" / "protocol.md"


def _documented() -> set[int]:
    text = PROTOCOL.read_text(encoding="utf-8")
    match = re.search(r"^1\.6 Close codes.*?(?=^\d+\.\d+ |^## )", text, re.MULTILINE | re.DOTALL)
    assert match is not None, "docs/protocol.md has no section 1.6"
    return {int(code) for code in re.findall(r"\b(1\d{3}|4\d{3})\b", match.group())}


def _named() -> dict[str, int]:
    return {name: getattr(closecodes, name) for name in closecodes.__all__}


def test_every_constant_is_documented_and_every_documented_code_named() -> None:
    assert set(_named().values()) == _documented()


def test_each_constant_is_named_after_its_value() -> None:
    for name, value in _named().items():
        assert name.startswith(f"WS_{value}_"), name
    public = {name for name in vars(closecodes) if name.startswith("WS_")}
    assert public == set(closecodes.__all__)


def test_the_codes_that_must_be_there_are() -> None:
    """The parse above finds what the section lists, not an empty set that matches."""
    assert {1000, 1007, 1009, 4001, 4008} <= _documented()
