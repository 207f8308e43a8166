"""Build a ``Config`` from the packaged defaults, an optional TOML file and the environment.

The layers are merged as plain TOML-shaped dicts first and validated once at the end, so a
value is checked the same way wherever it came from. Only the environment layer is checked
early as well, because only there can the error name the variable that caused it.

Validation is strict on purpose: unknown keys are errors (a typo must not silently fall back
to a default), and every error names the dotted key to fix. Passwords are only ever
described by their type, so no error message can leak one.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from importlib.resources import files
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError, shown_value, type_name
from .sections import (
    AdminConfig,
    AppConfig,
    Config,
    FilesConfig,
    LimitsConfig,
    LoginConfig,
    MessagesConfig,
    QueueConfig,
    ServerConfig,
    SignalingConfig,
    SupportConfig,
    TenantAdmin,
    TenantConfig,
    TraceConfig,
    UserConfig,
    WebhooksConfig,
)
from .units import parse_duration, parse_size

__all__ = [
    "ENV_PREFIX",
    "app_from_table",
    "check_domain",
    "load_config",
    "queue_from_table",
    "user_from_table",
]

ENV_PREFIX = "SWITCHBOARD_"

Table = dict[str, Any]
_Number = TypeVar("_Number", int, float)

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_DIGITS = re.compile(r"[0-9]*")
_NAME_FORBIDDEN = re.compile(r"[@:\s]")
_GROUP_NAME = re.compile(r"group-[0-9]+")
_SHORTCODE = re.compile(r"[a-z0-9_+-]{1,32}")
_IMAGE_PATH = re.compile(r"/[A-Za-z0-9._~/-]{1,200}\.(png|gif|svg|webp|jpe?g)")
"""Addresses the messages service gives to groups (PROTOCOL §7.6); no user may take one."""


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """The configuration from defaults, then ``path`` (if any), then ``env`` (default: os.environ).

    Raises ``ConfigError`` for anything that cannot be used; nothing is silently ignored
    except environment variables outside the five overridable sections.
    """
    tree = _read_defaults()
    if path is not None:
        tree = _merge_file(tree, _read_file(Path(path)))
    tree = _deep_merge(tree, _env_overrides(os.environ if env is None else env))
    return _build(tree)


# --- reading and merging ------------------------------------------------------------------


def _read_defaults() -> Table:
    """The packaged ``default.toml``, found as package data so it works from a wheel too."""
    resource = files("config") / "default.toml"
    return _parse_toml(resource.read_bytes(), "config/default.toml")


def _read_file(path: Path) -> Table:
    """The operator's TOML file; a missing or unreadable file is an error, not "no overrides"."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(str(path), "file not found") from None
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read file: {exc.strerror or exc}") from None
    return _parse_toml(data, str(path))


def _parse_toml(data: bytes, name: str) -> Table:
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(name, "not a UTF-8 text file") from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib reports positions and key names, never values, so this cannot leak a secret.
        raise ConfigError(name, f"not valid TOML: {exc}") from None


def _merge_file(defaults: Table, user: Table) -> Table:
    """Deep-merge the user's file over the defaults, but let its ``tenants`` replace them.

    Merging tenants key by key would keep the demo tenant (and its public passwords) alive in
    any deployment that merely adds its own tenant, which is exactly what must not happen.
    """
    merged = _deep_merge(defaults, {key: value for key, value in user.items() if key != "tenants"})
    if "tenants" in user:
        merged["tenants"] = user["tenants"]
    return merged


