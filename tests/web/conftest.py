"""Browser tests: Playwright's Python API driving the system Chromium (Debian's package,
``/usr/bin/chromium``), headless, against a real server on loopback.

Without Chromium the tests skip, unless ``SWITCHBOARD_REQUIRE_SERVICES=1`` (CI), where they
fail: CI installs it. Screenshots go to ``tests/web/artifacts/`` (ignored by git); the
current ones live in ``docs/screenshots/``: the tests that take them refresh those copies
with ``SWITCHBOARD_SCREENSHOTS=1`` (``keep_screenshot``; a few older ones were copied from
the artifacts by hand).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

ARTIFACTS = Path(__file__).parent / "artifacts"
SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = _chromium()
    if executable is None:
        if os.environ.get("SWITCHBOARD_REQUIRE_SERVICES") == "1":
            pytest.fail("Chromium is required (apt-get install chromium)")
        pytest.skip("no Chromium on this machine")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            await launched.close()


def screenshot_path(name: str) -> str:
    ARTIFACTS.mkdir(exist_ok=True)
    return str(ARTIFACTS / f"{name}.png")


def keep_screenshot(name: str, as_name: str | None = None) -> None:
    """With ``SWITCHBOARD_SCREENSHOTS=1``, copy the artifact ``name`` to ``docs/screenshots``
    (as ``as_name``, default the same name); a plain test run leaves the tracked files
    alone."""
    if os.environ.get("SWITCHBOARD_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot_path(name), SCREENSHOTS / f"{as_name or name}.png")
