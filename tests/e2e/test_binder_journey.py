"""The anonymous mybinder.org journey, in headless Chromium, with the release wheel installed in
a fresh virtualenv (not this checkout), no token, and a random JUPYTERHUB_USER per launch:

launch → edit → sign in from the badge (the device flow, against the GitHub stand-in) → saved;
a last edit and SIGTERM within a second → the container is gone. A relaunch in a fresh depth-1
clone with another random user → edit another file → sign in → both launches' work is in the
workspace and on the tip. At no point does anything say a token was refused or ask to sign in
again. Screenshots of each step go to test-artifacts/e2e/binder-*.png."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    action,
    dialog_shot,
    expect_state,
    open_lab,
    open_popover,
    popover_shot,
    status_bar_shot,
)
from tests.github_stub import GitHubStub
from tests.gitserver import GitHTTPServer
from tests.helpers import git, show, wait_until
from tests.wheel import InstalledWheel

OWNER, REPO, LOGIN = "ada", "thesis", "octocat"
BRANCH = f"gitsync/{LOGIN}"

# Every toast the page shows, as it appears (a warning withdrawn later is still recorded).
_TOASTS = """
() => {
  const seen = (window.__gitsyncToasts = []);
  new MutationObserver(records => {
    for (const record of records) {
      for (const node of record.addedNodes) {
        if (node.nodeType === 1) {
          for (const toast of [node, ...node.querySelectorAll('.Toastify__toast')]) {
            if (toast.classList && toast.classList.contains('Toastify__toast')) {
              seen.push(toast.textContent);
            }
          }
        }
      }
    }
  }).observe(document.body, { childList: true, subtree: true });
}
"""


@pytest.fixture
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitHTTPServer]:
    server = GitHTTPServer(tmp_path_factory.mktemp("remote"), token=secrets.token_hex(20))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def github(git_server: GitHTTPServer) -> Iterator[GitHubStub]:
    stub = GitHubStub().start()
    stub.git = git_server  # ada/thesis.git on the stand-in is the real git server
    stub.interval = 1
    stub.add_repo(OWNER, REPO, pushers={LOGIN})
    assert git_server.token is not None
    stub.add_user_token(LOGIN, git_server.token)  # what the sign-in will issue
    yield stub
    stub.stop()


def binder_launch(
    tmp: Path, git_server: GitHTTPServer, github: GitHubStub, installed: InstalledWheel
) -> tuple[Path, Any]:
    """A Binder launch: a depth-1 clone of the repository, a random user, no token."""
    tmp.mkdir(parents=True, exist_ok=True)
    workspace = tmp / "workspace"
    bare = git_server.repo_path(f"{OWNER}/{REPO}")
    git(tmp, "clone", "--quiet", "--depth", "1", f"file://{bare}", str(workspace))
    git(workspace, "remote", "set-url", "origin", f"{github.url}/{OWNER}/{REPO}.git")
    env = {
        "JUPYTERHUB_USER": f"{OWNER}-{REPO}-{secrets.token_hex(4)}",
        "BINDER_LAUNCH_HOST": "https://mybinder.org/",
        "BINDER_REPO_URL": f"https://github.com/{OWNER}/{REPO}",
        "BINDER_REF_URL": f"https://github.com/{OWNER}/{REPO}/tree/main",
        "GITSYNC_CLIENT_ID": github.client_id,
        "GITSYNC_GITHUB_URL": github.url,
        "GITSYNC_GITHUB_API_URL": github.url,
        "GITSYNC_COMMIT_DELAY": "0.5",
        "GITSYNC_PUSH_INTERVAL": "1",
    }
    return workspace, jupyter_lab(workspace, tmp, env, python=installed.python)


def sign_in_from_the_badge(
    page: Page, github: GitHubStub, git_server: GitHTTPServer, step: str
) -> None:
    badge = page.locator(BADGE)
    expect(badge).to_have_text("Sign in to keep your work")
    expect(badge).to_have_attribute("title", _contains("saved only in this Binder session"))
    status_bar_shot(page, f"binder-{step}a-sign-in-to-keep-your-work")
    open_popover(page)
    popover_shot(page, f"binder-{step}b-popover-before-sign-in")
    action(page, "Sign in to GitHub").click()
    code = page.locator(DIALOG).locator(".jp-gitsync-SignIn-code")
    expect(code).to_be_visible()
    dialog_shot(page, f"binder-{step}c-device-code")
    github.approve(code.inner_text(), login=LOGIN, token=git_server.token)
    expect(page.locator(DIALOG)).to_have_count(0)
    expect(
        page.locator(".Toastify__toast").filter(has_text=f"Signed in to GitHub as @{LOGIN}.")
    ).to_be_visible()
    expect_state(page, "synced")
    status_bar_shot(page, f"binder-{step}d-saved-after-sign-in")


def _contains(text: str) -> re.Pattern[str]:
    return re.compile(re.escape(text))


def no_word_of_refusal(page: Page) -> list[str]:
    toasts: list[str] = page.evaluate("() => window.__gitsyncToasts.slice()")
    for text in toasts:
        assert "refused" not in text and "sign in again" not in text.lower(), toasts
    return toasts


def tip_file(git_server: GitHTTPServer, path: str) -> bytes | None:
    return show(git_server.repo_path(f"{OWNER}/{REPO}"), f"refs/heads/{BRANCH}", path)


def notebook(source: str) -> dict[str, Any]:
    cell = {"cell_type": "code", "metadata": {}, "source": source, "outputs": [],
            "execution_count": None}  # fmt: skip
    return {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def test_the_anonymous_binder_journey(
    page: Page,
    git_server: GitHTTPServer,
    github: GitHubStub,
    installed_wheel: InstalledWheel,
    tmp_path: Path,
) -> None:
    # -- the first launch ------------------------------------------------------------------
    workspace, launch = binder_launch(tmp_path / "first", git_server, github, installed_wheel)
    with launch as lab:
        assert isinstance(lab, Lab)
        open_lab(page, lab)
        page.evaluate(_TOASTS)
        expect_state(page, "auth-required")
        lab.save_notebook("analysis.ipynb", "print('the first launch')")
        wait_until(lambda: lab.status()["head"], what="a local snapshot before sign-in")
        sign_in_from_the_badge(page, github, git_server, "1")
        wait_until(lambda: tip_file(git_server, "analysis.ipynb"), what="the first edit pushed")
        toasts = no_word_of_refusal(page)
        # A last edit, and the container is stopped within a second of it.
        content = {"type": "notebook", "content": notebook("print('the last edit')")}
        lab.request("PUT", "api/contents/last.ipynb", content)
        lab.process.send_signal(signal.SIGTERM)
        assert lab.process.wait(timeout=30) is not None
    assert tip_file(git_server, "last.ipynb") is not None, "the last edit was flushed"
    page.goto("about:blank")

    # -- a relaunch: a fresh depth-1 clone, another random user ------------------------------
    workspace, launch = binder_launch(tmp_path / "second", git_server, github, installed_wheel)
    assert not (workspace / "analysis.ipynb").exists()  # the clone is of the launch commit
    with launch as lab:
        open_lab(page, lab)
        page.evaluate(_TOASTS)
        expect_state(page, "auth-required")
        lab.save("notes.md", "# Written in the second launch\n")
        wait_until(lambda: lab.status()["head"], what="a local snapshot before sign-in")
        sign_in_from_the_badge(page, github, git_server, "2")
        wait_until(lambda: tip_file(git_server, "notes.md"), what="the second edit pushed")
        no_word_of_refusal(page)
        listing = {item["name"] for item in lab.request("GET", "api/contents")["content"]}
        popover = open_popover(page)
        expect(popover).to_contain_text(f"@{LOGIN}")
        popover_shot(page, "binder-3-popover-after-relaunch")
    # both launches' work, in the workspace and on the tip; nothing missing
    for name in ("analysis.ipynb", "last.ipynb", "notes.md", "README.md"):
        assert name in listing, listing
        assert tip_file(git_server, name) is not None, name
    last = json.loads(tip_file(git_server, "last.ipynb") or b"{}")
    assert "".join(last["cells"][0]["source"]) == "print('the last edit')"
    assert (workspace / "notes.md").read_text() == "# Written in the second launch\n"
    branches = git(git_server.repo_path(f"{OWNER}/{REPO}"), "for-each-ref",
                   "--format=%(refname:short)", "refs/heads/").split()  # fmt: skip
    assert sorted(branches) == [BRANCH, "main"], branches  # never a branch per random user
    assert any("Signed in to GitHub" in t for t in toasts)  # the recorder worked
