"""Message text sanitizing (PROTOCOL §4.6): whatever comes in, only inert HTML goes out.

Inertness is judged by the standard library's ``html.parser``, independent of the
html5lib parser bleach uses, plus a plain regex pass over the raw output.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signaling.core.errors import BadMime
from signaling.core.sanitize import ALLOWED_TAGS, sanitize

_TAG = re.compile(r"</?([a-z]+)>")
_TAG_TEXT = re.compile(r"<[^>]*>?")


class _Inspector(HTMLParser):
    """Collects every construct that should never survive sanitizing."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raw = self.get_starttag_text() or ""
        if tag not in ALLOWED_TAGS or attrs or raw not in (f"<{tag}>", f"<{tag}/>"):
            self.problems.append(f"start tag {raw!r}")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag not in ALLOWED_TAGS:
            self.problems.append(f"end tag </{tag}>")

    def handle_comment(self, data: str) -> None:
        self.problems.append(f"comment {data!r}")

    def handle_decl(self, decl: str) -> None:
        self.problems.append(f"declaration {decl!r}")

    def handle_pi(self, data: str) -> None:
        self.problems.append(f"processing instruction {data!r}")

    def unknown_decl(self, data: str) -> None:
        self.problems.append(f"unknown declaration {data!r}")


def _problems(out: str) -> list[str]:
    """Everything in ``out`` that is not allow-listed, attribute-free markup or text."""
    inspector = _Inspector()
    inspector.feed(out)
    inspector.close()
    problems = inspector.problems
    leftover = _TAG.sub(lambda m: "" if m[1] in ALLOWED_TAGS else m[0], out)
    if "<" in leftover or ">" in leftover:
        problems.append(f"raw < or > outside an allowed tag in {out!r}")
    problems += [f"javascript: in {t!r}" for t in _TAG_TEXT.findall(out) if "javascript:" in t]
    if "\x00" in out:
        problems.append("NUL")
    return problems


def _assert_inert(out: str) -> None:
    assert not _problems(out), out


XSS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<p onclick="alert(1)">hi</p>',
    '<a href="javascript:alert(1)">x</a>',
    "<svg onload=alert(1)><circle/></svg>",
    "<svg><script>alert(1)</script></svg>",
    "<style>body{background:url(javascript:alert(1))}</style>",
    '<p style="background:url(x)">x</p>',
    "<iframe src=//evil>",
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    "<scr<script>ipt>alert(1)</script>",
    "<!--<script>alert(1)</script>-->",
    "<b>ok</b><IMG SRC=JaVaScRiPt:alert(1)>",
    '<object data="javascript:alert(1)"></object><embed src="javascript:alert(1)">',
    '<form action="javascript:alert(1)"><button formaction="javascript:alert(1)">go</button>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    "<div/onmouseover=alert(1)>",
    "<p",
    "<p onclick=alert(1)",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "<noscript><p title='</noscript><img src=x onerror=alert(1)>'>",
    "<math><style><img src=x onerror=alert(1)></style></math>",
    "<svg><style><img src=x onerror=alert(1)></style></svg>",
    "<xmp><script>alert(1)</script></xmp>",
    "<textarea></textarea><script>alert(1)</script>",
    "<template><img src=x onerror=alert(1)></template>",
    "<![CDATA[<script>alert(1)</script>]]>",
    "<!DOCTYPE html><?xml-stylesheet href=x?>",
    "<scr\x00ipt>alert(1)</script>",
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
]


@pytest.mark.parametrize("payload", XSS)
@pytest.mark.parametrize("mime", [None, "", "text/html", "text/plain"])
def test_xss_payloads_come_out_inert(payload: str, mime: str | None) -> None:
    _assert_inert(sanitize(payload, mime))


def test_inspector_catches_what_it_should() -> None:
    """The checker itself must flag live markup, or the tests above prove nothing."""
    for bad in [
        "<script>x</script>",
        "<p onclick=x>",
        '<p class="x">',
        "<!-- c -->",
        "<!DOCTYPE html>",
        "<?pi?>",
        "<img src=x>",
        "a\x00b",
        "<p >",
    ]:
        assert _problems(bad), bad
    assert not _problems("<p><b>x</b> &lt;script&gt; <br></p>")


def test_script_becomes_text() -> None:
    assert sanitize("<script>alert(1)</script>", "text/html") == "alert(1)"


def test_entity_encoded_markup_stays_escaped() -> None:
    data = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert sanitize(data, "text/html") == data


def test_comment_dropped() -> None:
    assert sanitize("a<!--<script>alert(1)</script>-->b", "text/html") == "ab"


def test_unclosed_tag_escaped() -> None:
    assert sanitize("<p", "text/html") == "&lt;p"


def test_allowed_markup_survives() -> None:
    data = "<p><b>bold</b> <i>it</i></p>"
    assert sanitize(data, "text/html") == data


