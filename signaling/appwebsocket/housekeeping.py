"""The AppWebsocket messages around the login that are not the login itself (PROTOCOL §3.7):
``CheckBuild``, ``AppInfo`` and ``PbxInfo``, as pure functions of their inputs.

``CheckBuild`` lets a page loaded from a cache learn that a newer build exists: the server
looks at the directory just before the file name of the page's URL; a name of hex digits
only is a build number. If it is the current build, nothing needs to change and the answer
carries no ``url``; otherwise the answer carries the URL with the build number replaced (or
inserted when there was none), and the client navigates there. innovaphone's library sends
it before ``AppChallenge``, so it is answered before login too (docs 12.24).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["app_info", "build_number", "check_build", "current_url", "pbx_info"]

JsonObject = dict[str, Any]

_HEX = re.compile(r"[0-9a-fA-F]+")


def build_number(version: str) -> str:
    """A version like ``1.2.3`` as the build number ``010203``: digits only, so it is a
    build number in the sense of ``CheckBuild`` (hex digits) and sorts like the version."""
    return "".join(f"{int(part):02d}" for part in version.split(".") if part.isdigit())


def current_url(url: str, build: str) -> str | None:
    """``url`` rewritten for ``build``, or None when it already names that build."""
    parts = urlsplit(url)
    directory, _, filename = (parts.path or "/").rpartition("/")
    head, _, last = directory.rpartition("/")
    if _HEX.fullmatch(last):
        if last == build:
            return None
        directory = f"{head}/{build}"
    else:
        directory = f"{directory}/{build}"
    return urlunsplit(parts._replace(path=f"{directory}/{filename}"))


def check_build(url: str, build: str) -> JsonObject:
    """The answer to ``CheckBuild {url}``: with ``url`` only when the page should reload."""
    rewritten = current_url(url, build)
    reply: JsonObject = {"mt": "CheckBuildResult"}
    if rewritten is not None:
        reply["url"] = rewritten
    return reply


def app_info() -> JsonObject:
    """The answer to ``AppInfo``. The hub provides no myApps APIs of its own and is never
    loaded as a hidden app, so ``apis`` is empty and ``hidden`` (only sent when true) is
    absent. The result is named ``AppInfoResult`` (PROTOCOL §1.2; innovaphone's 13r1 page
    shows ``AppInfo`` for it, which is the request's name)."""
    return {"mt": "AppInfoResult", "info": {"apis": {}}}


def pbx_info(
    *, domain: str, pbx: str, pbx_dns: str, apis: Iterable[str], version: str, build: str
) -> JsonObject:
    """``PbxInfo`` with the fields innovaphone's AppWebsocket page lists, then ``version``
    and ``build`` (extension, docs 12.24)."""
    return {
        "mt": "PbxInfo",
        "domain": domain,
        "pbx": pbx,
        "pbxDns": pbx_dns,
        "apis": list(apis),
        "version": version,
        "build": build,
    }
