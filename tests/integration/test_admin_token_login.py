"""The admin API's token login (PROTOCOL §10, docs 12.36) and visitors listed apart from
users, over real HTTP against a real server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.integration.test_admin_directory import SERVER_ADMIN, TENANT_ADMIN, admin_config
from tests.support import RunningServer, running_server


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(admin_config(), data_dir=tmp_path) as server:
        yield server


async def test_a_token_stands_for_the_login_until_logout(served: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=served.http, timeout=10) as http:
        answer = await http.post(
            "/admin/login", json={"user": SERVER_ADMIN[0], "password": SERVER_ADMIN[1]}
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert set(body) == {"token", "expires_in", "domain"}
        assert (body["expires_in"], body["domain"]) == (8 * 3600, None)
        assert answer.headers["cache-control"] == "no-store"
        bearer = {"Authorization": f"Bearer {body['token']}"}

        assert (await http.get("/admin/tenants", headers=bearer)).status_code == 200
        assert (await http.get("/admin/trace", headers=bearer)).status_code == 200
        assert (await http.get("/admin/tenants")).status_code == 401
        wrong = {"Authorization": "Bearer " + body["token"][:-2] + "xx"}
        assert (await http.get("/admin/tenants", headers=wrong)).status_code == 401

        assert (await http.post("/admin/logout", headers=bearer)).status_code == 204
        gone = await http.get("/admin/tenants", headers=bearer)
        assert (gone.status_code, gone.json()["code"]) == (401, "forbidden")


async def test_a_tenant_admins_token_keeps_to_its_tenant(served: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=served.http, timeout=10) as http:
        answer = await http.post(
            "/admin/login", json={"user": TENANT_ADMIN[0], "password": TENANT_ADMIN[1]}
        )
        assert answer.json()["domain"] == "example.com"
        bearer = {"Authorization": f"Bearer {answer.json()['token']}"}
        assert (
            await http.get("/admin/users?domain=example.com", headers=bearer)
        ).status_code == 200
        other = await http.get("/admin/users?domain=other.example", headers=bearer)
        assert other.status_code == 403
        assert (await http.get("/admin/trace", headers=bearer)).status_code == 401
        added = await http.put("/admin/tenants/new.example", headers=bearer)
        assert added.status_code == 403


async def test_wrong_or_malformed_logins_are_refused(served: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=served.http, timeout=10) as http:
        wrong = await http.post("/admin/login", json={"user": "admin", "password": "nope"})
        assert (wrong.status_code, wrong.json()["code"]) == (401, "forbidden")
        assert "token" not in wrong.json()
        for body in (b"", b"[]", b'{"user": "admin"}', b'{"user": 1, "password": "x"}'):
            bad = await http.post("/admin/login", content=body)
            assert (bad.status_code, bad.json()["code"]) == (400, "bad_json")
        cross = await http.post(
            "/admin/login",
            json={"user": SERVER_ADMIN[0], "password": SERVER_ADMIN[1]},
            headers={"Sec-Fetch-Site": "cross-site"},
        )
        assert cross.status_code == 401
        # the server still answers the right password
        ok = await http.post(
            "/admin/login", json={"user": SERVER_ADMIN[0], "password": SERVER_ADMIN[1]}
        )
        assert ok.status_code == 200


async def test_guessing_is_throttled_by_the_login_throttle(served: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=served.http, timeout=10) as http:
        codes = []
        for _ in range(30):
            answer = await http.post("/admin/login", json={"user": "admin", "password": "guess"})
            codes.append(answer.status_code)
        assert 429 in codes
        assert codes[0] == 401


async def test_visitors_are_listed_apart_from_users(served: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=served.http, timeout=10) as http:
        made = await http.post("/api/visitors", json={"name": "Vera Visitor"})
        assert made.status_code == 201, made.text
        sip = made.json()["sip"]
        admin = httpx.BasicAuth(*SERVER_ADMIN)
        users = (await http.get("/admin/users?domain=example.com", auth=admin)).json()["users"]
        assert sip not in [user["sip"] for user in users]
        assert "alice" in [user["sip"] for user in users]
        visitors = (await http.get("/admin/visitors?domain=example.com", auth=admin)).json()
        assert visitors == {
            "visitors": [{"domain": "example.com", "sip": sip, "dn": "Vera Visitor"}]
        }
        taken = await http.put(
            "/admin/users/example.com/visitor-0123", json={"password": "pw"}, auth=admin
        )
        assert (taken.status_code, taken.json()["code"]) == (400, "bad_json")
        assert "visitor-" in taken.json()["text"]
