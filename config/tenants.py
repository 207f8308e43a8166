"""Tenants (``[tenants."<domain>"]``): their users, App objects, support queues and
emoticons, checked as one namespace per tenant; the admin API reads its tables with the
same functions (``user_from_table`` …), so an entry is checked the same way wherever it
comes from. Passwords are only ever described by their type.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from .errors import ConfigError, shown_value, type_name
from .sections import AppConfig, QueueConfig, TenantConfig, UserConfig
from .tables import Table, as_table, key, optional_text, reject_unknown, strings

__all__ = [
    "app_from_table",
    "check_domain",
    "password",
    "queue_from_table",
    "tenants",
    "user_from_table",
]

_DIGITS = re.compile(r"[0-9]*")
_NAME_FORBIDDEN = re.compile(r"[@:\s]")
_GROUP_NAME = re.compile(r"group-[0-9]+")
"""Addresses the messages service gives to groups (PROTOCOL §7.6); no user may take one."""
_SHORTCODE = re.compile(r"[a-z0-9_+-]{1,32}")
_IMAGE_PATH = re.compile(r"/[A-Za-z0-9._~/-]{1,200}\.(png|gif|svg|webp|jpe?g)")
_TENANT_KEYS = (
    "demo",
    "users",
    "apps",
    "queues",
    "emoticons",
    "widget_origins",
    "delete_chat",
)
_DELETE_CHAT = ("own", "both")
_ORIGIN = re.compile(r"https?://[a-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9a-f:.]+\](:[0-9]{1,5})?")
"""An origin as browsers send it: scheme, host and port, lower case, no path."""
_USER_KEYS = ("dn", "num", "password", "licences", "max_chats", "role")
_ROLES = ("", "supervisor")
_QUEUE_KEYS = ("dn", "agents", "take_on_write")
_APP_KEYS = ("dn", "password", "act_for", "apis", "num", "licences")


def tenants(value: object) -> tuple[TenantConfig, ...]:
    table = as_table(value, "tenants")
    return tuple(_tenant(domain, spec) for domain, spec in table.items())


def _tenant(domain: str, value: object) -> TenantConfig:
    where = key("tenants", domain)
    check_domain(domain, where)
    table = as_table(value, where)
    reject_unknown(table, _TENANT_KEYS, where)
    demo = table.get("demo", False)
    if not isinstance(demo, bool):
        raise ConfigError(f"{where}.demo", f"expected true or false, got {shown_value(demo)}")
    users = _users(table.get("users", {}), f"{where}.users")
    apps = _apps(table.get("apps", {}), f"{where}.apps", users)
    queues = _queues(table.get("queues", {}), f"{where}.queues", users, apps)
    emoticons = _emoticons(table.get("emoticons", {}), f"{where}.emoticons")
    return TenantConfig(
        domain=domain,
        users=users,
        apps=apps,
        queues=queues,
        demo=demo,
        emoticons=emoticons,
        widget_origins=_widget_origins(table, where),
        delete_chat=_delete_chat(table, where),
    )


def _delete_chat(table: Table, where: str) -> str:
    """What ``DeleteChat`` removes (docs/protocol.md 12.32): the deleter's copy only
    (``own``), or the other side's copy too (``both``)."""
    value = table.get("delete_chat", "own")
    if value not in _DELETE_CHAT:
        raise ConfigError(
            f"{where}.delete_chat", f'expected "own" or "both", got {shown_value(value)}'
        )
    return str(value)


def _widget_origins(table: Table, where: str) -> tuple[str, ...]:
    """The origins whose pages may make visitors of this tenant (PROTOCOL §9.1). Compared
    with the ``Origin`` header as browsers send it, so written the same way."""
    origins = strings(table, "widget_origins", where)
    for origin in origins:
        if not _ORIGIN.fullmatch(origin):
            raise ConfigError(
                f"{where}.widget_origins",
                f'expected origins like "https://shop.example" (lower case, no path), '
                f"got {shown_value(origin)}",
            )
    return tuple(dict.fromkeys(origins))


