"""The one exception the configuration package raises, and how it shows offending values.

Every problem becomes a ``ConfigError`` whose message starts with *where* it is: the dotted
TOML key (``limits.max_frame``) or the file name. Operators fix configuration by reading that
message, so it has to point at the line to edit without them reading a traceback.
"""

from __future__ import annotations

import json

__all__ = ["ConfigError", "shown_value", "type_name"]

_MAX_SHOWN = 60


class ConfigError(Exception):
    """A configuration value, file or environment variable that cannot be used.

    ``where`` is the dotted key (or file name) and ``problem`` the human explanation; the
    message is ``"<where>: <problem>"``. Messages never contain a password: the loader only
    ever describes password fields by their type, never by their value.
    """

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


def shown_value(value: object) -> str:
    """A short, TOML-looking rendering of a (non-secret) value for an error message.

    Strings are quoted so that ``"30"`` and ``30`` read differently, booleans are spelt the
    TOML way, containers are named rather than dumped, and long values are cut short.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= _MAX_SHOWN else value[: _MAX_SHOWN - 3] + "..."
        return json.dumps(text, ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    return type_name(value)


def type_name(value: object) -> str:
    """The TOML name of a value's type ("a string", "an array"), for when the value is secret."""
    names: list[tuple[type | tuple[type, ...], str]] = [
        (bool, "a boolean"),
        (str, "a string"),
        (int, "an integer"),
        (float, "a float"),
        ((list, tuple), "an array"),
        (dict, "a table"),
    ]
    for kind, name in names:
        if isinstance(value, kind):
            return name
    return "a date or time" if value is not None else "nothing"
