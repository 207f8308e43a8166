"""The web client's files over HTTP: every page with its security headers, the static
files, the one page other sites may frame, and a tenant's custom emoticons."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from config import ConfigError, load_config
from tests.support import running_server


async def test_pages_and_files_come_with_a_strict_policy() -> None:
    async with (
        running_server() as server,
        httpx.AsyncClient(base_url=server.http, timeout=10) as http,
    ):
        for path in ("/", "/agent", "/admin", "/visit"):
            answer = await http.get(path)
            assert answer.status_code == 200, path
            assert answer.headers["content-type"].startswith("text/html")
            policy = answer.headers["content-security-policy"]
            assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
            assert answer.headers["x-content-type-options"] == "nosniff"
            framing = "frame-ancestors *" if path == "/visit" else "frame-ancestors 'self'"
            assert framing in policy, path
        script = await http.get("/static/js/switchboard.js")
        assert script.status_code == 200
        assert "javascript" in script.headers["content-type"]
        assert "script-src 'self'" in script.headers["content-security-policy"]
        assert (await http.get("/static/../config/default.toml")).status_code == 404
        assert (await http.get("/static/nothing.js")).status_code == 404


async def test_a_tenants_custom_emoticons_are_listed_and_served() -> None:
    async with (
        running_server() as server,
        httpx.AsyncClient(base_url=server.http, timeout=10) as http,
    ):
        listed = (await http.get("/api/emoticons")).json()["emoticons"]
        assert listed["shipit"] == "/static/emoticons/shipit.svg"
        image = await http.get(listed["shipit"])
        assert image.status_code == 200 and image.headers["content-type"] == "image/svg+xml"
        other = (await http.get("/api/emoticons", params={"domain": "other.org"})).json()
        assert other == {"emoticons": {}}


@pytest.mark.parametrize(
    ("code", "path"),
    [
        ("Party!", "/static/p.png"),
        ("party", "https://elsewhere.example/p.png"),
        ("party", "/static/../secret.png"),
        ("party", "/static/p.exe"),
        ("party", 7),
    ],
)
def test_emoticons_must_be_shortcodes_and_image_paths_on_this_server(
    tmp_path: Path, code: str, path: object
) -> None:
    site = tmp_path / "site.toml"
    value = f'"{path}"' if isinstance(path, str) else str(path)
    site.write_text(
        '[tenants."example.com".users.alice]\npassword = "x"\n'
        f'[tenants."example.com".emoticons]\n"{code}" = {value}\n'
    )
    with pytest.raises(ConfigError, match="emoticons"):
        load_config(site, env={})