def _deep_merge(base: Table, override: Table) -> Table:
    """``override`` over ``base``: tables merge recursively, any other value replaces."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            merged[key] = _deep_merge(current, value)
        else:
            merged[key] = value
    return merged


# --- options of the plain sections ---------------------------------------------------


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {shown_value(value)}")
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _path(value: object) -> Path:
    return Path(_text(value))


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {shown_value(value)}")
    if value < 0:
        raise ValueError(f"must not be negative, got {value}")
    return value


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {shown_value(value)}")
    return value


def _admin(tree: Table) -> AdminConfig:
    """``[admin]`` with its optional ``[admin.tenants."<domain>"]`` tables."""
    table = dict(_table(tree.get("admin", {}), "admin"))
    tenants = _table(table.pop("tenants", {}), "admin.tenants")
    admin = AdminConfig(**_section_values({"admin": table}, "admin"))
    accounts = []
    for domain, spec in tenants.items():
        where = _key("admin.tenants", domain)
        _check_domain(domain, where)
        entry = _table(spec, where)
        _reject_unknown(entry, ("user", "password"), where)
        accounts.append(
            TenantAdmin(
                domain=domain,
                user=_optional_text(entry, "user", where, default="admin"),
                password=_password(entry, where),
            )
        )
    return replace(admin, tenants=tuple(accounts))


def _log_format(value: object) -> str:
    if value not in ("text", "json"):
        raise ValueError(f'expected "text" or "json", got {shown_value(value)}')
    return str(value)


def _names(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"expected a list of names, got {shown_value(value)}")
    return tuple(dict.fromkeys(item.strip().lower() for item in value))


def _names_from_env(text: str) -> object:
    return [name.strip() for name in text.split(",") if name.strip()]


def _flag_from_env(text: str) -> object:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    return text


def _optional_string(value: object) -> str:
    """A string that may be empty (empty means "the built-in choice")."""
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type_name(value)}")
    return value


def _ws_url(value: object) -> str:
    url = _optional_string(value)
    if url and not url.startswith(("ws://", "wss://")):
        raise ValueError(f"expected a ws:// or wss:// URL, got {shown_value(url)}")
    return url


def _http_url(value: object) -> str:
    url = _optional_string(value)
    if url and (not url.startswith(("http://", "https://")) or any(c in url for c in "?# ")):
        raise ValueError(f"expected an http:// or https:// base URL, got {shown_value(url)}")
    return url.rstrip("/")


def _database_url(value: object) -> str:
    url = _optional_string(value)
    if url and not url.startswith(("sqlite://", "postgres://", "postgresql://")):
        raise ValueError("expected a sqlite:// or postgres:// URL")
    return url


def _port(value: object) -> int:
    port = _count(value)
    if port > 65535:
        raise ValueError(f"expected a port number 0..65535, got {port}")
    return port


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"expected a number, got {shown_value(value)}")
    return float(value)


def _duration(value: object) -> float:
    if not isinstance(value, str | int | float):
        raise ValueError(f'expected a duration like "30s", got {shown_value(value)}')
    return parse_duration(value)


def _size(value: object) -> int:
    if not isinstance(value, str | int):
        raise ValueError(f'expected a size like "256K", got {shown_value(value)}')
    return parse_size(value)


def _positive(parse: Callable[[object], _Number]) -> Callable[[object], _Number]:
    """``parse``, additionally rejecting zero (and below) for values that divide or time out."""

    def parse_positive(value: object) -> _Number:
        result = parse(value)
        if result <= 0:
            raise ValueError(f"must be greater than 0, got {shown_value(value)}")
        return result

    return parse_positive


def _integer_from_env(text: str) -> object:
    """An environment string as an integer if it is one; otherwise left for the parser to reject."""
    try:
        return int(text.strip())
    except ValueError:
        return text


def _number_from_env(text: str) -> object:
    try:
        return float(text.strip())
    except ValueError:
        return text


@dataclass(frozen=True, slots=True)
class _Option:
    """How to check one key's TOML value, and how to read it from an environment string."""

    parse: Callable[[object], object]
    from_env: Callable[[str], object] = str


