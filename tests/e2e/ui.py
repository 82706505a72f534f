"""What the browser tests look at: the badge, its popover and dialogs, and screenshots."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import ARTIFACTS, UI_TIMEOUT_MS
from tests.e2e.lab import Lab

BADGE = "#jp-gitsync-badge .jp-gitsync-Badge"
POPOVER = ".jp-gitsync-Details"
DIALOG = ".jp-Dialog"

# Records every state and label the badge shows, with the time it was shown.
_RECORDER = """
() => {
  const item = document.querySelector('#jp-gitsync-badge');
  const seen = (window.__gitsyncBadge = []);
  const read = () => {
    const badge = item.querySelector('.jp-gitsync-Badge');
    const state = badge ? badge.dataset.state : null;
    const last = seen[seen.length - 1];
    if (!last || last.state !== state) {
      seen.push({ state, label: badge ? badge.textContent : null, at: performance.now() });
    }
  };
  read();
  new MutationObserver(read).observe(item, {
    subtree: true, attributes: true, childList: true, characterData: true
  });
}
"""


def open_lab(page: Page, lab: Lab) -> Locator:
    """Load JupyterLab and wait for the badge; returns it."""
    page.goto(lab.lab_url)
    badge = page.locator(BADGE)
    expect(badge).to_be_visible(timeout=UI_TIMEOUT_MS * 2)
    return badge


def record_badge(page: Page) -> None:
    page.evaluate(_RECORDER)


def badge_history(page: Page) -> list[dict[str, Any]]:
    return page.evaluate("() => window.__gitsyncBadge.slice()")  # type: ignore[no-any-return]


def expect_state(page: Page, state: str, timeout: float = UI_TIMEOUT_MS) -> Locator:
    badge = page.locator(BADGE)
    expect(badge).to_have_attribute("data-state", state, timeout=timeout)
    return badge


def shot(page: Page, name: str, target: Locator | None = None) -> Path:
    """Save a screenshot under test-artifacts/e2e/ (of `target`, else the whole page)."""
    path = ARTIFACTS / f"{name}.png"
    if target is None:
        page.screenshot(path=str(path))
    else:
        target.screenshot(path=str(path))
    return path


def status_bar_shot(page: Page, name: str) -> Path:
    """The left part of the status bar, where the badge is."""
    bar = page.locator("#jp-main-statusbar")
    box = bar.bounding_box()
    assert box is not None
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(
        path=str(path),
        clip={"x": box["x"], "y": box["y"] - 2, "width": 640, "height": box["height"] + 4},
    )
    return path


def popover_shot(page: Page, name: str) -> Path:
    """The popover above the status bar, with the badge under it."""
    popover = page.locator(POPOVER)
    box = popover.bounding_box()
    bar = page.locator("#jp-main-statusbar").bounding_box()
    assert box is not None and bar is not None
    top = max(0, box["y"] - 8)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(
        path=str(path),
        clip={
            "x": 0,
            "y": top,
            "width": min(1280, box["x"] + box["width"] + 24),
            "height": bar["y"] + bar["height"] - top,
        },
    )
    return path


def dialog_shot(page: Page, name: str) -> Path:
    return shot(page, name, page.locator(f"{DIALOG} .jp-Dialog-content"))


def open_popover(page: Page) -> Locator:
    page.locator(BADGE).click()
    popover = page.locator(POPOVER)
    expect(popover).to_be_visible()
    return popover


def action(page: Page, label: str) -> Locator:
    return page.locator(f"{POPOVER} .jp-gitsync-Details-actions button", has_text=label)


def saved_label(host: str) -> re.Pattern[str]:
    return re.compile(rf"^Saved to {re.escape(host)} · (just now|\d+ s ago)$")
