"""How one option's value is read: the parsers of plain sections' values, and the types
the section dataclasses (``sections``) annotate their fields with.

Each annotated type pairs the Python type with an ``Option``: how to check a TOML value
(``parse``) and how to turn an environment string into one first (``from_env``). The
option table of every section is read off those annotations (``schema``), so a new
option is one line in ``sections.py`` and its documented default in ``default.toml``.
A parser raises ``ValueError`` with a message that never shows a password.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, TypeVar

from .errors import shown_value, type_name
from .units import parse_duration, parse_size

__all__ = [
    "Count",
    "DatabaseUrl",
    "Duration",
    "Flag",
    "HttpUrl",
    "LogFormat",
    "Names",
    "Option",
    "OptionalText",
    "PathText",
    "Port",
    "PositiveCount",
    "PositiveDuration",
    "PositiveRate",
    "PositiveSize",
    "RedisUrl",
    "Size",
    "Text",
    "WsUrl",
]

_Number = TypeVar("_Number", int, float)


@dataclass(frozen=True, slots=True)
class Option:
    """How to check one key's TOML value, and how to read it from an environment string."""

    parse: Callable[[object], object]
    from_env: Callable[[str], object] = str


# --- parsers ------------------------------------------------------------------------------


def text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {shown_value(value)}")
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def path(value: object) -> Path:
    return Path(text(value))


def count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {shown_value(value)}")
    if value < 0:
        raise ValueError(f"must not be negative, got {value}")
    return value


def flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {shown_value(value)}")
    return value


def log_format(value: object) -> str:
    if value not in ("text", "json"):
        raise ValueError(f'expected "text" or "json", got {shown_value(value)}')
    return str(value)


def names(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"expected a list of names, got {shown_value(value)}")
    return tuple(dict.fromkeys(item.strip().lower() for item in value))


def optional_string(value: object) -> str:
    """A string that may be empty (empty means "the built-in choice")."""
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type_name(value)}")
    return value


def ws_url(value: object) -> str:
    url = optional_string(value)
    if url and not url.startswith(("ws://", "wss://")):
        raise ValueError(f"expected a ws:// or wss:// URL, got {shown_value(url)}")
    return url


def http_url(value: object) -> str:
    url = optional_string(value)
    if url and (not url.startswith(("http://", "https://")) or any(c in url for c in "?# ")):
        raise ValueError(f"expected an http:// or https:// base URL, got {shown_value(url)}")
    return url.rstrip("/")


def redis_url(value: object) -> str:
    url = optional_string(value)
    if url and not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("expected a redis://, rediss:// or unix:// URL")
    return url


def database_url(value: object) -> str:
    url = optional_string(value)
    if url and not url.startswith(("sqlite://", "postgres://", "postgresql://")):
        raise ValueError("expected a sqlite:// or postgres:// URL")
    return url


def port(value: object) -> int:
    number = count(value)
    if number > 65535:
        raise ValueError(f"expected a port number 0..65535, got {number}")
    return number


def number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"expected a number, got {shown_value(value)}")
    return float(value)


def duration(value: object) -> float:
    if not isinstance(value, str | int | float):
        raise ValueError(f'expected a duration like "30s", got {shown_value(value)}')
    return parse_duration(value)


def size(value: object) -> int:
    if not isinstance(value, str | int):
        raise ValueError(f'expected a size like "256K", got {shown_value(value)}')
    return parse_size(value)


def positive(parse: Callable[[object], _Number]) -> Callable[[object], _Number]:
    """``parse``, additionally rejecting zero (and below) for values that divide or time out."""

    def parse_positive(value: object) -> _Number:
        result = parse(value)
        if result <= 0:
            raise ValueError(f"must be greater than 0, got {shown_value(value)}")
        return result

    return parse_positive


# --- reading environment strings ---------------------------------------------------------


def integer_from_env(text: str) -> object:
    """An environment string as an integer if it is one; otherwise left for the parser to reject."""
    try:
        return int(text.strip())
    except ValueError:
        return text


def number_from_env(text: str) -> object:
    try:
        return float(text.strip())
    except ValueError:
        return text


def flag_from_env(text: str) -> object:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    return text


def names_from_env(text: str) -> object:
    """Comma-separated names, blanks dropped."""
    return [name.strip() for name in text.split(",") if name.strip()]


# --- the types options are declared with ----------------------------------------------------

Text = Annotated[str, Option(text)]
OptionalText = Annotated[str, Option(optional_string)]
PathText = Annotated[Path, Option(path)]
LogFormat = Annotated[str, Option(log_format)]
WsUrl = Annotated[str, Option(ws_url)]
HttpUrl = Annotated[str, Option(http_url)]
DatabaseUrl = Annotated[str, Option(database_url)]
RedisUrl = Annotated[str, Option(redis_url)]
Port = Annotated[int, Option(port, integer_from_env)]
Count = Annotated[int, Option(count, integer_from_env)]
PositiveCount = Annotated[int, Option(positive(count), integer_from_env)]
PositiveRate = Annotated[float, Option(positive(number), number_from_env)]
Duration = Annotated[float, Option(duration)]
PositiveDuration = Annotated[float, Option(positive(duration))]
Size = Annotated[int, Option(size)]
PositiveSize = Annotated[int, Option(positive(size))]
Flag = Annotated[bool, Option(flag, flag_from_env)]
Names = Annotated[tuple[str, ...], Option(names, names_from_env)]
