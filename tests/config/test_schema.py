"""The schema lives once: the option table is read off the section dataclasses, and the
packaged default.toml documents exactly those options with exactly their defaults."""

from __future__ import annotations

import dataclasses
import tomllib
from importlib.resources import files
from typing import Annotated

import pytest

from config import Config, load_config
from config.schema import SECTIONS, options_of
from config.sections import AdminConfig
from config.values import Option, count, integer_from_env

DEFAULTS = tomllib.loads((files("config") / "default.toml").read_text(encoding="utf-8"))
NOT_OPTIONS = {("admin", "tenants")}
"""Fields of a plain section that the loader reads itself, as tables."""


def test_every_section_of_config_but_tenants_is_a_plain_section() -> None:
    names = [field.name for field in dataclasses.fields(Config)]
    assert list(SECTIONS) == [name for name in names if name != "tenants"]


def test_default_toml_has_exactly_the_sections_and_options_of_the_dataclasses() -> None:
    assert set(DEFAULTS) == {*SECTIONS, "tenants"}
    for section, options in SECTIONS.items():
        assert set(DEFAULTS[section]) == set(options), section


def test_every_field_of_a_plain_section_is_an_option() -> None:
    for section, options in SECTIONS.items():
        section_class = type(getattr(Config(), section))
        fields = {field.name for field in dataclasses.fields(section_class)}
        assert fields - set(options) == {name for s, name in NOT_OPTIONS if s == section}


@pytest.mark.parametrize("section", list(SECTIONS))
def test_default_toml_values_are_the_dataclass_defaults(section: str) -> None:
    loaded = getattr(load_config(None, env={}), section)
    assert loaded == type(loaded)()


def test_an_option_is_read_off_its_annotation() -> None:
    @dataclasses.dataclass(frozen=True)
    class Example:
        plain: int = 1
        counted: Annotated[int, Option(count, integer_from_env)] = 2

    options = options_of(Example)
    assert list(options) == ["counted"]
    assert options["counted"].from_env(" 7 ") == 7
    assert options_of(AdminConfig).keys() == {"user", "password", "metrics_login"}
