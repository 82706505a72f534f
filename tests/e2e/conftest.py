"""Browser tests: a real JupyterLab in headless Chromium (Debian's), driven by Playwright.

Chromium comes from the system (`make test` installs Debian's `chromium` when it is missing);
Playwright only provides the driver: its own browser downloads are never used. Screenshots of
every state go to test-artifacts/e2e/.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.lab import ROOT

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
# Deadlines for what the page must show; generous for a 2-core CI machine.
UI_TIMEOUT_MS = 30_000


def _chromium() -> str | None:
    found = os.environ.get("GITSYNC_E2E_CHROMIUM") or next(
        (path for path in CHROMIUM_CANDIDATES if Path(path).exists()), None
    )
    return found or shutil.which("chromium")


def _unavailable(reason: str) -> None:
    """Skip on a developer's machine without a browser; fail in CI, where `make test` installs
    it, so a missing browser never turns into silently skipped tests."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def jp_asyncio_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """pytest-jupyter's autouse loop, made private here: Playwright's sync API keeps its own
    loop current in this thread, which pytest-jupyter would otherwise take and close."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture
def jp_server_cleanup() -> None:
    """Nothing to clean: browser tests run JupyterLab as a process, not in this one."""


@pytest.fixture
def playwright_driver() -> Iterator[object]:
    """Playwright's driver, for one test only: while it runs, its event loop counts as the
    running loop of this thread, which the rest of the suite (pytest-jupyter) must not see."""
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install playwright; `make test` does)")
    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def browser_context(
    playwright_driver: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[object]:
    """A fresh headless Chromium (its own user-data-dir) for one test."""
    from playwright.sync_api import Playwright

    assert isinstance(playwright_driver, Playwright)
    executable = _chromium()
    if executable is None:
        _unavailable("no chromium on this machine (`make test` installs Debian's chromium)")
    context = playwright_driver.chromium.launch_persistent_context(
        str(tmp_path_factory.mktemp("chromium-profile")),
        executable_path=executable,
        args=CHROMIUM_ARGS,
        headless=True,
        viewport={"width": 1280, "height": 720},
    )
    context.set_default_timeout(UI_TIMEOUT_MS)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(browser_context: object) -> object:
    from playwright.sync_api import BrowserContext

    assert isinstance(browser_context, BrowserContext)
    return browser_context.pages[0] if browser_context.pages else browser_context.new_page()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
