"""``DirectoryChanges``: the admin API's changes saved to a file and applied over the
configured tenants at start (PROTOCOL §10.2), and the ``Tenant`` checks they go through."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest

from config import AppConfig, ConfigError, QueueConfig, UserConfig
from signaling.directory import Directory, Tenant
from signaling.directory.changes import DirectoryChanges
from tests.support import make_config


def directory() -> Directory:
    config = make_config()
    return Directory(config.tenants, config.login.default_domain)


def demo(directory: Directory) -> Tenant:
    tenant = directory.tenant("example.com")
    assert tenant is not None
    return tenant


def test_queues_and_max_chats_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "directory-n1.json"
    changes = DirectoryChanges(path)
    changes.load_into(directory())  # no file yet: nothing to apply
    sales = QueueConfig("sales", "Sales", ("carol", "alice"))
    bob = replace(demo(directory()).users["bob"], max_chats=9)
    changes.record_queue("example.com", "sales", sales)
    changes.record_queue("example.com", "support", None)
    changes.record_user("example.com", "bob", bob)
    restarted = directory()
    DirectoryChanges(path).load_into(restarted)
    tenant = demo(restarted)
    assert tenant.queues == {"sales": sales}
    assert tenant.users["bob"].max_chats == 9
    assert tenant.users["alice"].max_chats == 3


def test_a_file_without_queues_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "directory-n1.json"
    user = {"dn": "Erin", "num": "150", "password": "erin-pw", "licences": []}
    saved = {"tenants": {"example.com": {"state": "config", "users": {"erin": user}, "apps": {}}}}
    path.write_text(json.dumps(saved))
    loaded = directory()
    changes = DirectoryChanges(path)
    changes.load_into(loaded)
    tenant = demo(loaded)
    assert tenant.users["erin"] == UserConfig("erin", "Erin", "150", "erin-pw")  # max_chats 3
    assert list(tenant.queues) == ["support"]  # the configured queue, untouched
    changes.record_queue("example.com", "support", None)  # and it can be written again
    assert json.loads(path.read_text())["tenants"]["example.com"]["queues"] == {"support": None}


def test_a_name_freed_by_a_deletion_can_be_taken_at_start(tmp_path: Path) -> None:
    path = tmp_path / "directory-n1.json"
    changes = DirectoryChanges(path)
    changes.record_user("example.com", "dave", None)
    changes.record_queue("example.com", "dave", QueueConfig("dave", "Dave's desk"))
    changes.record_queue("example.com", "support", None)
    changes.record_user("example.com", "support", UserConfig("support", "S", "", "s-pw"))
    loaded = directory()
    DirectoryChanges(path).load_into(loaded)
    tenant = demo(loaded)
    assert "dave" not in tenant.users and tenant.queues["dave"].dn == "Dave's desk"
    assert "support" not in tenant.queues and tenant.users["support"].dn == "S"


def test_a_number_an_app_object_gave_up_can_go_to_a_new_user_at_start(tmp_path: Path) -> None:
    """Replayed in any order, changes the admin API accepted one after the other apply:
    the bot moves off 150, then a new user takes 150."""
    path = tmp_path / "directory-n1.json"
    bot = AppConfig("echo-bot", "bot-pw", apis=("PbxSignal",), num="150")
    config = make_config()
    demo_tenant, *others = config.tenants
    configured = [replace(demo_tenant, apps=(*demo_tenant.apps, bot)), *others]
    changes = DirectoryChanges(path)
    changes.record_app("example.com", "echo-bot", replace(bot, num="151"))
    changes.record_user("example.com", "yvonne", UserConfig("yvonne", "Yvonne", "150", "y-pw"))
    loaded = Directory(configured, config.login.default_domain)
    DirectoryChanges(path).load_into(loaded)
    tenant = demo(loaded)
    assert tenant.users["yvonne"].num == "150"
    assert tenant.apps["echo-bot"].num == "151"


def test_a_queue_that_no_longer_fits_is_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "directory-n1.json"
    queue = {"dn": "Help", "agents": ["alice", "zoe"]}  # zoe: not (or no longer) a user
    saved = {"tenants": {"example.com": {"queues": {"help": queue}}}}
    path.write_text(json.dumps(saved))
    loaded = directory()
    with caplog.at_level(logging.WARNING):
        DirectoryChanges(path).load_into(loaded)
    assert "help" not in demo(loaded).queues
    assert "queue example.com/help skipped" in caplog.text


def test_queues_that_are_not_a_table_are_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "directory-n1.json"
    path.write_text(json.dumps({"tenants": {"example.com": {"queues": []}}}))
    with pytest.raises(ConfigError, match=r"directory-n1\.json"):
        DirectoryChanges(path).load_into(directory())


def test_a_removed_tenant_forgets_its_queue_changes(tmp_path: Path) -> None:
    path = tmp_path / "directory-n1.json"
    changes = DirectoryChanges(path)
    changes.record_queue("other.org", "help", QueueConfig("help", "Help", ("erin",)))
    changes.record_tenant("other.org", added=False)
    changes.record_tenant("other.org", added=True)
    loaded = directory()
    DirectoryChanges(path).load_into(loaded)
    tenant = loaded.tenant("other.org")
    assert tenant is not None and tenant.queues == {} and tenant.users == {}


def test_tenant_queue_checks() -> None:
    tenant = demo(directory())
    with pytest.raises(ValueError, match="user"):
        tenant.check_put_queue(QueueConfig("alice", "Alice"))
    with pytest.raises(ValueError, match="App object"):
        tenant.check_put_queue(QueueConfig("helpdesk-bot", "Bot"))
    with pytest.raises(ValueError, match="'zoe'"):
        tenant.put_queue(QueueConfig("help", "Help", ("alice", "zoe")))
    assert "help" not in tenant.queues
    tenant.put_queue(QueueConfig("help", "Help", ("dave",)))
    with pytest.raises(ValueError, match="help"):
        tenant.check_remove("dave")
    assert tenant.remove_queue("help") == QueueConfig("help", "Help", ("dave",))
    assert tenant.remove_queue("help") is None
    tenant.check_remove("dave")  # no longer an agent
