"""The directory part of the admin API on a real server (PROTOCOL §10.2): tenants, users,
App objects and queues changed without a restart and kept across one, passwords never
shown, tenants kept apart."""

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
from tests.support import PASSWORDS, Phone, RunningServer, make_config, running_server

SERVER_ADMIN = ("admin", "server-admin-secret")
TAKEN_BY_TAKE = {"take_on_write": False}  # a queue as the config makes it
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
        "max_chats": 3,
        "role": "",
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
            "num": "",
            "licences": [],
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
            ("reporter", {"num": "12a"}, 400),
            ("reporter", {"num": served.config.tenants[0].users[0].num}, 409),  # a user's
        ]:
            answer = await admin.put(f"/admin/apps/example.com/{name}", json=fields)
            assert answer.status_code == status, (name, answer.text)
        assert (
            await admin.put("/admin/apps/other.org/x", json={"password": "x"})
        ).status_code == 403
        changed = await admin.put(
            "/admin/apps/example.com/reporter", json={"num": "777", "licences": ["messages"]}
        )
        assert (changed.json()["num"], changed.json()["licences"]) == ("777", ["messages"])
        # now a device of its own, reachable by that number at the next setup (docs 12.24)
        itself = await served.connect()
        await itself.login(password="bot-pw-1", app="reporter", sip="reporter")
        assert (await itself.recv())["mt"] == "PbxInfo"
        device = Phone(itself, "reporter")
        served.phones.append(device)
        assert "err" not in await device.register()
        alice = await served.phone("alice")
        await alice.signal(
            1, {"type": "setup", "channel": 0, "cd": {"num": "777"}, "fty": [{"type": "im_setup"}]}
        )
        await alice.sig(1, "call_proc")
        assert (await device.offered())[1]["cd"] == {"sip": "reporter", "num": "777"}
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


# -- support queues and agent settings -----------------------------------------------------


async def test_queues_are_created_read_listed_changed_and_deleted(served: RunningServer) -> None:
    async with client(served, TENANT_ADMIN) as admin:
        listed = (await admin.get("/admin/queues")).json()["queues"]
        support = {
            "sip": "support",
            "dn": "Example support",
            "agents": ["alice", "bob"],
            "take_on_write": False,
        }
        assert listed == [{"domain": "example.com", **support}]  # from the config
        created = await admin.put(
            "/admin/queues/example.com/sales", json={"dn": "Sales", "agents": ["carol"]}
        )
        assert created.status_code == 201, created.text
        assert created.json() == {
            "domain": "example.com",
            "sip": "sales",
            "dn": "Sales",
            "agents": ["carol"],
            "take_on_write": False,
        }
        assert (await admin.get("/admin/queues/example.com/sales")).json() == created.json()
        changed = await admin.put(
            "/admin/queues/example.com/sales", json={"agents": ["carol", "dave"]}
        )
        assert changed.status_code == 200, changed.text
        assert (changed.json()["dn"], changed.json()["agents"]) == ("Sales", ["carol", "dave"])
        listed = (await admin.get("/admin/queues", params={"domain": "example.com"})).json()
        assert [queue["sip"] for queue in listed["queues"]] == ["sales", "support"]
        assert (await admin.delete("/admin/queues/example.com/sales")).status_code == 204
        gone = await admin.get("/admin/queues/example.com/sales")
        assert (gone.status_code, gone.json()["code"]) == (404, "not_found")
        assert (await admin.delete("/admin/queues/example.com/sales")).status_code == 404
        # its name is free again, for a user as for anything else
        user = await admin.put("/admin/users/example.com/sales", json={"password": "s-pw"})
        assert user.status_code == 201, user.text
    async with client(served, SERVER_ADMIN) as server_admin:
        assert (await server_admin.get("/admin/queues?domain=other.org")).json() == {"queues": []}
        unknown = await server_admin.put("/admin/queues/nowhere.test/help", json={})
        assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
        assert (await server_admin.get("/admin/queues?domain=nowhere.test")).status_code == 404


async def test_bad_queues_are_refused_with_a_clear_error(served: RunningServer) -> None:
    async with client(served, SERVER_ADMIN) as admin:
        cases = [
            ("help", {"agents": ["alice", "nobody"]}, 400, "nobody"),  # not a user
            ("help", {"agents": "alice"}, 400, "agents"),
            ("help", {"dn": 5}, 400, "dn"),
            ("help", {"members": ["alice"]}, 400, "members"),
            ("group-3", {}, 400, "reserved"),
            ("support", {"agents": ["erin"]}, 400, "erin"),  # a user of the other tenant only
            ("alice", {"agents": ["bob"]}, 409, "alice"),  # a user's sip
            ("helpdesk-bot", {}, 409, "helpdesk-bot"),  # an App object's name
        ]
        for sip, body, status, named in cases:
            answer = await admin.put(f"/admin/queues/example.com/{sip}", json=body)
            assert answer.status_code == status, (sip, body, answer.text)
            error = answer.json()
            assert set(error) == {"code", "text"}
            assert error["code"] == ("bad_json" if status == 400 else "bad_state")
            assert named in error["text"], (sip, error)
        assert (await admin.get("/admin/queues/example.com/help")).status_code == 404
        support = (await admin.get("/admin/queues/example.com/support")).json()
        assert support["agents"] == ["alice", "bob"]  # nothing changed
        # and the other way round: a user or App object cannot take a queue's sip
        user = await admin.put("/admin/users/example.com/support", json={"password": "x"})
        assert (user.status_code, user.json()["code"]) == (409, "bad_state")
        app = await admin.put("/admin/apps/example.com/support", json={"password": "x"})
        assert (app.status_code, app.json()["code"]) == (409, "bad_state")