_TEXT = _Option(_text)
_PORT = _Option(_port, _integer_from_env)
_COUNT = _Option(_count, _integer_from_env)
_POSITIVE_COUNT = _Option(_positive(_count), _integer_from_env)
_POSITIVE_RATE = _Option(_positive(_number), _number_from_env)
_DURATION = _Option(_duration)
_POSITIVE_DURATION = _Option(_positive(_duration))
_SIZE = _Option(_size)
_FLAG = _Option(_flag, _flag_from_env)
_NAMES = _Option(
    lambda value: _names(value), lambda text: [n.strip() for n in text.split(",") if n.strip()]
)
_POSITIVE_SIZE = _Option(_positive(_size))

_SECTIONS: dict[str, dict[str, _Option]] = {
    "server": {
        "host": _TEXT,
        "port": _PORT,
        "data_dir": _Option(_path),
        "node": _TEXT,
        "dns": _Option(_optional_string),
        "log_format": _Option(_log_format),
    },
    "login": {
        "challenge_ttl": _POSITIVE_DURATION,
        "timeout": _POSITIVE_DURATION,
        "throttle_failures": _POSITIVE_COUNT,
        "throttle_window": _POSITIVE_DURATION,
        "throttle_delay": _POSITIVE_DURATION,
        "throttle_max_delay": _POSITIVE_DURATION,
        "throttle_account_failures": _POSITIVE_COUNT,
        "throttle_address_failures": _POSITIVE_COUNT,
        "throttle_keys": _POSITIVE_COUNT,
        "default_domain": _TEXT,
    },
    "limits": {
        "max_frame": _POSITIVE_SIZE,
        "max_message": _POSITIVE_SIZE,
        "max_bad_messages": _POSITIVE_COUNT,
        "rate": _POSITIVE_RATE,
        "burst": _POSITIVE_COUNT,
        "rate_close_after": _POSITIVE_COUNT,
        "idle_timeout": _POSITIVE_DURATION,
        "send_queue": _POSITIVE_COUNT,
        "compression": _FLAG,
    },
    "signaling": {
        "ring_timeout": _POSITIVE_DURATION,
        "typing_ttl": _POSITIVE_DURATION,
        "resume_grace": _DURATION,
        "hold_messages": _COUNT,
        "hold_bytes": _SIZE,
        "max_ids": _POSITIVE_COUNT,
        "sender_ids": _COUNT,
        "max_calls": _POSITIVE_COUNT,
        "transcript_messages": _COUNT,
        "transcript_bytes": _SIZE,
    },
    "messages": {
        "enabled": _FLAG,
        "url": _Option(_ws_url),
        "password": _Option(_optional_string),
        "database": _Option(_database_url),
        "batch_max": _POSITIVE_COUNT,
        "reconnect_min": _POSITIVE_DURATION,
        "reconnect_max": _POSITIVE_DURATION,
        "keepalive": _POSITIVE_DURATION,
        "request_timeout": _POSITIVE_DURATION,
        "idempotency_ttl": _POSITIVE_DURATION,
    },
    "admin": {"user": _TEXT, "password": _Option(_optional_string), "metrics_login": _FLAG},
    "support": {
        "visitor_ttl": _POSITIVE_DURATION,
        "visitors_per_hour": _POSITIVE_COUNT,
        "idle_warn": _POSITIVE_DURATION,
        "idle_close": _POSITIVE_DURATION,
        "wait_timeout": _POSITIVE_DURATION,
    },
    "webhooks": {
        "url": _Option(_http_url),
        "secret": _Option(_optional_string),
        "timeout": _POSITIVE_DURATION,
        "attempts": _POSITIVE_COUNT,
        "backoff_min": _POSITIVE_DURATION,
        "backoff_max": _POSITIVE_DURATION,
        "queue": _POSITIVE_COUNT,
    },
    "trace": {
        "flags": _NAMES,
        "buffer": _POSITIVE_COUNT,
        "file": _Option(_optional_string),
        "file_max": _POSITIVE_SIZE,
        "file_count": _POSITIVE_COUNT,
    },
    "files": {
        "dir": _Option(_optional_string),
        "url": _Option(_http_url),
        "max_size": _POSITIVE_SIZE,
        "temp_ttl": _POSITIVE_DURATION,
        "quota": _POSITIVE_SIZE,
        "gc_interval": _POSITIVE_DURATION,
    },
}
_TOP_LEVEL = (*_SECTIONS, "tenants")
_TENANT_KEYS = ("demo", "users", "apps", "queues", "emoticons")
_USER_KEYS = ("dn", "num", "password", "licences", "max_chats")
_QUEUE_KEYS = ("dn", "agents")
_APP_KEYS = ("dn", "password", "act_for", "apis", "num", "licences")


