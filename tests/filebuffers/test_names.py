"""Client file names made safe (PROTOCOL §8.5): never a path, never misleading."""

from __future__ import annotations

import pytest

from filebuffers import content_disposition, safe_name
from filebuffers.names import MAX_NAME_BYTES


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system.ini", "system.ini"),
        ("C:\\Users\\me\\cv.docx", "cv.docx"),
        ("/", "file"),
        ("..", "file"),
        ("", "file"),
        (None, "file"),
        ("evil\x00.txt", "evil.txt"),
        ("line\nbreak.txt", "linebreak.txt"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),  # RTL override: no fake "exe.jpg"
        ("a\u2066b\u2069c.txt", "abc.txt"),
        ("  .hidden. ", "hidden"),
        ("Zoë \u2013 résumé.pdf", "Zoë \u2013 résumé.pdf"),
        ("日本語.txt", "日本語.txt"),
    ],
)
def test_names_lose_paths_controls_and_bidi_overrides(raw: str | None, safe: str) -> None:
    assert safe_name(raw) == safe


def test_a_very_long_name_is_cut_but_keeps_its_extension() -> None:
    name = safe_name("é" * 400 + ".tar.gz")
    assert len(name.encode()) <= MAX_NAME_BYTES and name.endswith("é.gz")
    assert len(safe_name("x" * 1000).encode()) == MAX_NAME_BYTES


def test_content_disposition_has_an_ascii_name_and_the_exact_one() -> None:
    header = content_disposition('Zoë "q".pdf', inline=False)
    assert header == (
        "attachment; filename=\"Zo_ _q_.pdf\"; filename*=UTF-8''Zo%C3%AB%20%22q%22.pdf"
    )
    assert content_disposition("a.png", inline=True).startswith("inline; ")
    assert "\n" not in content_disposition(safe_name("x\r\ny"), inline=False)
