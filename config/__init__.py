"""Switchboard's configuration: packaged defaults, an optional TOML file, then the environment.

``load_config()`` reads ``default.toml`` (shipped in this package, every option documented),
deep-merges the operator's TOML file over it, applies ``SWITCHBOARD_<SECTION>_<KEY>``
environment variables, and returns a frozen, typed ``Config``. A file with a ``[tenants]``
table replaces the demo tenant wholesale, so public demo passwords never survive into a real
deployment by accident.

Anything wrong -- a typo'd key, a size like ``"256Q"``, a user without a password -- raises
``ConfigError`` with the dotted key first (``limits.max_frame: ...``). Passwords never appear
in error messages or in a ``repr``.
"""

from __future__ import annotations

from .errors import ConfigError
from .layers import ENV_PREFIX
from .loader import check_cluster, load_config
from .sections import (
    AdminConfig,
    AppConfig,
    ClusterConfig,
    Config,
    FilesConfig,
    LimitsConfig,
    LoginConfig,
    MessagesConfig,
    PresenceConfig,
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
from .tenants import app_from_table, check_domain, queue_from_table, user_from_table
from .units import parse_duration, parse_size

__all__ = [
    "ENV_PREFIX",
    "AdminConfig",
    "AppConfig",
    "ClusterConfig",
    "Config",
    "ConfigError",
    "FilesConfig",
    "LimitsConfig",
    "LoginConfig",
    "MessagesConfig",
    "PresenceConfig",
    "QueueConfig",
    "ServerConfig",
    "SignalingConfig",
    "SupportConfig",
    "TenantAdmin",
    "TenantConfig",
    "TraceConfig",
    "UserConfig",
    "WebhooksConfig",
    "app_from_table",
    "check_cluster",
    "check_domain",
    "load_config",
    "parse_duration",
    "parse_size",
    "queue_from_table",
    "user_from_table",
]
