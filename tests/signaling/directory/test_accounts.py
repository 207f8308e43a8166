"""``HubAccounts``: which password an ``AppLogin`` names and who it acts as (PROTOCOL §3.3)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from config import AppConfig
from signaling.appwebsocket.digest import NO_INFO
from signaling.appwebsocket.login import LoginRequest, Principal
from signaling.directory import Directory, HubAccounts
from tests.support import BOT, make_config


def accounts(*extra_apps: AppConfig) -> HubAccounts:
    """The hub's accounts over make_config()'s directory, with extra App objects if given."""
    config = make_config()
    demo, *others = config.tenants
    tenants = (replace(demo, apps=(*demo.apps, *extra_apps)), *others)
    return HubAccounts(Directory(tenants, config.login.default_domain))


def request(
    *, app: str = "", domain: str = "", sip: str = "", guid: str = "", dn: str = ""
) -> LoginRequest:
    return LoginRequest(
        app=app,
        domain=domain,
        sip=sip,
        guid=guid,
        dn=dn,
        info=NO_INFO,
        digest="",
        pbx_obj="",
    )


# -- user logins ----------------------------------------------------------------------------------


def test_user_login_names_the_users_password() -> None:
    account = accounts().find(request(domain="example.com", sip="alice"))
    assert account is not None
    assert account.password == "alice-demo"
    assert account.principal == Principal("example.com", "alice", "Alice Example")
    assert account.principal.is_user and account.principal.app is None


def test_app_field_that_is_no_app_object_is_only_the_clients_name() -> None:
    account = accounts().find(request(app="innovaphone-chat", domain="example.com", sip="bob"))
    assert account is not None
    assert account.password == "bob-demo"
    assert account.principal == Principal("example.com", "bob", "Bob Example")


def test_short_form_uses_the_default_domain() -> None:
    account = accounts().find(request(sip="carol"))
    assert account is not None
    assert (account.password, account.principal.domain) == ("carol-demo", "example.com")


def test_the_same_sip_in_another_tenant_is_another_account() -> None:
    hub = accounts()
    other = hub.find(request(domain="other.org", sip="alice"))
    assert other is not None
    assert other.password == "other-alice-pw"
    assert other.principal == Principal("other.org", "alice", "Alice Other")
    assert hub.find(request(domain="other.org", sip="bob")) is None  # bob lives elsewhere


@pytest.mark.parametrize(
    ("domain", "sip"),
    [
        ("nowhere.test", "alice"),
        ("example.com", "mallory"),
        ("example.com", ""),
        ("", "nobody"),
        ("example.com", "Alice"),
    ],
)
def test_unknown_tenant_or_user_has_no_account(domain: str, sip: str) -> None:
    assert accounts().find(request(domain=domain, sip=sip)) is None


# -- App objects ----------------------------------------------------------------------------------


@pytest.mark.parametrize("sip", ["", "helpdesk-bot"])
def test_app_object_logs_in_as_itself(sip: str) -> None:
    account = accounts().find(request(app="helpdesk-bot", domain="example.com", sip=sip))
    assert account is not None
    assert account.password == "bot-secret"
    assert account.principal == Principal(
        "example.com", "", "Helpdesk bot", "helpdesk-bot", ("PbxSignal",)
    )
    assert not account.principal.is_user


def test_app_object_in_the_short_form() -> None:
    account = accounts().find(request(app="helpdesk-bot"))
    assert account is not None and account.principal.domain == "example.com"


def test_app_object_without_dn_is_shown_by_its_name() -> None:
    plain = AppConfig(name="plain-app", password="plain-pw")
    account = accounts(plain).find(request(app="plain-app"))
    assert account is not None
    assert account.principal == Principal("example.com", "", "plain-app", "plain-app", ())


def test_app_object_acts_for_a_user_in_act_for() -> None:
    account = accounts().find(request(app="helpdesk-bot", domain="example.com", sip="carol"))
    assert account is not None
    assert account.password == "bot-secret"  # the object's password, not carol's
    assert account.principal == Principal(
        "example.com", "carol", "Carol Example", "helpdesk-bot", ("PbxSignal",)
    )
    assert account.principal.is_user


@pytest.mark.parametrize("sip", ["alice", "dave", "nobody", "other-app"])
def test_app_object_cannot_act_for_a_user_outside_act_for(sip: str) -> None:
    other = AppConfig(name="other-app", password="o", act_for=frozenset({"*"}))
    assert accounts(other).find(request(app="helpdesk-bot", sip=sip)) is None


def test_act_for_star_means_every_user_of_its_own_tenant() -> None:
    star = AppConfig(name="operator", password="op-pw", act_for=frozenset({"*"}))
    hub = accounts(star)
    for sip in ("alice", "bob", "carol", "dave"):
        account = hub.find(request(app="operator", sip=sip))
        assert account is not None
        assert (account.password, account.principal.sip) == ("op-pw", sip)
        assert account.principal.app == "operator"
    assert hub.find(request(app="operator", sip="nobody")) is None
    # in another tenant the object does not exist: that is erin's own login, with her password
    elsewhere = hub.find(request(app="operator", domain="other.org", sip="erin"))
    assert elsewhere is not None and elsewhere.password == "erin-pw"
    assert elsewhere.principal.app is None
    assert hub.find(request(app="operator", domain="other.org", sip="")) is None


def test_an_app_object_of_one_tenant_is_unknown_in_another() -> None:
    hub = accounts()
    assert hub.find(request(app="helpdesk-bot", domain="other.org")) is None
    # with a user sip it is an ordinary user login there (app is only the client's name)
    account = hub.find(request(app="helpdesk-bot", domain="other.org", sip="erin"))
    assert account is not None and account.password == "erin-pw"
    assert account.principal.app is None


# -- throttle keys -------------------------------------------------------------------------------


def test_throttle_key_names_domain_and_user() -> None:
    hub = accounts()
    assert hub.throttle_key(request(domain="example.com", sip="alice")) == "example.com/alice"
    assert hub.throttle_key(request(domain="other.org", sip="alice")) == "other.org/alice"


def test_throttle_key_of_the_short_form_is_that_of_the_default_domain() -> None:
    hub = accounts()
    assert hub.throttle_key(request(sip="alice")) == "example.com/alice"
    assert hub.throttle_key(request(app="chat", sip="alice")) == "example.com/alice"


def test_throttle_key_of_an_app_object_login_is_the_object() -> None:
    hub = accounts()
    for sip in ("", BOT.name, "carol", "alice"):
        key = hub.throttle_key(request(app=BOT.name, domain="example.com", sip=sip))
        assert key == "example.com/helpdesk-bot"


def test_throttle_key_exists_for_unknown_accounts_too() -> None:
    hub = accounts()
    assert hub.throttle_key(request(domain="nowhere.test", sip="x")) == "nowhere.test/x"
    assert hub.throttle_key(request(domain="example.com", sip="mallory")) == "example.com/mallory"
