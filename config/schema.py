"""The option table, read off the typed sections: which sections are plain (options only,
overridable from the environment), which keys each has, and how each is read.

Nothing here lists an option: ``Config``'s fields name the sections and each section
dataclass's annotated fields (``values``) are its options. A field annotated without an
``Option`` (``AdminConfig.tenants``) is not a plain option; the loader reads it itself.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from .sections import Config
from .values import Option

__all__ = ["SECTIONS", "options_of"]


def options_of(section: type[Any]) -> dict[str, Option]:
    """The plain options of a section dataclass, in declaration order."""
    hints = typing.get_type_hints(section, include_extras=True)
    options = {}
    for field in dataclasses.fields(section):
        option = next(
            (
                meta
                for meta in getattr(hints[field.name], "__metadata__", ())
                if isinstance(meta, Option)
            ),
            None,
        )
        if option is not None:
            options[field.name] = option
    return options


def _sections() -> dict[str, dict[str, Option]]:
    hints = typing.get_type_hints(Config)
    return {
        field.name: options_of(hints[field.name])
        for field in dataclasses.fields(Config)
        if dataclasses.is_dataclass(hints[field.name])
    }


SECTIONS: dict[str, dict[str, Option]] = _sections()
"""Every plain section (``[server]``, ``[login]`` …) and its options, by key."""
