"""The tenant's lookups of App objects as devices (PROTOCOL §4.1 revised, docs 12.24)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from config import AppConfig, UserConfig
from signaling.directory import Directory, Tenant
from signaling.directory.directory import app_as_user
from tests.support import make_config

ECHO = AppConfig(name="echo", password="pw", dn="Echo", apis=("PbxSignal",), num="150")


def demo() -> Tenant:
    config = make_config()
    tenant = Directory(config.tenants, config.login.default_domain).tenant("example.com")
    assert tenant is not None
    return tenant


def test_an_app_object_as_a_user_has_its_name_dn_number_and_licences_but_no_password() -> None:
    licensed = replace(ECHO, licences=frozenset({"messages"}))
    assert app_as_user(licensed) == UserConfig(
        sip="echo",
        dn="Echo",
        num="150",
        password="",
        licences=frozenset({"messages"}),
        max_chats=0,
        app=True,  # a device of an App object, never taken for a person of the same name
    )
    assert app_as_user(replace(ECHO, dn="")).dn == "echo"  # no dn: its name


def test_only_an_app_object_with_pbxsignal_resolves_by_name_or_number() -> None:
    tenant = demo()
    tenant.put_app(ECHO)
    assert tenant.resolve("echo", None) == tenant.resolve(None, "150") == app_as_user(ECHO)
    assert tenant.device("echo") == app_as_user(ECHO)
    assert tenant.user("echo") is None  # logins, agents and act_for see people only
    tenant.put_app(replace(ECHO, apis=("PbxMessages",)))
    assert tenant.resolve("echo", None) is None and tenant.resolve(None, "150") is None
    assert tenant.resolve("helpdesk-bot", None) is not None  # the demo bot has PbxSignal


def test_numbers_are_shared_by_users_and_app_objects_and_freed_on_change() -> None:
    tenant = demo()
    alice = tenant.users["alice"]
    with pytest.raises(ValueError, match="belongs to 'alice'"):
        tenant.check_put_app(replace(ECHO, num=alice.num))
    tenant.put_app(ECHO)
    with pytest.raises(ValueError, match="belongs to 'echo'"):
        tenant.check_put(replace(alice, num="150"))
    tenant.put_app(replace(ECHO, num="151"))  # its old number is free again
    tenant.put(replace(alice, num="150"))
    assert tenant.resolve(None, "150") == tenant.users["alice"]
    tenant.remove_app("echo")
    assert tenant.resolve(None, "151") is None and "echo" not in tenant.app_users


def test_an_app_object_cannot_take_a_users_or_a_queues_name() -> None:
    tenant = demo()
    with pytest.raises(ValueError, match="a user"):
        tenant.check_put_app(replace(ECHO, name="alice"))
    queue = next(iter(tenant.queues))
    with pytest.raises(ValueError, match="a queue"):
        tenant.check_put_app(replace(ECHO, name=queue))
