"""The History panel in a real JupyterLab, in headless Chromium: a notebook saved three times
has three snapshots in the panel (opened from the file browser's context menu); two of them
compare cell by cell with nbdime; the oldest is restored into the open notebook and a new
snapshot reaches the remote; a named version appears in the panel and as a tag on the remote;
publishing ends with the pull request's link. The remote is the GitHub stand-in, its git
repositories served by the real git server. One JupyterLab serves the whole module; the tests
run in order, each on what the one before left."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

try:
    from playwright.sync_api import Locator, Page, expect
except ImportError:  # pragma: no cover - `make test` installs it
    if os.environ.get("CI"):
        raise
    pytest.skip("playwright is not installed", allow_module_level=True)

from tests.e2e.lab import Lab, jupyter_lab
from tests.e2e.ui import DIALOG, dialog_shot, expect_state, open_popover, shot
from tests.github_stub import GitHubStub
from tests.gitserver import GitHTTPServer
from tests.helpers import git, ref_or_none, show, wait_until

BRANCH = "gitsync/ada"
UPSTREAM = "octo/project"
NOTEBOOK = "plot.ipynb"
SOURCES = ("x = [1, 2, 3]", "x = [1, 2, 3]\nplot(x)", "x = [3, 2, 1]\nplot(x, title='axes')")
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
PANEL = "#jp-gitsync-history"
ENTRY = f"{PANEL} .jp-gitsync-History-entry"


@dataclass
class Session:
    lab: Lab
    workspace: Path
    git_server: GitHTTPServer
    github: GitHubStub
    # the sha of the snapshot each save of SOURCES made, oldest first
    snapshots: list[str]

    @property
    def remote_repo(self) -> Path:
        return self.git_server.repo_path(UPSTREAM)

    def remote_head(self) -> str | None:
        return ref_or_none(self.remote_repo, f"refs/heads/{BRANCH}")

    def pushed_head(self) -> str | None:
        """The head once it is on the remote and nothing is waiting."""
        status = self.lab.status()
        head = status["head"]
        if status["state"] == "synced" and head and head == self.remote_head():
            return head  # type: ignore[no-any-return]
        return None

    def pushed_snapshot_of(self, source: str) -> str | None:
        """The pushed head, once it holds the notebook with `source` as its one cell."""
        head = self.pushed_head()
        notebook = show(self.remote_repo, head, NOTEBOOK) if head else None
        return head if notebook and cell_sources(notebook) == [source] else None


def write_notebook(path: Path, source: str, scratch: Path) -> None:
    """Write a one-cell notebook the way an editor saves: the whole file at once (written
    aside, then renamed over). The contents API writes a new file in place, which a snapshot
    can catch empty: one more version than the three the tests count."""
    notebook = {
        "cells": [
            {"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {},
             "outputs": [], "source": source}
        ],
        # A kernel named: JupyterLab does not ask which one when the notebook opens.
        "metadata": {"kernelspec": KERNELSPEC},
        "nbformat": 4,
        "nbformat_minor": 5,
    }  # fmt: skip
    aside = scratch / f"{path.name}.new"
    aside.write_text(json.dumps(notebook, indent=1))
    os.replace(aside, path)


def cell_sources(notebook: bytes | str) -> list[str]:
    cells = json.loads(notebook)["cells"]
    return ["".join(cell["source"]) for cell in cells]


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory, token: str) -> Iterator[Session]:
    git_server = GitHTTPServer(tmp_path_factory.mktemp("remote"), token=token)
    git_server.start()
    github = GitHubStub().start()
    github.git = git_server
    github.add_user_token("ada", token=token)
    github.add_repo("octo", "project", pushers={"ada"})
    tmp = tmp_path_factory.mktemp("lab")
    workspace = tmp / "workspace"
    subprocess.run(
        ["git", "clone", "--quiet", str(git_server.repo_path(UPSTREAM)), str(workspace)],
        check=True,
    )
    # No autosave: the open notebook (its kernel's metadata) would be saved as a fourth version
    # while the tests count three.
    docmanager = tmp / "lab-settings" / "@jupyterlab" / "docmanager-extension"
    docmanager.mkdir(parents=True)
    (docmanager / "plugin.jupyterlab-settings").write_text(json.dumps({"autosave": False}))
    git(workspace, "config", "user.name", "Ada")
    git(workspace, "config", "user.email", "ada@example.org")
    env = {
        "GITSYNC_REMOTE_URL": f"{github.url}/{UPSTREAM}.git",
        "GITSYNC_BRANCH": BRANCH,
        "GITSYNC_TOKEN": token,
        "GITSYNC_GITHUB_URL": github.url,
        "GITSYNC_GITHUB_API_URL": github.url,
        "GITSYNC_COMMIT_DELAY": "0.5",
        "GITSYNC_PUSH_INTERVAL": "1",
    }
    try:
        with jupyter_lab(workspace, tmp, env) as lab:
            found = Session(lab, workspace, git_server, github, [])
            # Three saves of the notebook, each its own snapshot on the remote.
            for source in SOURCES:
                write_notebook(workspace / NOTEBOOK, source, tmp)
                head = wait_until(
                    lambda source=source: found.pushed_snapshot_of(source),
                    timeout=60,
                    what=f"the snapshot of {source!r} pushed",
                )
                found.snapshots.append(head)
            yield found
    finally:
        github.stop()
        git_server.stop()


@pytest.fixture(scope="module")
def token() -> str:
    """The user's token, for the whole module (GitHub's stand-in and the git server know it)."""
    return secrets.token_hex(20)


def open_notebook(page: Page, session: Session) -> None:
    """Load JupyterLab with the notebook open, and wait for the badge and the notebook."""
    lab = session.lab
    page.goto(f"{lab.url}lab/tree/{NOTEBOOK}?token={lab.token}")
    expect(page.locator("#jp-gitsync-badge .jp-gitsync-Badge")).to_be_visible(timeout=60_000)
    expect(page.locator(".jp-NotebookPanel .jp-Cell").first).to_be_visible()
    expect_state(page, "synced")


def show_history_from_the_file_browser(page: Page) -> Locator:
    page.locator(".jp-DirListing-item", has_text=NOTEBOOK).click(button="right")
    page.locator(".lm-Menu-itemLabel", has_text="Show History").click()
    panel = page.locator(PANEL)
    expect(panel).to_be_visible()
    return panel


def panel_shot(page: Page, name: str) -> Path:
    return shot(page, name, page.locator(PANEL))


def entries(page: Page) -> Locator:
    return page.locator(ENTRY)


def entry(page: Page, sha: str) -> Locator:
    return page.locator(f'{ENTRY}[data-sha="{sha}"]')


def select(page: Page, sha: str) -> Locator:
    row = entry(page, sha)
    row.locator(".jp-gitsync-History-entryMain").click()
    expect(row.locator(".jp-gitsync-History-actions")).to_be_visible()
    return row


def test_the_panel_lists_the_three_snapshots_of_the_notebook(page: Page, session: Session) -> None:
    open_notebook(page, session)
    panel = show_history_from_the_file_browser(page)
    expect(entries(page)).to_have_count(3)
    shas = [entries(page).nth(i).get_attribute("data-sha") for i in range(3)]
    assert shas == list(reversed(session.snapshots))  # newest first
    expect(panel.locator(".jp-gitsync-History-day h3").first).to_have_text("Today")
    expect(panel.locator(".jp-gitsync-History-fileName")).to_have_text(NOTEBOOK)
    for i in range(3):
        expect(entries(page).nth(i)).to_contain_text("this session")
        expect(entries(page).nth(i).locator(".jp-gitsync-History-time")).to_have_text(
            re.compile(r"\d")
        )
    select(page, session.snapshots[0])
    panel_shot(page, "history-01-panel-three-snapshots")
    shot(page, "history-01b-lab-with-panel")


def test_comparing_two_snapshots_shows_the_notebook_diff(page: Page, session: Session) -> None:
    open_notebook(page, session)
    show_history_from_the_file_browser(page)
    expect(entries(page)).to_have_count(3)
    oldest, _, newest = session.snapshots
    select(page, newest).get_by_role("button", name="Compare…").click()
    expect(page.locator(f"{PANEL} .jp-gitsync-History-banner")).to_contain_text(
        "Choose another snapshot"
    )
    entry(page, oldest).locator(".jp-gitsync-History-entryMain").click()

    view = page.locator(".jp-gitsync-DiffPanel:visible")
    expect(view).to_have_count(1)
    expect(view.locator(".jp-gitsync-Diff-base")).to_contain_text("Snapshot of")
    # nbdime's cell diff: the changed cell, its source side by side.
    cell = view.locator(".jp-Notebook-diff .jp-Cell-diff").first
    expect(cell).to_be_visible()
    expect(view.locator(".jp-Notebook-diff")).to_contain_text("plot(x, title='axes')")
    expect(view.locator(".jp-Notebook-diff")).to_contain_text("x = [1, 2, 3]")
    expect(page.locator(".lm-TabBar-tab.lm-mod-current", has_text=NOTEBOOK)).to_contain_text("↔")
    shot(page, "history-02-compare-two-snapshots")

    # And one snapshot with the notebook as it is now.
    select(page, oldest).get_by_role("button", name="Compare with Current").click()
    expect(page.locator(".jp-gitsync-DiffPanel:visible .jp-gitsync-Diff-remote")).to_have_text(
        "Current file"
    )
    expect(page.locator(".jp-gitsync-DiffPanel:visible .jp-Cell-diff").first).to_be_visible()


def test_restoring_the_oldest_version_brings_it_back_as_a_new_snapshot(
    page: Page, session: Session
) -> None:
    open_notebook(page, session)
    show_history_from_the_file_browser(page)
    oldest = session.snapshots[0]
    before = wait_until(session.pushed_head, what="nothing waiting")
    row = select(page, oldest)
    row.get_by_role("button", name="Restore This Version").click()

    toast = page.locator(".Toastify__toast", has_text=f"Restored {NOTEBOOK} to its version of")
    expect(toast).to_be_visible()
    # The file holds the oldest content, and the open notebook shows it.
    assert cell_sources((session.workspace / NOTEBOOK).read_text()) == [SOURCES[0]]
    expect(page.locator(".jp-NotebookPanel .jp-Cell .jp-InputArea-editor").first).to_have_text(
        SOURCES[0]
    )
    # A new snapshot on top (what was there before is in its history), on the remote.
    head = wait_until(
        lambda: (h := session.pushed_head()) and h != before and h,
        timeout=60,
        what="the restore pushed",
    )
    remote_notebook = show(session.remote_repo, head, NOTEBOOK)
    assert remote_notebook is not None
    assert cell_sources(remote_notebook) == [SOURCES[0]]
    assert git(session.remote_repo, "merge-base", before, head) == before
    # The panel lists it (the head moved: no refresh asked for), with the save of the open
    # notebook before it when the kernel's metadata had made it dirty.
    changed = git(session.remote_repo, "log", "--format=%H", head, "--", NOTEBOOK).split()
    assert len(changed) in (4, 5), changed
    expect(entries(page)).to_have_count(len(changed))
    assert entries(page).first.get_attribute("data-sha") == head
    panel_shot(page, "history-03-after-restore")
    shot(page, "history-03b-restored-notebook")


def test_restore_workspace_asks_first_and_cancel_changes_nothing(
    page: Page, session: Session
) -> None:
    open_notebook(page, session)
    show_history_from_the_file_browser(page)
    head = session.pushed_head()
    select(page, session.snapshots[1]).get_by_role(
        "button", name="Restore Workspace to This Snapshot"
    ).click()
    dialog = page.locator(DIALOG)
    expect(dialog).to_contain_text("never synced")
    expect(dialog).to_contain_text("nothing is lost")
    dialog_shot(page, "history-04-restore-workspace-confirmation")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    assert session.pushed_head() == head


def test_a_saved_version_is_in_the_panel_and_a_tag_on_the_remote(
    page: Page, session: Session
) -> None:
    open_notebook(page, session)
    show_history_from_the_file_browser(page)
    page.locator(".lm-MenuBar-itemLabel", has_text="Git Sync").click()
    page.locator(".lm-Menu-itemLabel", has_text="Save a Version…").click()
    dialog = page.locator(DIALOG)
    name = dialog.locator("input[name=name]")
    name.fill("submitted draft")
    expect(dialog.locator(".jp-gitsync-Form-error")).to_have_text(
        "A name cannot contain spaces; use - or _ instead."
    )
    expect(dialog.get_by_role("button", name="Save Version")).to_be_disabled()
    dialog_shot(page, "history-05a-version-name-refused")
    name.fill("submitted-draft")
    dialog.locator("textarea[name=message]").fill("The draft sent to the reviewers")
    expect(dialog.locator(".jp-gitsync-Form-error")).to_have_text("")
    dialog_shot(page, "history-05b-version-dialog")
    dialog.get_by_role("button", name="Save Version").click()
    expect(dialog).to_have_count(0)
    expect(
        page.locator(".Toastify__toast", has_text="Saved the version submitted-draft")
    ).to_be_visible()

    tag = f"refs/tags/{BRANCH}/submitted-draft"
    tagged = wait_until(
        lambda: ref_or_none(session.remote_repo, f"{tag}^{{commit}}"),
        timeout=60,
        what="the version's tag on the remote",
    )
    chip = page.locator(f"{PANEL} .jp-gitsync-History-tag", has_text="submitted-draft")
    expect(chip).to_be_visible()
    assert chip.locator("xpath=ancestor::li[1]").get_attribute("data-sha") == tagged
    # The same name again: the server's refusal, in the dialog.
    page.locator(".lm-MenuBar-itemLabel", has_text="Git Sync").click()
    page.locator(".lm-Menu-itemLabel", has_text="Save a Version…").click()
    dialog.locator("input[name=name]").fill("submitted-draft")
    dialog.get_by_role("button", name="Save Version").click()
    expect(dialog.locator(".jp-gitsync-Form-error")).not_to_have_text("")
    dialog_shot(page, "history-05c-version-name-taken")
    dialog.get_by_role("button", name="Cancel").click()
    panel_shot(page, "history-05d-panel-with-version")


def test_publishing_ends_with_the_pull_request_link(page: Page, session: Session) -> None:
    open_notebook(page, session)
    open_popover(page)
    page.locator(".jp-gitsync-Details-actions button", has_text="Publish to GitHub…").click()
    dialog = page.locator(DIALOG)
    dialog.locator("input[name=title]").fill("Fix plot axes")
    expect(dialog.locator("input[name=branch]")).to_have_value("fix-plot-axes")
    dialog.locator("textarea[name=description]").fill("The y axis was upside down.")
    dialog_shot(page, "history-06a-publish-dialog")
    dialog.get_by_role("button", name="Publish").click()

    link = dialog.locator(".jp-gitsync-PublishResult-link")
    expect(link).to_be_visible(timeout=60_000)
    pulls: list[Any] = session.github.pulls
    assert len(pulls) == 1
    pull = pulls[0]
    assert (pull.title, pull.head_ref, pull.body) == (
        "Fix plot axes",
        "fix-plot-axes",
        "The y axis was upside down.",
    )
    href = link.get_attribute("href") or ""
    assert href.endswith(f"/pull/{pull.number}"), href
    assert link.get_attribute("target") == "_blank"
    assert ref_or_none(session.remote_repo, "refs/heads/fix-plot-axes") == pull.head_sha
    expect(dialog.get_by_role("button", name="Cancel")).to_be_hidden()
    dialog_shot(page, "history-06b-published")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)


def test_a_text_file_compares_side_by_side_in_the_dark_theme(page: Page, session: Session) -> None:
    notes = session.workspace / "notes.md"
    versions = ("# Notes\n\nThe axes are wrong.\n", "# Notes\n\nThe axes are fixed.\nDone.\n")
    for text in versions:
        aside = session.workspace.parent / "notes.md.new"
        aside.write_text(text)
        os.replace(aside, notes)
        wait_until(
            lambda text=text: (
                (h := session.pushed_head())
                and show(session.remote_repo, h, "notes.md") == text.encode()
            ),
            timeout=60,
            what="the notes pushed",
        )
    lab = session.lab
    page.goto(f"{lab.url}lab/tree/notes.md?token={lab.token}")
    expect(page.locator(".jp-FileEditor .cm-content").first).to_be_visible(timeout=60_000)
    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").click()
    page.locator(".lm-Menu-itemLabel").get_by_text("Theme", exact=True).click()
    page.locator(".lm-Menu-itemLabel").get_by_text("JupyterLab Dark", exact=True).click()
    expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false")

    page.locator(".lm-MenuBar-itemLabel", has_text="Git Sync").click()
    page.locator(".lm-Menu-itemLabel", has_text="Show History").click()
    expect(entries(page)).to_have_count(2)
    oldest = entries(page).nth(1).get_attribute("data-sha")
    assert oldest is not None
    select(page, oldest).get_by_role("button", name="Compare with Current").click()
    view = page.locator(".jp-gitsync-DiffPanel:visible")
    merge = view.locator(".cm-mergeView")
    expect(merge).to_be_visible()
    expect(merge.locator(".cm-merge-a")).to_contain_text("The axes are wrong.")
    expect(merge.locator(".cm-merge-b")).to_contain_text("The axes are fixed.")
    expect(merge.locator(".cm-changedLine").first).to_be_visible()
    shot(page, "history-07-text-compare-dark")