def _emoticons(value: object, where: str) -> tuple[tuple[str, str], ...]:
    """Shortcodes (letters, digits, ``_``, ``-``, ``+``) mapped to image paths on this
    server: the web client shows ``:code:`` as that image. Paths only, so the pages'
    Content-Security-Policy (images from this server) holds."""
    emoticons = []
    for code, path in as_table(value, where).items():
        if not _SHORTCODE.fullmatch(code):
            raise ConfigError(key(where, code), "a shortcode is 1-32 of a-z 0-9 _ - +")
        if not isinstance(path, str) or not _IMAGE_PATH.fullmatch(path) or ".." in path:
            raise ConfigError(
                key(where, code),
                f"expected a path on this server like /static/x.png, got {shown_value(path)}",
            )
        emoticons.append((code, path))
    return tuple(emoticons)


def _users(value: object, where: str) -> tuple[UserConfig, ...]:
    """The users of a tenant; a number may belong to one user only, or dialling is ambiguous."""
    users: list[UserConfig] = []
    owners: dict[str, str] = {}
    for sip, spec in as_table(value, where).items():
        user = _user(sip, spec, key(where, sip))
        if user.num in owners:
            raise ConfigError(
                key(where, sip, "num"),
                f"{shown_value(user.num)} is already the number of {shown_value(owners[user.num])}",
            )
        if user.num:
            owners[user.num] = sip
        users.append(user)
    return tuple(users)


def user_from_table(sip: str, value: object, where: str) -> UserConfig:
    """A user from a table shaped like ``[tenants."<domain>".users.<sip>]`` (the admin API
    takes the same fields); ``ConfigError`` names what is wrong."""
    return _user(sip, value, where)


def app_from_table(name: str, value: object, where: str, sips: set[str]) -> AppConfig:
    """An App object from a table shaped like ``[tenants."<domain>".apps.<name>]``;
    ``act_for`` must name users of ``sips``."""
    return _app(name, value, where, sips)


def queue_from_table(sip: str, value: object, where: str, sips: set[str]) -> QueueConfig:
    """A queue from a table shaped like ``[tenants."<domain>".queues.<sip>]``; ``agents``
    must name users of ``sips``."""
    return _queue(sip, value, where, sips)


def _user(sip: str, value: object, where: str) -> UserConfig:
    _check_name(sip, where)
    table = as_table(value, where)
    reject_unknown(table, _USER_KEYS, where)
    dn = optional_text(table, "dn", where, default=sip)
    return UserConfig(
        sip=sip,
        dn=dn,
        num=_dial_number(table, where),
        password=password(table, where),
        licences=frozenset(strings(table, "licences", where)),
        max_chats=_max_chats(table, where),
        role=_role(table, where),
    )


def _dial_number(table: Table, where: str) -> str:
    """A user's or App object's number: digits only, empty for none."""
    num = optional_text(table, "num", where, default="")
    if not _DIGITS.fullmatch(num):
        raise ConfigError(f"{where}.num", f"expected digits only, got {shown_value(num)}")
    return num


def _max_chats(table: Table, where: str) -> int:
    value = table.get("max_chats", 3)
    if type(value) is not int or not 0 <= value <= 1000:
        raise ConfigError(f"{where}.max_chats", f"expected 0 to 1000, got {shown_value(value)}")
    return value


def _role(table: Table, where: str) -> str:
    """An agent's role in live support: a ``supervisor`` may close or transfer any taken
    chat of its queues, others only their own (docs/protocol.md 12.34)."""
    value = table.get("role", "")
    if value not in _ROLES:
        raise ConfigError(f"{where}.role", f'expected "supervisor" or "", got {shown_value(value)}')
    return str(value)


def _queues(
    value: object, where: str, users: tuple[UserConfig, ...], apps: tuple[AppConfig, ...]
) -> tuple[QueueConfig, ...]:
    """The support queues of a tenant; their sips share the namespace of users and Apps."""
    sips = {user.sip for user in users}
    taken = sips | {app.name for app in apps}
    clash = "a user or App object of this tenant has this name"
    return _named(value, where, taken, clash, lambda sip, spec, at: _queue(sip, spec, at, sips))


