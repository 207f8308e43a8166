"""CheckBuild, AppInfo and PbxInfo as pure functions (PROTOCOL §3.7, docs 12.24)."""

from __future__ import annotations

import pytest

from signaling.appwebsocket.housekeeping import (
    app_info,
    build_number,
    check_build,
    current_url,
    pbx_info,
)


def test_build_number_is_digits_that_sort_like_the_version() -> None:
    assert build_number("0.1.0") == "000100"
    assert build_number("1.12.3") == "011203"
    assert build_number("1.2.10") > build_number("1.2.9")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://h/app/page.htm", "https://h/app/0a1b/page.htm"),  # none: inserted
        ("https://h/app/00ff/page.htm", "https://h/app/0a1b/page.htm"),  # another: replaced
        ("https://h/app/0a1b/page.htm", None),  # the current one: nothing to do
        ("https://h/page.htm?x=1#top", "https://h/0a1b/page.htm?x=1#top"),
        ("https://h/app/", "https://h/app/0a1b/"),
        ("https://h", "https://h/0a1b/"),
        ("https://h/app/v2/page.htm", "https://h/app/v2/0a1b/page.htm"),  # "v2" is no build
    ],
)
def test_current_url(url: str, expected: str | None) -> None:
    assert current_url(url, "0a1b") == expected


def test_check_build_sends_a_url_only_when_the_page_should_reload() -> None:
    assert check_build("https://h/0a1b/p.htm", "0a1b") == {"mt": "CheckBuildResult"}
    assert check_build("https://h/p.htm", "0a1b") == {
        "mt": "CheckBuildResult",
        "url": "https://h/0a1b/p.htm",
    }


def test_app_info_and_pbx_info() -> None:
    assert app_info() == {"mt": "AppInfoResult", "info": {"apis": {}}}
    info = pbx_info(domain="d", pbx="p", pbx_dns="h", apis=("A",), version="v", build="b")
    assert list(info) == ["mt", "domain", "pbx", "pbxDns", "apis", "version", "build"]
    assert info["apis"] == ["A"]
