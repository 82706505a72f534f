"""The extension inside a real Jupyter server (pytest-jupyter), syncing to the real git server."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from jupyter_gitsync.app import GitSync
from tests.gitserver import GitHTTPServer
from tests.helpers import async_wait_until, git, ref_or_none, show, user_git_state
from tests.helpers import start_extensions as start
from tests.test_inbound import plumb

BRANCH = "gitsync/tester"


@pytest.fixture
def override() -> dict[str, str]:
    """GitSync settings a test replaces (by parametrizing `override`); `{server}` is the git
    server's URL."""
    return {}


@pytest.fixture
def gitsync_settings(
    remote_url: str, git_server: GitHTTPServer, override: dict[str, str]
) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "remote_url": remote_url,
        "branch": BRANCH,
        "commit_delay_seconds": 0.2,
        "push_interval_seconds": 0.0,
        "retry_initial_seconds": 0.2,
        "retry_max_seconds": 1.0,
    }
    settings.update({k: v.format(server=git_server.url) for k, v in override.items()})
    return settings


@pytest.fixture
def gitsync_token(token: str) -> str | None:
    return token


@pytest.fixture
def jp_root_dir(workspace: Path) -> Path:
    return workspace


@pytest.fixture
def jp_server_config(
    gitsync_settings: dict[str, Any], gitsync_token: str | None, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    if gitsync_token is None:
        monkeypatch.delenv("GITSYNC_TOKEN", raising=False)
    else:
        monkeypatch.setenv("GITSYNC_TOKEN", gitsync_token)
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_gitsync": True},
            "allow_unauthenticated_access": False,
        },
        "GitSync": gitsync_settings,
    }


async def status(jp_fetch: Any) -> dict[str, Any]:
    response = await jp_fetch("gitsync", "status")
    return json.loads(response.body)


async def state_is(jp_fetch: Any, *states: str) -> dict[str, Any] | None:
    current = await status(jp_fetch)
    return current if current["state"] in states else None


def remote_tip(git_server: GitHTTPServer, remote: str) -> str | None:
    return ref_or_none(git_server.repo_path(remote), f"refs/heads/{BRANCH}")


async def test_a_save_through_the_contents_api_reaches_the_remote(
    jp_serverapp: Any,
    jp_fetch: Any,
    events: list[dict[str, Any]],
    workspace: Path,
    git_server: GitHTTPServer,
    remote: str,
    token: str,
    jp_logging_stream: Any,
) -> None:
    before = user_git_state(workspace, BRANCH)
    await start(jp_serverapp)
    await async_wait_until(lambda: state_is(jp_fetch, "synced"), what="start-up")
    notebook = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    await jp_fetch(
        "api",
        "contents",
        "saved.ipynb",
        method="PUT",
        body=json.dumps({"type": "notebook", "format": "json", "content": notebook}),
    )
    tip = await async_wait_until(lambda: remote_tip(git_server, remote), what="the push")
    saved = show(git_server.repo_path(remote), tip, "saved.ipynb")
    assert saved is not None and json.loads(saved)["nbformat"] == 4
    current = await async_wait_until(lambda: state_is(jp_fetch, "synced"), what="synced")
    assert current["head"] == current["remote_head"] == tip
    assert current["branch"] == BRANCH
    assert current["remote_url"] == git_server.repo_url(remote)
    assert current["error"] is None and current["unpushed_commits"] == 0
    assert user_git_state(workspace, BRANCH) == before

    # every state change went out on the event bus, validated against our schema
    states = [e["state"] for e in events]
    assert {"pending", "snapshotting", "pushing", "synced"} <= set(states)
    assert all(e["previous_state"] for e in events)

    # the token is nowhere: not in .git, the API, the events, or the server log
    answers = json.dumps(current) + json.dumps(await await_sync(jp_fetch))
    assert token not in answers
    assert token not in json.dumps(events)
    assert token not in jp_logging_stream.getvalue()
    for path in (workspace / ".git").rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


async def await_sync(jp_fetch: Any) -> dict[str, Any]:
    response = await jp_fetch("gitsync", "sync", method="POST", body="")
    return json.loads(response.body)


async def test_sync_now_answers_when_the_push_is_done(
    jp_serverapp: Any, jp_fetch: Any, workspace: Path, git_server: GitHTTPServer, remote: str
) -> None:
    await start(jp_serverapp)
    (workspace / "quick.txt").write_text("quick")
    answer = await await_sync(jp_fetch)
    assert answer["head"] == remote_tip(git_server, remote) == answer["remote_head"]
    assert show(git_server.repo_path(remote), answer["head"], "quick.txt") == b"quick"


