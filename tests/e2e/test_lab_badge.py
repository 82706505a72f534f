"""The Git Sync badge in a real JupyterLab, in headless Chromium, against the loopback git
server: it appears, follows a notebook save to "Saved", shows offline and recovers, opens its
popover from the keyboard, warns before the tab closes with unpushed work, and resumes from a
branch. One JupyterLab serves the whole module (each start costs seconds on CI)."""

from __future__ import annotations

import itertools
import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - `make test` installs it
    if os.environ.get("CI"):
        raise
    pytest.skip("playwright is not installed", allow_module_level=True)

from tests.e2e.lab import Lab, jupyter_lab
from tests.e2e.ui import (
    BADGE,
    DIALOG,
    POPOVER,
    action,
    badge_history,
    dialog_shot,
    expect_state,
    open_lab,
    open_popover,
    popover_shot,
    record_badge,
    saved_label,
    shot,
    status_bar_shot,
)
from tests.gitserver import GitHTTPServer
from tests.helpers import git, ref_or_none, show, wait_until

BRANCH = "gitsync/ada"


@pytest.fixture(scope="module")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitHTTPServer]:
    server = GitHTTPServer(tmp_path_factory.mktemp("remote"), token=secrets.token_hex(20))
    server.start()
    server.create_repo(
        "project", {"README.md": b"# Project\n", "analysis.ipynb": b'{"cells": []}\n'}
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, git_server: GitHTTPServer) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("lab")
    workspace = tmp / "workspace"
    subprocess.run(
        ["git", "clone", "--quiet", str(git_server.repo_path("project")), str(workspace)],
        check=True,
    )
    git(workspace, "config", "user.name", "Test User")
    git(workspace, "config", "user.email", "test@example.org")
    assert git_server.token is not None
    env = {
        "GITSYNC_REMOTE_URL": git_server.repo_url("project"),
        "GITSYNC_BRANCH": BRANCH,
        "GITSYNC_TOKEN": git_server.token,
        "GITSYNC_COMMIT_DELAY": "0.5",
        "GITSYNC_PUSH_INTERVAL": "1",
    }
    with jupyter_lab(workspace, tmp, env) as lab:
        wait_until(lambda: lab.status()["state"] == "synced", timeout=60, what="first sync")
        yield lab


def remote_has(git_server: GitHTTPServer, branch: str, path: str) -> bytes | None:
    repo = git_server.repo_path("project")
    if ref_or_none(repo, f"refs/heads/{branch}") is None:
        return None
    return show(repo, f"refs/heads/{branch}", path)


def test_the_badge_shows_saved_after_a_notebook_save(
    page: Page, lab: Lab, git_server: GitHTTPServer
) -> None:
    host = git_server.url.removeprefix("http://")
    badge = open_lab(page, lab)
    expect(badge).to_have_text(saved_label(host))
    status_bar_shot(page, "01-badge-saved-at-start")
    assert badge.get_attribute("role") == "button"
    assert badge.get_attribute("tabindex") == "0"
    assert (badge.get_attribute("aria-label") or "").startswith(f"Git Sync: Saved to {host}")

    record_badge(page)
    lab.save_notebook("first.ipynb", "print('saved from the e2e test')")
    expect_state(page, "pending")
    status_bar_shot(page, "02-badge-changes-waiting")
    expect(badge).to_have_text(re.compile("^Syncing…$"))
    status_bar_shot(page, "03-badge-syncing")
    expect_state(page, "synced")
    expect(badge).to_have_text(saved_label(host))
    status_bar_shot(page, "04-badge-saved-after-save")
    assert remote_has(git_server, BRANCH, "first.ipynb") is not None

    # One smooth "Changes waiting" → "Syncing…" → "Saved": nothing in between flashes.
    history = badge_history(page)
    states = [entry["state"] for entry in history]
    assert states[-1] == "synced", history
    assert "unpushed" not in states, history
    shown_for = [later["at"] - entry["at"] for entry, later in itertools.pairwise(history)]
    assert all(ms >= 300 for ms in shown_for[1:]), history


