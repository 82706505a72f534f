"""Signing in from JupyterLab, in headless Chromium: without a token the badge says sign-in is
required; the sign-in dialog shows GitHub's device code (from a local GitHub stand-in), explains
a refusal, and closes by itself once the code is entered, after which the work is pushed."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator

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
    dialog_shot,
    expect_state,
    open_lab,
    open_popover,
    popover_shot,
    saved_label,
    status_bar_shot,
)
from tests.github_stub import GitHubStub
from tests.gitserver import GitHTTPServer
from tests.helpers import git, ref_or_none, wait_until

BRANCH = "gitsync/octocat"


@pytest.fixture
def github() -> Iterator[GitHubStub]:
    stub = GitHubStub().start()
    stub.interval = 1  # GitHub says 5 s; the stub is local
    yield stub
    stub.stop()


@pytest.fixture
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitHTTPServer]:
    server = GitHTTPServer(tmp_path_factory.mktemp("remote"), token=secrets.token_hex(20))
    server.start()
    server.create_repo("project", {"README.md": b"# Project\n"})
    yield server
    server.stop()


@pytest.fixture
def lab(
    tmp_path_factory: pytest.TempPathFactory, git_server: GitHTTPServer, github: GitHubStub
) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("lab")
    workspace = tmp / "workspace"
    subprocess.run(
        ["git", "clone", "--quiet", str(git_server.repo_path("project")), str(workspace)],
        check=True,
    )
    git(workspace, "config", "user.name", "Test User")
    git(workspace, "config", "user.email", "test@example.org")
    env = {
        # No GITSYNC_TOKEN: the user signs in from the UI.
        "GITSYNC_REMOTE_URL": git_server.repo_url("project"),
        "GITSYNC_BRANCH": BRANCH,
        "GITSYNC_COMMIT_DELAY": "0.5",
        "GITSYNC_PUSH_INTERVAL": "1",
        "GITSYNC_CLIENT_ID": github.client_id,
        "GITSYNC_GITHUB_URL": github.url,
        "GITSYNC_GITHUB_API_URL": github.url,
    }
    with jupyter_lab(workspace, tmp, env) as lab:
        wait_until(
            lambda: lab.status()["state"] == "auth-required", timeout=60, what="sign-in required"
        )
        yield lab


def test_sign_in_required_then_signing_in_with_the_device_flow(
    page: Page, lab: Lab, git_server: GitHTTPServer, github: GitHubStub
) -> None:
    badge = open_lab(page, lab)
    expect_state(page, "auth-required")
    expect(badge).to_have_text("Sign in to keep your work")  # nobody gave a token yet
    status_bar_shot(page, "11-badge-sign-in-required")

    lab.save_notebook("draft.ipynb", "print('kept locally until signed in')")
    popover = open_popover(page)
    expect(popover).to_contain_text("not signed in")
    popover_shot(page, "12-popover-sign-in-required")
    action(page, "Sign in to GitHub").click()
    expect(page.locator(POPOVER)).to_have_count(0)

    # The first attempt is refused on GitHub: the dialog says so and offers to try again.
    dialog = page.locator(DIALOG)
    code = dialog.locator(".jp-gitsync-SignIn-code")
    expect(code).to_be_visible()
    first_code = code.inner_text()
    assert first_code == github.latest_code().user_code
    github.deny(first_code)
    expect(dialog.locator(".jp-gitsync-SignIn-error")).to_have_text(
        "The sign-in was cancelled on GitHub."
    )
    dialog_shot(page, "13-sign-in-denied")
    dialog.get_by_role("button", name="Try again").click()

    # The second attempt: a new code, a link to enter it, a copy button.
    expect(code).to_be_visible()
    expect(code).not_to_have_text(first_code)
    user_code = code.inner_text()
    assert user_code == github.latest_code().user_code
    link = dialog.locator("a.jp-gitsync-SignIn-link")
    expect(link).to_have_attribute("href", f"{github.url}/login/device")
    expect(link).to_have_attribute("target", "_blank")
    expect(dialog.get_by_role("button", name="Copy")).to_be_visible()
    dialog_shot(page, "14-sign-in-code")

    # The user enters the code on GitHub; GitHub issues a token the remote accepts.
    github.approve(user_code, login="octocat", token=git_server.token)
    expect(page.locator(DIALOG)).to_have_count(0)  # closes by itself
    expect(
        page.locator(".Toastify__toast").filter(has_text="Signed in to GitHub as @octocat.")
    ).to_be_visible()
    expect_state(page, "synced")
    expect(badge).to_have_text(saved_label(git_server.url.removeprefix("http://")))
    wait_until(
        lambda: ref_or_none(git_server.repo_path("project"), f"refs/heads/{BRANCH}"),
        what="the draft pushed",
    )
    status_bar_shot(page, "15-badge-saved-after-sign-in")

    popover = open_popover(page)
    expect(popover).to_contain_text("@octocat · signed in here")
    expect(action(page, "Sign out")).to_be_visible()
    popover_shot(page, "16-popover-signed-in")
    assert page.locator(BADGE).count() == 1
