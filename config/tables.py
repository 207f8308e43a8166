"""Reading TOML-shaped tables: a value as a table, unknown keys refused with a
suggestion, and dotted key names as the file would spell them."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from typing import Any

from .errors import ConfigError, shown_value, type_name

__all__ = ["Table", "as_table", "key", "optional_text", "reject_unknown", "strings"]

Table = dict[str, Any]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def as_table(value: object, where: str) -> Table:
    """``value`` as a table; described by type only, because it may hold a password."""
    if not isinstance(value, dict):
        raise ConfigError(where, f"expected a table, got {type_name(value)}")
    return value


def reject_unknown(entries: Table, allowed: Iterable[str], where: str) -> None:
    """Unknown keys are typos until proven otherwise; suggest the closest known key."""
    known = list(allowed)
    for name in entries:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {shown_value(close[0])}?)" if close else ""
            raise ConfigError(key(where, name), f"unknown key{hint}")


def key(where: str, *parts: str) -> str:
    """``where`` (already dotted) extended by raw key ``parts``, quoted unless bare keys.

    ``key("tenants", "example.com")`` is ``tenants."example.com"``, as one would write it
    in the file, so the message can be searched for.
    """
    quoted = [part if _BARE_KEY.fullmatch(part) else json.dumps(part) for part in parts]
    return ".".join([where, *quoted] if where else quoted)


def optional_text(entries: Table, name: str, where: str, *, default: str) -> str:
    value = entries.get(name, default)
    if not isinstance(value, str):
        raise ConfigError(key(where, name), f"expected a string, got {shown_value(value)}")
    return value


def strings(entries: Table, name: str, where: str) -> list[str]:
    """A list of non-empty strings (licences, act_for, apis); absent means empty."""
    value = entries.get(name, [])
    where = key(where, name)
    if not isinstance(value, list):
        raise ConfigError(where, f"expected a list of strings, got {shown_value(value)}")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(where, f"expected non-empty strings, got {shown_value(item)}")
    return value
