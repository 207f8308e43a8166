"""The layers a configuration is made of, as plain TOML-shaped tables: the packaged
defaults, the operator's file over them, the environment over both.

The layers are merged first and validated once at the end (``loader``), so a value is
checked the same way wherever it came from. Only the environment layer is checked early
as well, because only there can the error name the variable that caused it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path

from .errors import ConfigError
from .schema import SECTIONS
from .tables import Table, key

__all__ = ["ENV_PREFIX", "deep_merge", "env_overrides", "merge_file", "read_defaults", "read_file"]

ENV_PREFIX = "SWITCHBOARD_"


def read_defaults() -> Table:
    """The packaged ``default.toml``, found as package data so it works from a wheel too."""
    resource = files("config") / "default.toml"
    return _parse_toml(resource.read_bytes(), "config/default.toml")


def read_file(path: Path) -> Table:
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


def merge_file(defaults: Table, user: Table) -> Table:
    """Deep-merge the user's file over the defaults, but let its ``tenants`` replace them.

    Merging tenants key by key would keep the demo tenant (and its public passwords) alive in
    any deployment that merely adds its own tenant, which is exactly what must not happen.
    """
    merged = deep_merge(
        defaults, {name: value for name, value in user.items() if name != "tenants"}
    )
    if "tenants" in user:
        merged["tenants"] = user["tenants"]
    return merged


def deep_merge(base: Table, override: Table) -> Table:
    """``override`` over ``base``: tables merge recursively, any other value replaces."""
    merged = dict(base)
    for name, value in override.items():
        current = merged.get(name)
        if isinstance(value, dict) and isinstance(current, dict):
            merged[name] = deep_merge(current, value)
        else:
            merged[name] = value
    return merged


def env_overrides(env: Mapping[str, str]) -> Table:
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
        section, option_name = target
        where = key(section, option_name)
        option = SECTIONS[section].get(option_name)
        if option is None:
            raise ConfigError(where, f"unknown key (from environment variable {name})")
        value = option.from_env(env[name])
        try:
            option.parse(value)
        except ValueError as exc:
            raise ConfigError(where, f"{exc} (from environment variable {name})") from None
        overrides.setdefault(section, {})[option_name] = value
    return dict(overrides)


def _env_target(name: str) -> tuple[str, str] | None:
    """``(section, key)`` for a variable addressed to one of the overridable sections."""
    if not name.startswith(ENV_PREFIX):
        return None
    rest = name[len(ENV_PREFIX) :]
    for section in SECTIONS:
        prefix = section.upper() + "_"
        if rest.startswith(prefix):
            return section, rest[len(prefix) :].lower()
    return None
