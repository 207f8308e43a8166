"""The directory part of the admin API on a real server (PROTOCOL §10.2): tenants, users
and App objects changed without a restart and kept across one, passwords never shown,
tenants kept apart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from config import Config, ConfigError, TenantAdmin
from signaling.app import create_app
from signaling.appwebsocket.errors import LoginFailed
from tests.support import PASSWORDS, RunningServer, make_config, running_server

SERVER_ADMIN = ("admin", "server-admin-secret")
TENANT_ADMIN = ("ops", "example-admin-secret")


def admin_config() -> Config:
    config = make_config()
    tenant_admin = TenantAdmin("example.com", TENANT_ADMIN[0], TENANT_ADMIN[1])
    admin = replace(config.admin, password=SERVER_ADMIN[1], tenants=(tenant_admin,))
    return replace(config, admin=admin)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(admin_config(), data_dir=tmp_path) as server:
        yield server


def saved_mode(data_dir: Path) -> int:
    (saved,) = data_dir.glob("directory-*.json")
    return saved.stat().st_mode


def client(server: RunningServer, auth: tuple[str, str]) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.http, auth=auth, timeout=10)


async def session_answer(server: RunningServer, sip: str) -> dict[str, Any]:
    phone = await server.phone(sip)
    await phone.client.send({"api": "PbxMessages", "mt": "Session", "src": "s"})
    answer: dict[str, Any] = await phone.next()
    return answer


async def test_a_new_licence_opens_a_session_on_the_next_try(served: RunningServer) -> None:
    refused = await session_answer(served, "carol")
    assert refused["code"] == "unlicensed"
    async with client(served, TENANT_ADMIN) as admin:
        answer = await admin.put("/admin/users/example.com/carol", json={"licences": ["messages"]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "domain": "example.com",
        "sip": "carol",
        "dn": "Carol Example",
        "num": "103",
        "licences": ["messages"],
    }
    assert (await session_answer(served, "carol"))["mt"] == "SessionResult"  # no restart


async def test_users_are_created_changed_and_deleted_without_showing_passwords(
    served: RunningServer,
) -> None:
    async with client(served, SERVER_ADMIN) as admin:
        created = await admin.put(
            "/admin/users/example.com/erin",
            json={"dn": "Erin New", "num": "150", "password": "erin-pass-1"},
        )
        assert created.status_code == 201, created.text
        phone = await served.phone("erin", password="erin-pass-1")  # logs in at once
        assert phone.sip == "erin"
        changed = await admin.put("/admin/users/example.com/erin", json={"password": "pass-2"})
        assert changed.status_code == 200
        with pytest.raises(LoginFailed):
            await served.phone("erin", password="erin-pass-1")
        await served.phone("erin", password="pass-2")
        listed = await admin.get("/admin/users", params={"domain": "example.com"})
        one = await admin.get("/admin/users/example.com/erin")
        everything = created.text + changed.text + listed.text + one.text
        for secret in ("erin-pass-1", "pass-2", *PASSWORDS.values()):
            assert secret not in everything
        assert "password" not in everything
        assert (await admin.delete("/admin/users/example.com/erin")).status_code == 204
        assert (await admin.get("/admin/users/example.com/erin")).status_code == 404
        with pytest.raises(LoginFailed):
            await served.phone("erin", password="pass-2")


async def test_a_tenant_admin_cannot_read_or_change_another_tenant(
    served: RunningServer,
) -> None:
    async with client(served, TENANT_ADMIN) as admin:
        for method, path, body in [
            ("GET", "/admin/users?domain=other.org", None),
            ("GET", "/admin/users/other.org/alice", None),
            ("PUT", "/admin/users/other.org/alice", {"licences": []}),
            ("PUT", "/admin/users/other.org/mallory", {"password": "x"}),
            ("DELETE", "/admin/users/other.org/alice", None),
            ("GET", "/admin/trace", None),  # the trace spans tenants: server admin only
        ]:
            answer = await admin.request(method, path, json=body)
            assert answer.status_code in (401, 403), (method, path, answer.status_code)
        mine = (await admin.get("/admin/users")).json()["users"]
        assert {user["domain"] for user in mine} == {"example.com"}
    async with client(served, SERVER_ADMIN) as server_admin:
        alice = await server_admin.get("/admin/users/other.org/alice")
        assert alice.status_code == 200 and alice.json()["dn"] == "Alice Other"
        every = (await server_admin.get("/admin/users")).json()["users"]
        assert {user["domain"] for user in every} == {"example.com", "other.org"}
    await served.phone("alice", domain="other.org", password="other-alice-pw")  # unchanged


async def test_bad_input_is_refused_with_a_clear_error(served: RunningServer) -> None:
    async with client(served, SERVER_ADMIN) as admin:
        cases = [
            ("/admin/users/example.com/newbie", {"dn": "No password"}, 400),
            ("/admin/users/example.com/group-7", {"password": "x"}, 400),
            ("/admin/users/example.com/a%20b", {"password": "x"}, 400),
            ("/admin/users/example.com/bob", {"num": "12a"}, 400),
            ("/admin/users/example.com/bob", {"licences": "messages"}, 400),
            ("/admin/users/example.com/bob", {"num": "101"}, 409),  # alice's number
            ("/admin/users/example.com/helpdesk-bot", {"password": "x"}, 409),  # an App
            ("/admin/users/nowhere.test/bob", {"password": "x"}, 404),
        ]
        for path, body, status in cases:
            answer = await admin.put(path, json=body)
            assert answer.status_code == status, (path, body, answer.text)
            assert set(answer.json()) == {"code", "text"}
        assert (await admin.put("/admin/users/example.com/bob", content=b"[1")).status_code == 400
        bob = (await admin.get("/admin/users/example.com/bob")).json()
        assert (bob["num"], bob["licences"]) == ("102", ["messages"])  # nothing changed


async def test_changes_survive_a_restart(tmp_path: Path) -> None:
    async with (
        running_server(admin_config(), data_dir=tmp_path) as server,
        client(server, SERVER_ADMIN) as admin,
    ):
        await admin.put("/admin/users/example.com/dave", json={"licences": ["messages"]})
        refused = await admin.delete("/admin/users/example.com/carol")
        assert refused.status_code == 409  # the helpdesk bot acts for her: not like this
        assert "helpdesk-bot" in refused.json()["text"]
        assert (await admin.delete("/admin/apps/example.com/helpdesk-bot")).status_code == 204
        assert (await admin.delete("/admin/users/example.com/carol")).status_code == 204
    assert saved_mode(tmp_path) & 0o077 == 0  # it holds passwords: the owner's only
    async with running_server(admin_config(), data_dir=tmp_path) as server:
        assert (await session_answer(server, "dave"))["mt"] == "SessionResult"
        with pytest.raises(LoginFailed):
            await server.phone("carol")


async def test_tenants_are_added_and_removed_by_the_server_admin_only(
    served: RunningServer,
) -> None:
    async with client(served, TENANT_ADMIN) as tenant_admin:
        assert (await tenant_admin.put("/admin/tenants/new.test")).status_code == 403
        assert (await tenant_admin.delete("/admin/tenants/example.com")).status_code == 403
        own = (await tenant_admin.get("/admin/tenants")).json()["tenants"]
        assert [t["domain"] for t in own] == ["example.com"]
    async with client(served, SERVER_ADMIN) as admin:
        assert (await admin.put("/admin/tenants/Bad Domain")).status_code == 400
        assert (await admin.put("/admin/tenants/new.test")).status_code == 201
        assert (await admin.put("/admin/tenants/new.test")).status_code == 200  # exists
        created = await admin.put("/admin/users/new.test/zed", json={"password": "zed-pw"})
        assert created.status_code == 201
        await served.phone("zed", domain="new.test", password="zed-pw")
        tenants = {t["domain"]: t for t in (await admin.get("/admin/tenants")).json()["tenants"]}
        assert tenants["new.test"] == {"domain": "new.test", "users": 1, "apps": 0}
        default = await admin.delete("/admin/tenants/example.com")
        assert (default.status_code, default.json()["code"]) == (409, "bad_state")
        assert (await admin.delete("/admin/tenants/new.test")).status_code == 204
        with pytest.raises(LoginFailed):
            await served.phone("zed", domain="new.test", password="zed-pw")


async def test_app_objects_are_managed_like_users(served: RunningServer) -> None:
    async with client(served, TENANT_ADMIN) as admin:
        body = {
            "dn": "Reporter",
            "password": "bot-pw-1",
            "act_for": ["alice"],
            "apis": ["PbxSignal"],
        }
        created = await admin.put("/admin/apps/example.com/reporter", json=body)
        assert created.status_code == 201, created.text
        assert created.json() == {
            "domain": "example.com",
            "name": "reporter",
            "dn": "Reporter",
            "act_for": ["alice"],
            "apis": ["PbxSignal"],
        }
        bot = await served.connect()
        result = await bot.login(password="bot-pw-1", app="reporter", sip="alice")
        assert result["ok"] is True
        listed = await admin.get("/admin/apps")
        assert "bot-pw-1" not in listed.text and "password" not in listed.text
        for name, fields, status in [
            ("alice", {"password": "x"}, 409),  # a user's sip
            ("reporter", {"act_for": ["nobody"]}, 400),
            ("reporter", {"apis": "PbxSignal"}, 400),
        ]:
            answer = await admin.put(f"/admin/apps/example.com/{name}", json=fields)
            assert answer.status_code == status, (name, answer.text)
        assert (
            await admin.put("/admin/apps/other.org/x", json={"password": "x"})
        ).status_code == 403
        assert (await admin.delete("/admin/apps/example.com/reporter")).status_code == 204
        again = await served.connect()
        with pytest.raises(LoginFailed):
            await again.login(password="bot-pw-1", app="reporter", sip="alice")


async def test_tenants_and_apps_survive_a_restart(tmp_path: Path) -> None:
    async with (
        running_server(admin_config(), data_dir=tmp_path) as server,
        client(server, SERVER_ADMIN) as admin,
    ):
        await admin.put("/admin/tenants/kept.test")
        await admin.put("/admin/users/kept.test/kim", json={"password": "kim-pw"})
        await admin.put("/admin/apps/kept.test/kbot", json={"password": "kb", "act_for": ["kim"]})
        await admin.delete("/admin/tenants/other.org")
    async with running_server(admin_config(), data_dir=tmp_path) as server:
        await server.phone("kim", domain="kept.test", password="kim-pw")
        bot = await server.connect()
        assert (await bot.login(password="kb", app="kbot", sip="kim", domain="kept.test"))["ok"]
        with pytest.raises(LoginFailed):
            await server.phone("alice", domain="other.org", password="other-alice-pw")


async def test_a_tenant_removed_and_added_again_starts_empty_after_a_restart(
    tmp_path: Path,
) -> None:
    async with (
        running_server(admin_config(), data_dir=tmp_path) as server,
        client(server, SERVER_ADMIN) as admin,
    ):
        assert (await admin.delete("/admin/tenants/other.org")).status_code == 204
        assert (await admin.put("/admin/tenants/other.org")).status_code == 201
        assert (await admin.put("/admin/tenants/example.com.")).status_code == 400
    async with (
        running_server(admin_config(), data_dir=tmp_path) as server,
        client(server, SERVER_ADMIN) as admin,
    ):
        tenants = {t["domain"]: t for t in (await admin.get("/admin/tenants")).json()["tenants"]}
        assert tenants["other.org"]["users"] == 0  # the configured users did not come back
        with pytest.raises(LoginFailed):
            await server.phone("alice", domain="other.org", password="other-alice-pw")


def test_a_corrupt_changes_file_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "directory-switchboard.json").write_text('{"tenants": {"x": []}}')
    with pytest.raises(ConfigError, match=r"directory-switchboard\.json"):
        create_app(
            replace(admin_config(), server=replace(admin_config().server, data_dir=tmp_path))
        )