async def test_endpoints_need_authentication(jp_serverapp: Any, jp_fetch: Any) -> None:
    await start(jp_serverapp)
    for method, path in (("GET", "status"), ("POST", "sync")):
        with pytest.raises(HTTPClientError) as caught:
            await jp_fetch(
                "gitsync",
                path,
                method=method,
                body="" if method == "POST" else None,
                headers={"Authorization": ""},
            )
        assert caught.value.code == 403


async def test_status_requests_are_not_user_activity(jp_serverapp: Any, jp_fetch: Any) -> None:
    await start(jp_serverapp)
    await jp_fetch("api", "contents")  # a real API request counts
    before = jp_serverapp.web_app.settings["api_last_activity"]
    for _ in range(3):
        await status(jp_fetch)
    assert jp_serverapp.web_app.settings["api_last_activity"] == before


@pytest.mark.parametrize("gitsync_token", [None])
async def test_no_token_means_sign_in_required_and_local_snapshots(
    jp_serverapp: Any, jp_fetch: Any, workspace: Path, git_server: GitHTTPServer, remote: str
) -> None:
    await start(jp_serverapp)
    (workspace / "a.txt").write_text("a")

    async def kept_locally() -> dict[str, Any] | None:
        current = await state_is(jp_fetch, "auth-required")
        return current if current and current["unpushed_commits"] >= 1 else None

    current = await async_wait_until(kept_locally, what="auth-required with a local snapshot")
    assert current["error"]["kind"] == "no-token"  # nobody gave one: not a refusal
    assert "refused" not in current["error"]["message"]
    assert "Sign in to GitHub" in current["error"]["message"]
    assert remote_tip(git_server, remote) is None
    local = ref_or_none(workspace, f"refs/heads/{BRANCH}")
    assert local is not None and show(workspace, local, "a.txt") == b"a"


@pytest.mark.parametrize("gitsync_token", ["wrong-token"])
async def test_a_wrong_token_is_a_clear_error_and_the_server_stays_up(
    jp_serverapp: Any, jp_fetch: Any, workspace: Path
) -> None:
    await start(jp_serverapp)
    (workspace / "a.txt").write_text("a")

    async def snapshot_kept() -> dict[str, Any] | None:
        current = await state_is(jp_fetch, "auth-required")
        return current if current and current["unpushed_commits"] == 1 else None

    current = await async_wait_until(snapshot_kept, what="auth-required with the snapshot kept")
    assert "refused the token" in current["error"]["message"]
    assert "wrong-token" not in json.dumps(current)
    assert (await jp_fetch("api", "status")).code == 200


@pytest.mark.parametrize(
    ("override", "state", "kind", "words"),
    [
        (
            {"remote_url": "http://127.0.0.1:9/nothing-listens.git"},
            "offline",
            "network",
            "could not be reached",
        ),
        (
            {"remote_url": "{server}/no-such-repo.git"},
            "error",
            "not-found",
            "does not lead to a git repository",
        ),
        ({"branch": "bad..branch"}, "error", "config", "not a valid git branch name"),
    ],
    ids=["unreachable", "not-a-repository", "invalid-branch"],
)
async def test_bad_settings_give_a_clear_error(
    jp_serverapp: Any, jp_fetch: Any, workspace: Path, state: str, kind: str, words: str
) -> None:
    before = {p: p.read_bytes() for p in workspace.iterdir() if p.is_file()}
    await start(jp_serverapp)
    current = await async_wait_until(lambda: state_is(jp_fetch, state), what=state)
    assert current["error"]["kind"] == kind
    assert words in current["error"]["message"]
    assert (await jp_fetch("api", "status")).code == 200
    listing = await jp_fetch("api", "contents")
    assert json.loads(listing.body)["type"] == "directory"
    assert {p: p.read_bytes() for p in workspace.iterdir() if p.is_file()} == before


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITSYNC_REMOTE_URL", "http://127.0.0.1:1/r.git")
    monkeypatch.setenv("GITSYNC_BRANCH", "work")
    monkeypatch.setenv("GITSYNC_COMMIT_DELAY", "0.5")
    monkeypatch.setenv("GITSYNC_PUSH_INTERVAL", "30")
    monkeypatch.setenv("GITSYNC_ENABLED", "false")
    app = GitSync()
    assert app.remote_url == "http://127.0.0.1:1/r.git"
    assert app.branch == "work"
    assert app.commit_delay_seconds == 0.5
    assert app.push_interval_seconds == 30
    assert app.enabled is False
    monkeypatch.delenv("GITSYNC_BRANCH")
    monkeypatch.setenv("JUPYTERHUB_USER", "ada lovelace")
    assert GitSync().branch == "gitsync/ada-lovelace"
    assert os.environ["GITSYNC_ENABLED"] == "false"
    monkeypatch.setenv("GITSYNC_EXCLUDES", "*.tmp, scratch ,")
    excludes = GitSync().excludes
    assert excludes[-2:] == ["*.tmp", "scratch"] and ".ipynb_checkpoints" in excludes
    monkeypatch.setenv("GITSYNC_COMMIT_DELAY", "soon")  # unusable: the default, not a crash
    assert GitSync().commit_delay_seconds == 2.0
    monkeypatch.setenv("GITSYNC_MAX_RESCUE_BRANCHES", "5")
    assert GitSync().max_rescue_branches == 5
    monkeypatch.setenv("GITSYNC_MAX_RESCUE_BRANCHES", "many")
    assert GitSync().max_rescue_branches == 20


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,  # deeper than Python's parser goes
        b'{"branch": "\\ud800"}',  # a lone surrogate
        b"[]",
        b'{"branch": 1}',
        b"not json",
        b"",
    ],
)
async def test_a_malformed_resume_request_is_a_400_and_nothing_changes(
    jp_serverapp: Any, jp_fetch: Any, workspace: Path, body: bytes
) -> None:
    await start(jp_serverapp)
    await async_wait_until(lambda: state_is(jp_fetch, "synced"), what="start-up")
    before = user_git_state(workspace, BRANCH)
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("gitsync", "resume", method="POST", body=body)
    assert caught.value.code == 400
    assert caught.value.response is not None
    assert "branch" in json.loads(caught.value.response.body)["message"]
    assert (await status(jp_fetch))["state"] == "synced"
    assert user_git_state(workspace, BRANCH) == before


