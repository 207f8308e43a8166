"""What a receiver gets is inert HTML, whatever the sender wrote (PROTOCOL §4.6)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from signaling.core.sanitize import ALLOWED_TAGS
from tests.support import RunningServer, connected_pair

PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<p onclick="alert(1)">click</p>',
    '<a href="javascript:alert(1)">link</a>',
    "<svg onload=alert(1)><circle r=1 /></svg>",
    "<svg><script>alert(1)</script></svg>",
    "<style>body{background:url(javascript:alert(1))}</style>",
    '<p style="background:url(x)">styled</p>',
    '<iframe src="//evil.example"></iframe>',
    "<scr<script>ipt>alert(1)</script>",
    "<!--<script>alert(1)</script>-->",
    "<b>ok</b><IMG SRC=JaVaScRiPt:alert(1)>",
    "<div/onmouseover=alert(1)>hover</div>",
]


class _Inspector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS or attrs:
            self.problems.append(f"<{tag} {attrs}>")

    def handle_endtag(self, tag: str) -> None:
        if tag not in ALLOWED_TAGS:
            self.problems.append(f"</{tag}>")

    def handle_comment(self, data: str) -> None:
        self.problems.append(f"<!--{data}-->")


def _inert(html: str) -> bool:
    inspector = _Inspector()
    inspector.feed(html)
    inspector.close()
    return not inspector.problems


@pytest.mark.parametrize("mime", ["text/html", "text/plain", None])
async def test_xss_payloads_come_out_inert(server: RunningServer, mime: str | None) -> None:
    alice, bob, call = await connected_pair(server)
    for payload in PAYLOADS:
        fields = {} if mime is None else {"mime": mime}
        await alice.signal(
            1, {"type": "facility", "fty": [{"type": "im_message", "data": payload, **fields}]}
        )
        got = await bob.fty(call)
        assert got["mime"] == "text/html"
        assert _inert(got["data"]), (payload, got["data"])
        if mime == "text/plain":
            assert "<" not in got["data"]


async def test_allowed_markup_survives_without_attributes(server: RunningServer) -> None:
    alice, bob, call = await connected_pair(server)
    await alice.say(1, '<p class="x"><b>bold</b> <em id="e">it</em></p>', mime="text/html")
    assert (await bob.fty(call))["data"] == "<p><b>bold</b> <em>it</em></p>"


async def test_plain_text_is_escaped(server: RunningServer) -> None:
    alice, bob, call = await connected_pair(server)
    await alice.say(1, "a < b && c > d", mime="text/plain")
    assert (await bob.fty(call))["data"] == "a &lt; b &amp;&amp; c &gt; d"