def _queue(sip: str, value: object, where: str, sips: set[str]) -> QueueConfig:
    _check_name(sip, where)
    table = as_table(value, where)
    reject_unknown(table, _QUEUE_KEYS, where)
    agents = _users_named(table, "agents", where, sips)
    return QueueConfig(
        sip=sip,
        dn=optional_text(table, "dn", where, default=sip),
        agents=tuple(dict.fromkeys(agents)),
        take_on_write=_flag(table, "take_on_write", where),
    )


def _flag(table: Table, name: str, where: str) -> bool:
    value = table.get(name, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}.{name}", f"expected true or false, got {shown_value(value)}")
    return value


def _apps(value: object, where: str, users: tuple[UserConfig, ...]) -> tuple[AppConfig, ...]:
    """The App objects of a tenant; their names share one namespace with the user sips,
    their numbers one with the users' numbers (both are dialled alike, docs 12.24)."""
    sips = {user.sip for user in users}
    clash = "a user of this tenant already has this name"
    apps = _named(value, where, sips, clash, lambda name, spec, at: _app(name, spec, at, sips))
    owners = {user.num: user.sip for user in users if user.num}
    for app in apps:
        if app.num in owners:
            raise ConfigError(
                key(where, app.name, "num"),
                f"{shown_value(app.num)} is already the number of {shown_value(owners[app.num])}",
            )
        if app.num:
            owners[app.num] = app.name
    return apps


_T = TypeVar("_T")


def _named(
    value: object, where: str, taken: set[str], clash: str, make: Callable[[str, object, str], _T]
) -> tuple[_T, ...]:
    """The entries of a table keyed by name (App objects, queues), none named like
    ``taken`` (they share one namespace per tenant)."""
    entries: list[_T] = []
    for name, spec in as_table(value, where).items():
        at = key(where, name)
        if name in taken:
            raise ConfigError(at, clash)
        entries.append(make(name, spec, at))
    return tuple(entries)


def _users_named(
    table: Table, key: str, where: str, sips: set[str], *, anyone: bool = False
) -> list[str]:
    """A list of user sips of the tenant (``"*"`` too when ``anyone``)."""
    names = strings(table, key, where)
    for sip in names:
        if sip not in sips and not (anyone and sip == "*"):
            raise ConfigError(f"{where}.{key}", f"no user {shown_value(sip)} in this tenant")
    return names


def _app(name: str, value: object, where: str, sips: set[str]) -> AppConfig:
    _check_name(name, where)
    table = as_table(value, where)
    reject_unknown(table, _APP_KEYS, where)
    act_for = _users_named(table, "act_for", where, sips, anyone=True)
    return AppConfig(
        name=name,
        password=password(table, where),
        dn=optional_text(table, "dn", where, default=""),
        act_for=frozenset(act_for),
        apis=tuple(strings(table, "apis", where)),
        num=_dial_number(table, where),
        licences=frozenset(strings(table, "licences", where)),
    )


def password(entries: Table, where: str) -> str:
    """The password of a user or App; described by type only, never by value, on error."""
    where = f"{where}.password"
    if "password" not in entries:
        raise ConfigError(where, "required")
    value = entries["password"]
    if not isinstance(value, str):
        raise ConfigError(where, f"expected a string, got {type_name(value)}")
    if not value:
        raise ConfigError(where, "must not be empty")
    return value


def check_domain(domain: str, where: str) -> None:
    """A tenant's domain as the config accepts it, else ``ConfigError``."""
    if not domain:
        raise ConfigError(where, "a domain name must not be empty")
    if domain != domain.lower() or any(char.isspace() for char in domain):
        raise ConfigError(where, "a domain name must be lower case without whitespace")


def _check_name(name: str, where: str) -> None:
    """User sips and App names end up in addresses (``sip@domain``), so keep them plain."""
    if not name:
        raise ConfigError(where, "a name must not be empty")
    if _NAME_FORBIDDEN.search(name):
        raise ConfigError(where, 'a name must not contain whitespace, "@" or ":"')
    if _GROUP_NAME.fullmatch(name):
        raise ConfigError(where, 'names "group-<number>" are reserved for groups')