async def test_a_tenant_admin_cannot_see_or_change_another_tenants_queues(
    served: RunningServer,
) -> None:
    async with client(served, SERVER_ADMIN) as server_admin:
        made = await server_admin.put("/admin/queues/other.org/help", json={"agents": ["erin"]})
        assert made.status_code == 201, made.text
    requests: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "/admin/queues?domain=other.org", None),
        ("GET", "/admin/queues/other.org/help", None),
        ("GET", "/admin/queues/other.org/nothing", None),
        ("PUT", "/admin/queues/other.org/help", {"agents": []}),
        ("PUT", "/admin/queues/other.org/new", {"agents": ["erin"]}),
        ("DELETE", "/admin/queues/other.org/help", None),
    ]
    async with client(served, TENANT_ADMIN) as admin:
        for method, path, body in requests:
            answer = await admin.request(method, path, json=body)
            assert answer.status_code == 403, (method, path, answer.status_code)
            assert answer.json()["code"] == "forbidden"
        mine = (await admin.get("/admin/queues")).json()["queues"]
        assert {queue["domain"] for queue in mine} == {"example.com"}
    async with client(served, SERVER_ADMIN) as server_admin:
        help_queue = (await server_admin.get("/admin/queues/other.org/help")).json()
        assert help_queue["agents"] == ["erin"]  # unchanged
        every = (await server_admin.get("/admin/queues")).json()["queues"]
        assert {queue["domain"] for queue in every} == {"example.com", "other.org"}


async def test_a_user_who_is_an_agent_cannot_be_deleted(served: RunningServer) -> None:
    async with client(served, SERVER_ADMIN) as admin:
        refused = await admin.delete("/admin/users/example.com/alice")
        assert (refused.status_code, refused.json()["code"]) == (409, "bad_state")
        assert "support" in refused.json()["text"]
        await served.phone("alice")  # still there
        changed = await admin.put("/admin/queues/example.com/support", json={"agents": ["bob"]})
        assert changed.status_code == 200, changed.text
        assert (await admin.delete("/admin/users/example.com/alice")).status_code == 204


async def test_max_chats_is_shown_changed_and_checked(served: RunningServer) -> None:
    async with client(served, TENANT_ADMIN) as admin:
        bob = (await admin.get("/admin/users/example.com/bob")).json()
        assert bob["max_chats"] == 3  # the default
        changed = await admin.put("/admin/users/example.com/bob", json={"max_chats": 5})
        assert (changed.status_code, changed.json()["max_chats"]) == (200, 5)
        renamed = await admin.put("/admin/users/example.com/bob", json={"dn": "Bobby"})
        assert renamed.json()["max_chats"] == 5  # left out: kept
        assert (await admin.get("/admin/users/example.com/bob")).json()["max_chats"] == 5
        created = await admin.put(
            "/admin/users/example.com/fay", json={"password": "fay-pw", "max_chats": 0}
        )
        assert (created.status_code, created.json()["max_chats"]) == (201, 0)
        for bad in (1001, -1, "4", 2.5, True, None):
            answer = await admin.put("/admin/users/example.com/bob", json={"max_chats": bad})
            assert answer.status_code == 400, (bad, answer.text)
            assert answer.json()["code"] == "bad_json"
            assert "max_chats" in answer.json()["text"]
        listed = (await admin.get("/admin/users", params={"domain": "example.com"})).json()
        assert {user["sip"]: user["max_chats"] for user in listed["users"]}["bob"] == 5


