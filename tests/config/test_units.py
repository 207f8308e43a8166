"""Durations and sizes as written in config files and environment variables."""

from __future__ import annotations

import pytest

from config import parse_duration, parse_size


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (0, 0.0),
        (30, 30.0),
        (1.5, 1.5),
        ("30", 30.0),
        ("1.5", 1.5),
        ("500ms", 0.5),
        ("30s", 30.0),
        ("1.5s", 1.5),
        (".5s", 0.5),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("0s", 0.0),
        (" 30 s ", 30.0),
        ("30S", 30.0),
    ],
)
def test_parse_duration(value: str | int | float, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", 'expected a duration like "30s", got "abc"'),
        ("", 'expected a duration like "30s", got ""'),
        ("30x", 'expected a duration like "30s", got "30x"'),
        ("s", 'expected a duration like "30s", got "s"'),
        ("1.2.3s", 'expected a duration like "30s", got "1.2.3s"'),
        ("-5s", 'a duration must not be negative, got "-5s"'),
        (-1, "a duration must not be negative, got -1"),
        (-0.5, "a duration must not be negative, got -0.5"),
        (float("inf"), 'expected a duration like "30s", got inf'),
        (float("nan"), 'expected a duration like "30s", got nan'),
        (True, 'expected a duration like "30s", got true'),
    ],
)
def test_parse_duration_rejects(value: str | int | float, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(value)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (0, 0),
        (1024, 1024),
        ("1024", 1024),
        ("1024B", 1024),
        ("1024b", 1024),
        ("64k", 64 * 1024),
        ("256K", 256 * 1024),
        ("256KiB", 256 * 1024),
        ("256kib", 256 * 1024),
        ("10M", 10 * 1024**2),
        ("10MiB", 10 * 1024**2),
        ("1G", 1024**3),
        ("1GiB", 1024**3),
        (" 64 K ", 64 * 1024),
    ],
)
def test_parse_size(value: str | int, size: int) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", 'expected a size like "256K", got "abc"'),
        ("", 'expected a size like "256K", got ""'),
        ("1.5M", 'expected a size like "256K", got "1.5M"'),
        ("256KB", 'expected a size like "256K", got "256KB"'),
        ("10T", 'expected a size like "256K", got "10T"'),
        ("K", 'expected a size like "256K", got "K"'),
        ("-1K", 'a size must not be negative, got "-1K"'),
        (-1, "a size must not be negative, got -1"),
        (True, 'expected a size like "256K", got true'),
        (1.5, 'expected a size like "256K", got 1.5'),
    ],
)
def test_parse_size_rejects(value: str | int, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_size(value)
    assert str(caught.value) == message


def test_long_values_are_cut_short_in_messages() -> None:
    with pytest.raises(ValueError) as caught:
        parse_size("x" * 500)
    assert len(str(caught.value)) < 120