def test_the_popover_shows_where_and_what_and_opens_from_the_keyboard(
    page: Page, lab: Lab, git_server: GitHTTPServer
) -> None:
    lab.save_notebook("second.ipynb", "print('a snapshot to show')")
    wait_until(lambda: remote_has(git_server, BRANCH, "second.ipynb"), what="the save pushed")
    badge = open_lab(page, lab)
    expect_state(page, "synced")
    badge.focus()
    page.keyboard.press("Enter")
    popover = page.locator(POPOVER)
    expect(popover).to_be_visible()
    expect(popover).to_contain_text(f"{git_server.url.removeprefix('http://')}/project")
    expect(popover).to_contain_text(BRANCH)
    head = lab.status()["head"]
    expect(popover).to_contain_text(head[:7])
    expect(popover).to_contain_text("token from the environment")
    for label in ("Sync now", "Resume from branch…"):
        expect(action(page, label)).to_be_visible()
    # Not on GitHub: no link to a branch page, and no sign-in offered (the token works).
    expect(action(page, "Open branch on GitHub")).to_have_count(0)
    expect(action(page, "Sign in to GitHub")).to_have_count(0)
    assert badge.get_attribute("aria-expanded") == "true"
    popover_shot(page, "05-popover-synced")

    page.keyboard.press("Escape")
    expect(popover).to_have_count(0)
    expect(badge).to_be_focused()
    assert badge.get_attribute("aria-expanded") == "false"

    # The same actions in the Git Sync menu of the main menu.
    page.locator(".lm-MenuBar-itemLabel", has_text="Git Sync").click()
    menu = page.locator(".lm-Menu").last
    for label in ("Sync now", "Show status", "Sign in to GitHub", "Resume from branch…"):
        expect(menu.locator(".lm-Menu-itemLabel", has_text=label)).to_be_visible()
    shot(page, "05b-git-sync-menu")
    page.locator("#jp-main-dock-panel").click()  # closes the menu
    expect(menu).to_be_hidden()


def test_offline_then_sync_now_and_a_warning_before_closing(
    page: Page, lab: Lab, git_server: GitHTTPServer, browser_context: object
) -> None:
    badge = open_lab(page, lab)
    expect_state(page, "synced")
    git_server.pause()
    try:
        lab.save_notebook("offline.ipynb", "print('written while the remote is down')")
        expect_state(page, "offline")
        expect(badge).to_have_text("Offline · 1 snapshot waiting")
        status_bar_shot(page, "06-badge-offline")
        open_popover(page)
        expect(
            page.locator(f"{POPOVER} .jp-gitsync-Details-error[data-kind=network]")
        ).to_be_visible()
        popover_shot(page, "07-popover-offline")
        page.keyboard.press("Escape")

        # Closing the tab now asks first: the snapshot is not on the remote yet.
        with page.expect_event("dialog", timeout=10_000) as asked:
            page.close(run_before_unload=True)
        assert asked.value.type == "beforeunload"
        asked.value.dismiss()  # stay on the page
        expect(page.locator(BADGE)).to_be_visible()
        assert not page.is_closed()
    finally:
        git_server.resume()

    open_popover(page)
    action(page, "Sync now").click()
    expect_state(page, "synced")
    assert remote_has(git_server, BRANCH, "offline.ipynb") is not None
    status_bar_shot(page, "08-badge-back-online")