# --- environment --------------------------------------------------------------------------


def _env_overrides(env: Mapping[str, str]) -> Table:
    """``SWITCHBOARD_<SECTION>_<KEY>`` variables as a TOML-shaped override table.

    Variables whose prefix is not one of the plain sections belong to someone else (the test
    suite, deployment scripts) and are ignored; a known section with an unknown key is a typo
    and an error. Values are checked here already so the error can name the variable.
    """
    overrides: dict[str, Table] = {}
    for name in sorted(env):
        target = _env_target(name)
        if target is None:
            continue
        section, key = target
        where = _key(section, key)
        option = _SECTIONS[section].get(key)
        if option is None:
            raise ConfigError(where, f"unknown key (from environment variable {name})")
        value = option.from_env(env[name])
        try:
            option.parse(value)
        except ValueError as exc:
            raise ConfigError(where, f"{exc} (from environment variable {name})") from None
        overrides.setdefault(section, {})[key] = value
    return dict(overrides)


def _env_target(name: str) -> tuple[str, str] | None:
    """``(section, key)`` for a variable addressed to one of the overridable sections."""
    if not name.startswith(ENV_PREFIX):
        return None
    rest = name[len(ENV_PREFIX) :]
    for section in _SECTIONS:
        prefix = section.upper() + "_"
        if rest.startswith(prefix):
            return section, rest[len(prefix) :].lower()
    return None


# --- building the typed config ------------------------------------------------------------


def _build(tree: Table) -> Config:
    _reject_unknown(tree, _TOP_LEVEL, "")
    config = Config(
        server=ServerConfig(**_section_values(tree, "server")),
        login=LoginConfig(**_section_values(tree, "login")),
        limits=LimitsConfig(**_section_values(tree, "limits")),
        signaling=SignalingConfig(**_section_values(tree, "signaling")),
        messages=MessagesConfig(**_section_values(tree, "messages")),
        files=FilesConfig(**_section_values(tree, "files")),
        trace=TraceConfig(**_section_values(tree, "trace")),
        admin=_admin(tree),
        webhooks=WebhooksConfig(**_section_values(tree, "webhooks")),
        support=SupportConfig(**_section_values(tree, "support")),
        tenants=_tenants(tree.get("tenants", {})),
    )
    _check_default_domain(config)
    _check_throttle(config.login)
    _check_messages(config)
    if config.webhooks.url and not config.webhooks.secret:
        raise ConfigError("webhooks.secret", "required when webhooks.url is set")
    return config


def _section_values(tree: Table, section: str) -> dict[str, Any]:
    """The checked values of one plain section; keys absent here keep the dataclass default."""
    table = _table(tree.get(section, {}), section)
    options = _SECTIONS[section]
    _reject_unknown(table, options, section)
    values: dict[str, Any] = {}
    for key, raw in table.items():
        try:
            values[key] = options[key].parse(raw)
        except ValueError as exc:
            raise ConfigError(_key(section, key), str(exc)) from None
    return values


def _check_default_domain(config: Config) -> None:
    """The short login form needs a tenant to log into, so it must name a configured one."""
    domains = [tenant.domain for tenant in config.tenants]
    default = config.login.default_domain
    if domains and default not in domains:
        known = ", ".join(shown_value(domain) for domain in domains)
        raise ConfigError(
            "login.default_domain", f"{shown_value(default)} is not a configured tenant ({known})"
        )