def test_every_allowed_tag_survives() -> None:
    for tag in sorted(ALLOWED_TAGS - {"br"}):
        data = f"<{tag}>x</{tag}>"
        assert sanitize(data, "text/html") == data
    assert sanitize("a<br>b", "text/html") == "a<br>b"


def test_attributes_stripped_from_allowed_tags() -> None:
    assert sanitize('<p class="x">hi</p>', "text/html") == "<p>hi</p>"
    assert sanitize('<span style="color:red" title=t>hi</span>', None) == "<span>hi</span>"


def test_unknown_element_text_kept() -> None:
    assert sanitize('<a href="https://x">link</a> & more', "text/html") == "link &amp; more"


def test_plain_text_escaped() -> None:
    assert sanitize("a < b & c", "text/plain") == "a &lt; b &amp; c"
    assert sanitize("<b>x</b>", "text/plain") == "&lt;b&gt;x&lt;/b&gt;"
    assert sanitize('say "hi"', "text/plain") == 'say "hi"'


@pytest.mark.parametrize("mime", [None, "", "text/html", "text/plain", "TEXT/PLAIN; x=y"])
def test_fast_path_returns_same_object(mime: str | None) -> None:
    data = "".join(["just plain ", "text, nothing to see: 'quotes' \"too\""])
    assert sanitize(data, mime) is data


@pytest.mark.parametrize("mime", [None, "text/html", "text/plain"])
def test_unicode_unchanged(mime: str | None) -> None:
    data = "héllo 😀 👍🏽 مرحبا"
    assert sanitize(data, mime) == data
    assert sanitize(f"<b>{data}</b>", "text/html") == f"<b>{data}</b>"
    assert sanitize(f"{data} & <", "text/plain") == f"{data} &amp; &lt;"


@pytest.mark.parametrize(
    "mime", ["TEXT/HTML", "text/html; charset=utf-8", " Text/Html ;charset=UTF-8"]
)
def test_html_mime_spellings(mime: str) -> None:
    assert sanitize("<b onclick=x>a</b>", mime) == "<b>a</b>"


@pytest.mark.parametrize("mime", ["TEXT/PLAIN", "text/plain; charset=utf-8", "Text/Plain;x"])
def test_plain_mime_spellings(mime: str) -> None:
    assert sanitize("<b>a</b>", mime) == "&lt;b&gt;a&lt;/b&gt;"


@pytest.mark.parametrize("mime", ["image/png", "application/json", "text/htmlx", "text", "html"])
@pytest.mark.parametrize("data", ["plain", "<b>x</b>"])
def test_bad_mime(mime: str, data: str) -> None:
    with pytest.raises(BadMime) as caught:
        sanitize(data, mime)
    assert caught.value.code == "bad_mime"
    assert mime in caught.value.text


def test_bad_mime_text_shortened() -> None:
    mime = "application/" + "x" * 200
    with pytest.raises(BadMime) as caught:
        sanitize("x", mime)
    assert mime[:40] in caught.value.text
    assert mime[:41] not in caught.value.text


@pytest.mark.parametrize("mime", [None, "text/html", "text/plain"])
@pytest.mark.parametrize("data", ["\x00", "a\x00b", "<p>\x00</p>", "<\x00script>", "&\x00"])
def test_nul_never_in_output(data: str, mime: str | None) -> None:
    assert "\x00" not in sanitize(data, mime)


def test_nul_removed_from_plain_text() -> None:
    assert sanitize("a\x00b", "text/plain") == "ab"
    assert sanitize("a\x00<b", "text/plain") == "a&lt;b"


_FRAGMENTS = st.sampled_from(
    [
        "<",
        ">",
        "&",
        "<script>",
        "</script>",
        "<p onclick=x>",
        "javascript:",
        "<!--",
        "-->",
        "\x00",
        "<svg",
        "<a href=",
        '"',
        "'",
        "<p>",
        "</p>",
        "<br/>",
        "<style>",
        "<math>",
        "<![CDATA[",
        "<!",
        "<?",
        "&lt;",
        "&#",
        "/",
        "=",
        " ",
    ]
)
_MIXED = st.lists(st.one_of(_FRAGMENTS, st.text(max_size=8)), max_size=30).map("".join)


@given(st.text())
def test_html_output_inert_for_any_text(data: str) -> None:
    _assert_inert(sanitize(data, "text/html"))


@given(_MIXED)
def test_html_output_inert_for_markup_soup(data: str) -> None:
    _assert_inert(sanitize(data, "text/html"))


@given(st.one_of(st.text(), _MIXED))
def test_plain_output_round_trips(data: str) -> None:
    out = sanitize(data, "text/plain")
    _assert_inert(out)
    assert "<" not in out and ">" not in out
    assert html.unescape(out) == data.replace("\x00", "")
