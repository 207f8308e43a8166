"""Build a ``Config`` from the packaged defaults, an optional TOML file and the environment.

The layers (``layers``) are merged as plain TOML-shaped dicts first and validated once at
the end, here: each plain section by the option table read off its dataclass
(``schema``), the tenants by ``tenants``, then the checks that span options.

Validation is strict on purpose: unknown keys are errors (a typo must not silently fall back
to a default), and every error names the dotted key to fix. Passwords are only ever
described by their type, so no error message can leak one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from .errors import ConfigError, shown_value
from .layers import deep_merge, env_overrides, merge_file, read_defaults, read_file
from .schema import SECTIONS
from .sections import (
    AdminConfig,
    ClusterConfig,
    Config,
    FilesConfig,
    LimitsConfig,
    LoginConfig,
    MessagesConfig,
    PresenceConfig,
    ServerConfig,
    SignalingConfig,
    SupportConfig,
    TenantAdmin,
    TraceConfig,
    WebhooksConfig,
)
from .tables import Table, as_table, key, optional_text, reject_unknown
from .tenants import check_domain, password, tenants

__all__ = ["check_cluster", "load_config"]

_TOP_LEVEL = (*SECTIONS, "tenants")


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """The configuration from defaults, then ``path`` (if any), then ``env`` (default: os.environ).

    Raises ``ConfigError`` for anything that cannot be used; nothing is silently ignored
    except environment variables outside the plain sections.
    """
    tree = read_defaults()
    if path is not None:
        tree = merge_file(tree, read_file(Path(path)))
    tree = deep_merge(tree, env_overrides(os.environ if env is None else env))
    return _build(tree)


def _build(tree: Table) -> Config:
    reject_unknown(tree, _TOP_LEVEL, "")
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
        presence=PresenceConfig(**_section_values(tree, "presence")),
        cluster=ClusterConfig(**_section_values(tree, "cluster")),
        tenants=tenants(tree.get("tenants", {})),
    )
    _check_default_domain(config)
    _check_throttle(config.login)
    _check_messages(config)
    _check_tls(config.server)
    check_cluster(config.cluster)
    if config.webhooks.url and not config.webhooks.secret:
        raise ConfigError("webhooks.secret", "required when webhooks.url is set")
    return config


def check_cluster(cluster: ClusterConfig) -> None:
    """The checks across ``[cluster]``'s keys (also run on a ``Config`` built in code)."""
    if cluster.redis and not cluster.database:
        raise ConfigError(
            "cluster.database",
            "required when cluster.redis is set: the nodes keep their shared directory "
            "(the admin API's changes) in this PostgreSQL database",
        )
    if cluster.redis and cluster.database.startswith("sqlite:"):
        raise ConfigError(
            "cluster.database",
            "must be PostgreSQL (postgres://…): a SQLite file is one machine's, the nodes "
            "of a cluster share this database",
        )
    if cluster.heartbeat * 3 > cluster.lease:
        raise ConfigError(
            "cluster.heartbeat",
            "must be at most a third of cluster.lease (a node renews its lease several "
            "times before it runs out)",
        )


def _section_values(tree: Table, section: str) -> dict[str, Any]:
    """The checked values of one plain section; keys absent here keep the dataclass default."""
    table = as_table(tree.get(section, {}), section)
    options = SECTIONS[section]
    reject_unknown(table, options, section)
    values: dict[str, Any] = {}
    for name, raw in table.items():
        try:
            values[name] = options[name].parse(raw)
        except ValueError as exc:
            raise ConfigError(key(section, name), str(exc)) from None
    return values


def _admin(tree: Table) -> AdminConfig:
    """``[admin]`` with its optional ``[admin.tenants."<domain>"]`` tables."""
    table = dict(as_table(tree.get("admin", {}), "admin"))
    admins = as_table(table.pop("tenants", {}), "admin.tenants")
    admin = AdminConfig(**_section_values({"admin": table}, "admin"))
    accounts = []
    for domain, spec in admins.items():
        where = key("admin.tenants", domain)
        check_domain(domain, where)
        entry = as_table(spec, where)
        reject_unknown(entry, ("user", "password"), where)
        accounts.append(
            TenantAdmin(
                domain=domain,
                user=optional_text(entry, "user", where, default="admin"),
                password=password(entry, where),
            )
        )
    return replace(admin, tenants=tuple(accounts))


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


def _check_tls(server: ServerConfig) -> None:
    """TLS needs both halves, and a file that is missing should be named at start-up, not
    found by the first client's handshake."""
    given = {"tls_cert": server.tls_cert, "tls_key": server.tls_key}
    for name, other in (("tls_cert", "tls_key"), ("tls_key", "tls_cert")):
        if given[name] and not given[other]:
            raise ConfigError(f"server.{other}", f"required when server.{name} is set")
    for name, value in given.items():
        if value and not Path(value).is_file():
            raise ConfigError(f"server.{name}", f"no such file: {shown_value(value)}")


def _check_messages(config: Config) -> None:
    """A hub reaching a service in another process must share its secret; a random one
    only works when both live in this process. Replicas of the service share one
    PostgreSQL."""
    messages = config.messages
    if messages.enabled and messages.url and not messages.password:
        raise ConfigError("messages.password", "required when messages.url is set")
    if messages.replicas and not messages.database.startswith(("postgres://", "postgresql://")):
        raise ConfigError(
            "messages.replicas",
            "needs a postgres:// messages.database: replicas share one PostgreSQL "
            "(a SQLite file belongs to one process)",
        )