def test_the_resume_dialog_lists_branches_and_resumes(
    page: Page, lab: Lab, git_server: GitHTTPServer, tmp_path: Path
) -> None:
    # Another session's work on the remote: a branch with one more file.
    other = tmp_path / "other"
    subprocess.run(
        ["git", "clone", "--quiet", str(git_server.repo_path("project")), str(other)], check=True
    )
    (other / "from-laptop.txt").write_text("written on the laptop\n")
    git(other, "add", "from-laptop.txt")
    git(other, "-c", "user.name=Ada", "-c", "user.email=ada@example.org",
        "commit", "--quiet", "-m", "Analysis from the laptop")  # fmt: skip
    git(other, "push", "--quiet", "origin", "HEAD:refs/heads/analysis")

    # This session's own work, on its sync branch.
    lab.save_notebook("here.ipynb", "print('written in this session')")
    wait_until(lambda: remote_has(git_server, BRANCH, "here.ipynb"), what="this session's save")

    open_lab(page, lab)
    expect_state(page, "synced")
    open_popover(page)
    action(page, "Resume from branch…").click()
    dialog = page.locator(DIALOG)
    expect(dialog).to_contain_text("Your current work is saved and pushed first.")
    radios = dialog.locator("input[type=radio]")
    expect(radios).to_have_count(3)
    names = [radios.nth(i).get_attribute("value") for i in range(3)]
    assert names[0] == BRANCH  # sync branches first
    assert set(names[1:]) == {"analysis", "main"}
    expect(radios.first).to_be_disabled()  # the branch in use
    expect(dialog).to_contain_text("Analysis from the laptop")
    expect(dialog).to_contain_text("in use")
    dialog.get_by_label(re.compile("analysis")).check()
    dialog_shot(page, "09-resume-dialog")

    dialog.get_by_role("button", name="Resume").click()
    expect(page.locator(DIALOG)).to_have_count(0, timeout=60_000)
    expect(
        page.locator(".Toastify__toast").filter(has_text="Resumed from analysis")
    ).to_be_visible()
    new_branch = f"{BRANCH}-from-analysis"
    wait_until(
        lambda: (s := lab.status())["state"] == "synced" and s["branch"] == new_branch and s,
        what="the resumed branch synced",
    )
    listing = [item["name"] for item in lab.request("GET", "api/contents")["content"]]
    assert "from-laptop.txt" in listing
    badge = page.locator(BADGE)
    expect(badge).to_have_attribute("aria-label", re.compile(re.escape(new_branch)))
    expect(badge).to_have_text(saved_label(git_server.url.removeprefix("http://")))
    status_bar_shot(page, "10-badge-after-resume")


def test_a_rescue_branch_is_listed_opened_and_deleted(
    page: Page, lab: Lab, git_server: GitHTTPServer, tmp_path: Path
) -> None:
    """Another session pushes its version of a file this session then changes too: the merge
    keeps this session's, the other goes to a rescue branch, and the popover lists it with
    Open (no web pages on this remote: how to take it back with git) and Delete."""
    branch = lab.status()["branch"]
    lab.save("shared.txt", "first\n")
    wait_until(lambda: remote_has(git_server, branch, "shared.txt"), what="the first save")
    other = tmp_path / "other"
    subprocess.run(
        ["git", "clone", "--quiet", "--branch", branch,
         str(git_server.repo_path("project")), str(other)],
        check=True,
    )  # fmt: skip
    (other / "shared.txt").write_text("the other session's version\n")
    git(other, "-c", "user.name=Bo", "-c", "user.email=bo@example.org",
        "commit", "--quiet", "-am", "The other session's version")  # fmt: skip
    git(other, "push", "--quiet", "origin", f"HEAD:refs/heads/{branch}")

    open_lab(page, lab)
    lab.save("shared.txt", "this session's version\n")
    rescues = wait_until(
        lambda: lab.status()["rescue_branches"], what="the collision's rescue branch"
    )
    name = rescues[0]["name"]
    kept = wait_until(lambda: remote_has(git_server, name, "shared.txt"), what="it pushed")
    assert kept == b"the other session's version\n"
    expect_state(page, "synced")
    open_popover(page)
    row = page.locator(f"{POPOVER} [data-rescue='{name}']")
    expect(row).to_contain_text("other versions of shared.txt")
    expect(page.locator(POPOVER)).to_contain_text("1 rescue branch")
    popover_shot(page, "10-popover-rescue-branch")

    row.get_by_role("button", name="Open").click()
    dialog = page.locator(DIALOG)
    expect(dialog).to_contain_text(f"git restore --source='{name}' -- 'shared.txt'")
    dialog_shot(page, "11-rescue-how-to")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)

    open_popover(page)
    page.locator(f"{POPOVER} [data-rescue='{name}']").get_by_role("button", name="Delete").click()
    expect(dialog).to_contain_text("not in your workspace")
    dialog_shot(page, "12-rescue-delete-confirm")
    dialog.get_by_role("button", name="Delete").click()
    expect(
        page.locator(".Toastify__toast").filter(has_text=f"Deleted the rescue branch {name}")
    ).to_be_visible()
    wait_until(lambda: lab.status()["rescue_branches"] == [], what="the listing to empty")
    assert ref_or_none(git_server.repo_path("project"), f"refs/heads/{name}") is None
    content = lab.request("GET", "api/contents/shared.txt")["content"]
    assert content == "this session's version\n"  # the file stayed