async def test_queues_and_agent_settings_survive_a_restart(tmp_path: Path) -> None:
    async with (
        running_server(admin_config(), data_dir=tmp_path) as server,
        client(server, SERVER_ADMIN) as admin,
    ):
        sales = {"dn": "Sales", "agents": ["carol"]}
        assert (await admin.put("/admin/queues/example.com/sales", json=sales)).status_code == 201
        await admin.put("/admin/queues/example.com/support", json={"agents": ["bob"]})
        assert (await admin.delete("/admin/users/example.com/alice")).status_code == 204
        await admin.put("/admin/users/example.com/bob", json={"max_chats": 7})
        # a name moves from a user to a queue: applied in that order at start
        assert (await admin.delete("/admin/users/example.com/dave")).status_code == 204
        assert (await admin.put("/admin/queues/example.com/dave", json={})).status_code == 201
        await admin.put("/admin/queues/other.org/help", json={"agents": ["erin"]})
        assert (await admin.delete("/admin/queues/other.org/help")).status_code == 204
    async with (
        running_server(admin_config(), data_dir=tmp_path) as server,
        client(server, SERVER_ADMIN) as admin,
    ):
        queues = {q["sip"]: q for q in (await admin.get("/admin/queues")).json()["queues"]}
        assert queues == {
            "sales": {
                "domain": "example.com",
                "sip": "sales",
                "dn": "Sales",
                "agents": ["carol"],
                **TAKEN_BY_TAKE,
            },
            "support": {
                "domain": "example.com",
                "sip": "support",
                "dn": "Example support",
                "agents": ["bob"],
                **TAKEN_BY_TAKE,
            },
            "dave": {
                "domain": "example.com",
                "sip": "dave",
                "dn": "dave",
                "agents": [],
                **TAKEN_BY_TAKE,
            },
        }
        assert (await admin.get("/admin/users/example.com/bob")).json()["max_chats"] == 7
        assert (await admin.get("/admin/users/example.com/alice")).status_code == 404
        assert (await admin.get("/admin/users/example.com/dave")).status_code == 404
        with pytest.raises(LoginFailed):
            await server.phone("alice")


async def test_guessing_an_admin_password_locks_only_the_guessing_pair(
    served: RunningServer,
) -> None:
    """PROTOCOL §3.6 for admin logins too: the user name given is the account."""
    async with client(served, (SERVER_ADMIN[0], "guess")) as guesser:
        answers = [(await guesser.get("/admin/tenants")).status_code for _ in range(20)]
    assert answers == [401] * 20
    async with client(served, SERVER_ADMIN) as admin:
        assert (await admin.get("/admin/tenants")).status_code == 401  # the pair waits
    async with client(served, TENANT_ADMIN) as colleague:
        assert (await colleague.get("/admin/tenants")).status_code == 200  # same address
    elsewhere = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(
        base_url=served.http, auth=SERVER_ADMIN, transport=elsewhere, timeout=10
    ) as admin:
        assert (await admin.get("/admin/tenants")).status_code == 200
    served.clock.advance(served.config.login.throttle_delay)
    async with client(served, SERVER_ADMIN) as admin:
        assert (await admin.get("/admin/tenants")).status_code == 200


def supervised_config() -> Config:
    """admin_config with bob a supervisor and the support queue taken by writing."""
    config = admin_config()
    demo, *others = config.tenants
    users = tuple(replace(u, role="supervisor") if u.sip == "bob" else u for u in demo.users)
    queues = tuple(replace(q, take_on_write=True) for q in demo.queues)
    return replace(config, tenants=(replace(demo, users=users, queues=queues), *others))


async def test_role_and_take_on_write_are_shown_kept_across_changes_and_a_restart(
    tmp_path: Path,
) -> None:
    """docs/protocol.md 12.34: a change of other fields keeps a supervisor one and a queue
    taken by writing; both are set, checked and kept like any other field."""
    async with (
        running_server(supervised_config(), data_dir=tmp_path) as server,
        client(server, TENANT_ADMIN) as admin,
    ):
        bob = (await admin.get("/admin/users/example.com/bob")).json()
        assert bob["role"] == "supervisor"
        changed = await admin.put("/admin/users/example.com/bob", json={"max_chats": 5})
        assert changed.json()["role"] == "supervisor"  # left out: kept
        support = (await admin.get("/admin/queues/example.com/support")).json()
        assert support["take_on_write"] is True
        moved = await admin.put("/admin/queues/example.com/support", json={"agents": ["alice"]})
        assert moved.json()["take_on_write"] is True
        made = await admin.put("/admin/users/example.com/alice", json={"role": "supervisor"})
        assert made.json()["role"] == "supervisor"
        plain = await admin.put("/admin/queues/example.com/plain", json={"agents": ["carol"]})
        assert (plain.status_code, plain.json()["take_on_write"]) == (201, False)
        for bad in ("boss", 1, None):
            answer = await admin.put("/admin/users/example.com/carol", json={"role": bad})
            assert (answer.status_code, answer.json()["code"]) == (400, "bad_json"), bad
            assert "role" in answer.json()["text"]
        answer = await admin.put("/admin/queues/example.com/plain", json={"take_on_write": "y"})
        assert (answer.status_code, answer.json()["code"]) == (400, "bad_json")
        listed = (await admin.get("/admin/users", params={"domain": "example.com"})).json()
        assert {u["sip"]: u["role"] for u in listed["users"]}["carol"] == ""
    async with (
        running_server(admin_config(), data_dir=tmp_path) as server,
        client(server, TENANT_ADMIN) as admin,
    ):
        for sip in ("alice", "bob"):
            user = (await admin.get(f"/admin/users/example.com/{sip}")).json()
            assert user["role"] == "supervisor", user
        support = (await admin.get("/admin/queues/example.com/support")).json()
        assert (support["agents"], support["take_on_write"]) == (["alice"], True)