def _check_throttle(login: LoginConfig) -> None:
    """A pair's back-off runs from ``throttle_delay`` up to ``throttle_max_delay``, and a
    lock must end before its failures are forgotten (``throttle_window``)."""
    if login.throttle_max_delay < login.throttle_delay:
        raise ConfigError(
            "login.throttle_max_delay",
            f"{login.throttle_max_delay:g}s is shorter than login.throttle_delay "
            f"({login.throttle_delay:g}s)",
        )
    if login.throttle_max_delay > login.throttle_window:
        raise ConfigError(
            "login.throttle_max_delay",
            f"{login.throttle_max_delay:g}s is longer than login.throttle_window "
            f"({login.throttle_window:g}s): a lock must end before its failures are forgotten",
        )


def _check_messages(config: Config) -> None:
    """A hub reaching a service in another process must share its secret; a random one
    only works when both live in this process."""
    messages = config.messages
    if messages.enabled and messages.url and not messages.password:
        raise ConfigError("messages.password", "required when messages.url is set")


def _tenants(value: object) -> tuple[TenantConfig, ...]:
    table = _table(value, "tenants")
    return tuple(_tenant(domain, spec) for domain, spec in table.items())


def _tenant(domain: str, value: object) -> TenantConfig:
    where = _key("tenants", domain)
    _check_domain(domain, where)
    table = _table(value, where)
    _reject_unknown(table, _TENANT_KEYS, where)
    demo = table.get("demo", False)
    if not isinstance(demo, bool):
        raise ConfigError(f"{where}.demo", f"expected true or false, got {shown_value(demo)}")
    users = _users(table.get("users", {}), f"{where}.users")
    apps = _apps(table.get("apps", {}), f"{where}.apps", users)
    queues = _queues(table.get("queues", {}), f"{where}.queues", users, apps)
    emoticons = _emoticons(table.get("emoticons", {}), f"{where}.emoticons")
    return TenantConfig(
        domain=domain, users=users, apps=apps, queues=queues, demo=demo, emoticons=emoticons
    )


def _emoticons(value: object, where: str) -> tuple[tuple[str, str], ...]:
    """Shortcodes (letters, digits, ``_``, ``-``, ``+``) mapped to image paths on this
    server: the web client shows ``:code:`` as that image. Paths only, so the pages'
    Content-Security-Policy (images from this server) holds."""
    emoticons = []
    for code, path in _table(value, where).items():
        if not _SHORTCODE.fullmatch(code):
            raise ConfigError(_key(where, code), "a shortcode is 1-32 of a-z 0-9 _ - +")
        if not isinstance(path, str) or not _IMAGE_PATH.fullmatch(path) or ".." in path:
            raise ConfigError(
                _key(where, code),
                f"expected a path on this server like /static/x.png, got {shown_value(path)}",
            )
        emoticons.append((code, path))
    return tuple(emoticons)