async def test_the_branch_list_survives_any_commit(
    jp_serverapp: Any, jp_fetch: Any, git_server: GitHTTPServer, remote: str
) -> None:
    """Anyone who can push writes the commits the list shows: dates past year 9999 or none a
    parser reads, a bogus encoding, invalid UTF-8, a megabyte of message."""
    bare = git_server.repo_path(remote)
    tree = plumb(bare, "rev-parse", "main^{tree}")
    odd = {
        "far-future": b"committer X <x@example.org> 253402300800 +0000\n\nfuture\n",
        "no-date": b"committer X <x@example.org> not-a-date +0000\n\nundated\n",
        "bogus-encoding": b"committer X <x@example.org> 1700000000 +0000\n"
        b"encoding no-such-encoding\n\n\xff\xfe not UTF-8\n",
        "huge-message": b"committer X <x@example.org> 1700000000 +0000\n\n" + b"x" * 1_000_000,
    }
    for name, rest in odd.items():
        raw = f"tree {tree}\nauthor X <x@example.org> 1700000000 +0000\n".encode() + rest
        commit = plumb(
            bare, "hash-object", "-t", "commit", "-w", "--literally", "--stdin", stdin=raw
        )
        plumb(bare, "update-ref", f"refs/heads/{name}", commit)
    await start(jp_serverapp)
    response = await jp_fetch("gitsync", "branches")
    listed = {b["name"]: b for b in json.loads(response.body)["branches"]}
    assert set(odd) <= set(listed)
    assert listed["far-future"]["last_snapshot_at"] is None
    assert len(listed["huge-message"]["message"]) <= 300
    assert "not UTF-8" in listed["bogus-encoding"]["message"]
    workspace = Path(jp_serverapp.root_dir)
    assert git(workspace, "for-each-ref", "refs/gitsync/fetched/") == ""  # pruned after use


@pytest.mark.parametrize(
    "body",
    [b"", b"[]", b'{"name": 1}', b'{"name": "\\ud800"}', b'{"name": "gitsync/nobody-rescue-1"}'],
)
async def test_deleting_a_rescue_branch_that_is_not_one_is_a_400_in_words(
    jp_serverapp: Any, jp_fetch: Any, workspace: Path, body: bytes
) -> None:
    await start(jp_serverapp)
    await async_wait_until(lambda: state_is(jp_fetch, "synced"), what="start-up")
    before = user_git_state(workspace, BRANCH)
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("gitsync", "rescues", "delete", method="POST", body=body)
    assert caught.value.code == 400
    assert caught.value.response is not None
    message = json.loads(caught.value.response.body)["message"]
    assert "name" in message or "no rescue branch" in message
    assert (await status(jp_fetch))["state"] == "synced"
    assert user_git_state(workspace, BRANCH) == before