def _users(value: object, where: str) -> tuple[UserConfig, ...]:
    """The users of a tenant; a number may belong to one user only, or dialling is ambiguous."""
    users: list[UserConfig] = []
    owners: dict[str, str] = {}
    for sip, spec in _table(value, where).items():
        user = _user(sip, spec, _key(where, sip))
        if user.num in owners:
            raise ConfigError(
                _key(where, sip, "num"),
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


def check_domain(domain: str, where: str) -> None:
    """A tenant's domain as the config accepts it, else ``ConfigError``."""
    _check_domain(domain, where)


def _user(sip: str, value: object, where: str) -> UserConfig:
    _check_name(sip, where)
    table = _table(value, where)
    _reject_unknown(table, _USER_KEYS, where)
    dn = _optional_text(table, "dn", where, default=sip)
    return UserConfig(
        sip=sip,
        dn=dn,
        num=_dial_number(table, where),
        password=_password(table, where),
        licences=frozenset(_strings(table, "licences", where)),
        max_chats=_max_chats(table, where),
    )


def _dial_number(table: Table, where: str) -> str:
    """A user's or App object's number: digits only, empty for none."""
    num = _optional_text(table, "num", where, default="")
    if not _DIGITS.fullmatch(num):
        raise ConfigError(f"{where}.num", f"expected digits only, got {shown_value(num)}")
    return num


def _max_chats(table: Table, where: str) -> int:
    value = table.get("max_chats", 3)
    if type(value) is not int or not 0 <= value <= 1000:
        raise ConfigError(f"{where}.max_chats", f"expected 0 to 1000, got {shown_value(value)}")
    return value


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
    table = _table(value, where)
    _reject_unknown(table, _QUEUE_KEYS, where)
    agents = _users_named(table, "agents", where, sips)
    return QueueConfig(
        sip=sip,
        dn=_optional_text(table, "dn", where, default=sip),
        agents=tuple(dict.fromkeys(agents)),
    )


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
                _key(where, app.name, "num"),
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
    for name, spec in _table(value, where).items():
        at = _key(where, name)
        if name in taken:
            raise ConfigError(at, clash)
        entries.append(make(name, spec, at))
    return tuple(entries)


def _users_named(
    table: Table, key: str, where: str, sips: set[str], *, anyone: bool = False
) -> list[str]:
    """A list of user sips of the tenant (``"*"`` too when ``anyone``)."""
    names = _strings(table, key, where)
    for sip in names:
        if sip not in sips and not (anyone and sip == "*"):
            raise ConfigError(f"{where}.{key}", f"no user {shown_value(sip)} in this tenant")
    return names


def _app(name: str, value: object, where: str, sips: set[str]) -> AppConfig:
    _check_name(name, where)
    table = _table(value, where)
    _reject_unknown(table, _APP_KEYS, where)
    act_for = _users_named(table, "act_for", where, sips, anyone=True)
    return AppConfig(
        name=name,
        password=_password(table, where),
        dn=_optional_text(table, "dn", where, default=""),
        act_for=frozenset(act_for),
        apis=tuple(_strings(table, "apis", where)),
        num=_dial_number(table, where),
        licences=frozenset(_strings(table, "licences", where)),
    )


# --- small checks -------------------------------------------------------------------------


def _password(table: Table, where: str) -> str:
    """The password of a user or App; described by type only, never by value, on error."""
    where = f"{where}.password"
    if "password" not in table:
        raise ConfigError(where, "required")
    password = table["password"]
    if not isinstance(password, str):
        raise ConfigError(where, f"expected a string, got {type_name(password)}")
    if not password:
        raise ConfigError(where, "must not be empty")
    return password


def _optional_text(table: Table, key: str, where: str, *, default: str) -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(_key(where, key), f"expected a string, got {shown_value(value)}")
    return value


def _strings(table: Table, key: str, where: str) -> list[str]:
    """A list of non-empty strings (licences, act_for, apis); absent means empty."""
    value = table.get(key, [])
    where = _key(where, key)
    if not isinstance(value, list):
        raise ConfigError(where, f"expected a list of strings, got {shown_value(value)}")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(where, f"expected non-empty strings, got {shown_value(item)}")
    return value


def _check_domain(domain: str, where: str) -> None:
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


def _table(value: object, where: str) -> Table:
    """``value`` as a table; described by type only, because it may hold a password."""
    if not isinstance(value, dict):
        raise ConfigError(where, f"expected a table, got {type_name(value)}")
    return value


def _reject_unknown(table: Table, allowed: Iterable[str], where: str) -> None:
    """Unknown keys are typos until proven otherwise; suggest the closest known key."""
    known = list(allowed)
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {shown_value(close[0])}?)" if close else ""
            raise ConfigError(_key(where, key), f"unknown key{hint}")


def _key(where: str, *parts: str) -> str:
    """``where`` (already dotted) extended by raw key ``parts``, quoted unless bare keys.

    ``_key("tenants", "example.com")`` is ``tenants."example.com"``, as one would write it
    in the file, so the message can be searched for.
    """
    quoted = [part if _BARE_KEY.fullmatch(part) else json.dumps(part) for part in parts]
    return ".".join([where, *quoted] if where else quoted)
