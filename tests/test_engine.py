"""The sync engine end to end against the real git HTTP server (no Jupyter server here)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jupyter_gitsync.auth import Credentials
from jupyter_gitsync.engine import EngineConfig, SyncEngine
from jupyter_gitsync.state import State
from tests.gitserver import GitHTTPServer
from tests.helpers import MutableToken, async_wait_until, git, ref_or_none, show, user_git_state


@pytest.fixture
def make_engine(workspace: Path, remote_url: str, token: str) -> Callable[..., Any]:
    engines: list[SyncEngine] = []

    def make(**overrides: Any) -> tuple[SyncEngine, list[dict[str, Any]], MutableToken]:
        source = MutableToken(overrides.pop("token", token))
        settings: dict[str, Any] = {
            "workspace": workspace,
            "branch": "gitsync/test",
            "remote_url": remote_url,
            "commit_delay_seconds": 0.3,
            "push_interval_seconds": 0.0,
            "retry_initial_seconds": 0.2,
            "retry_max_seconds": 1.0,
        }
        settings.update(overrides)
        events: list[dict[str, Any]] = []
        engine = SyncEngine(EngineConfig(**settings), Credentials([source]), events.append)
        engines.append(engine)
        return engine, events, source

    return make


def remote_tip(server: GitHTTPServer, remote: str, branch: str = "gitsync/test") -> str | None:
    return ref_or_none(server.repo_path(remote), f"refs/heads/{branch}")


async def test_saves_in_one_quiet_period_make_one_snapshot(
    make_engine, workspace: Path, git_server: GitHTTPServer, remote: str
) -> None:
    engine, events, _ = make_engine(commit_delay_seconds=0.5)
    before = user_git_state(workspace, "gitsync/test")
    await engine.start()
    await async_wait_until(lambda: engine.status.state == State.SYNCED, what="start-up")
    for i in range(5):
        (workspace / "analysis.ipynb").write_text(json.dumps({"cells": [i]}))
    await async_wait_until(lambda: remote_tip(git_server, remote), what="the push")
    await async_wait_until(lambda: engine.status.state == State.SYNCED, what="synced")
    tip = remote_tip(git_server, remote)
    assert tip is not None
    base = git(workspace, "rev-parse", "HEAD")
    snapshots = git(git_server.repo_path(remote), "rev-list", "--first-parent", tip, f"^{base}")
    assert len(snapshots.splitlines()) == 1
    assert show(git_server.repo_path(remote), tip, "analysis.ipynb") == b'{"cells": [4]}'
    assert engine.status.head == engine.status.remote_head == tip
    assert engine.status.last_synced_at is not None
    assert user_git_state(workspace, "gitsync/test") == before
    states = [e["state"] for e in events]
    for expected in ("pending", "snapshotting", "pushing", "synced"):
        assert expected in states
    await engine.stop(5)


async def test_remote_down_then_back(
    make_engine, workspace: Path, git_server: GitHTTPServer, remote: str
) -> None:
    engine, _, _ = make_engine()
    await engine.start()
    await async_wait_until(lambda: engine.status.state == State.SYNCED, what="start-up")
    git_server.stop()
    (workspace / "offline.txt").write_text("written while offline")
    await async_wait_until(lambda: engine.status.state == State.OFFLINE, what="offline")
    assert engine.status.error is not None and engine.status.error["kind"] == "network"
    assert engine.status.unpushed_commits == 1
    assert engine.status.head is not None  # the snapshot is kept locally
    git_server.start()
    await async_wait_until(lambda: engine.status.state == State.SYNCED, what="recovery")
    tip = remote_tip(git_server, remote)
    assert show(git_server.repo_path(remote), tip, "offline.txt") == b"written while offline"
    assert engine.status.error is None
    await engine.stop(5)


async def test_server_errors_are_retried(
    make_engine, workspace: Path, git_server: GitHTTPServer, remote: str
) -> None:
    engine, _, _ = make_engine()
    git_server.fail_status = 500
    await engine.start()
    (workspace / "a.txt").write_text("a")
    await async_wait_until(lambda: engine.status.state == State.OFFLINE, what="offline")
    git_server.fail_status = None
    await async_wait_until(lambda: remote_tip(git_server, remote), what="the push")
    await engine.stop(5)


async def test_a_rate_limit_is_retried_after_the_minute_it_asks_for_and_sync_now_still_works(
    make_engine, workspace: Path, git_server: GitHTTPServer, remote: str
) -> None:
    """429 (GitHub's secondary rate limits): offline, in words that say a minute, and not
    retried by itself before that minute, however short the back-off (0.2 s here); the
    snapshots stay, and they go out once the remote lets them."""
    engine, _, _ = make_engine()
    await engine.start()
    await async_wait_until(lambda: engine.status.state == State.SYNCED, what="start-up")
    git_server.fail_status = 429
    (workspace / "a.txt").write_text("a")
    await async_wait_until(lambda: engine.status.state == State.OFFLINE, what="offline")
    assert engine.status.error is not None and "in a minute" in engine.status.error["message"]
    refused = git_server.count(429)
    (workspace / "b.txt").write_text("b")  # snapshots go on meanwhile
    await async_wait_until(lambda: engine.status.unpushed_commits == 2, what="2nd snapshot")
    assert git_server.count(429) == refused  # the back-off (0.2 s) did not retry it
    git_server.fail_status = None
    status = await engine.sync_now()  # the user may always try at once
    assert status["state"] == "synced"
    assert show(git_server.repo_path(remote), status["head"], "b.txt") == b"b"
    await engine.stop(5)


async def test_wrong_token_waits_for_a_new_one(
    make_engine, workspace: Path, git_server: GitHTTPServer, remote: str, token: str
) -> None:
    engine, events, source = make_engine(token=token[::-1])
    await engine.start()
    (workspace / "a.txt").write_text("a")
    await async_wait_until(
        lambda: engine.status.state == State.AUTH_REQUIRED and engine.status.unpushed_commits == 1,
        what="auth-required with the first snapshot kept",
    )
    refused = git_server.count(401, with_credentials=True)
    (workspace / "b.txt").write_text("b")  # snapshots go on while signed out
    await async_wait_until(lambda: engine.status.unpushed_commits == 2, what="2nd snapshot")
    assert engine.status.state == State.AUTH_REQUIRED
    assert git_server.count(401, with_credentials=True) == refused  # not retried by itself
    assert remote_tip(git_server, remote) is None

    source.value = token
    engine.credentials.changed()
    await engine.sync_now()
    await async_wait_until(lambda: engine.status.state == State.SYNCED, what="synced")
    tip = remote_tip(git_server, remote)
    assert show(git_server.repo_path(remote), tip, "a.txt") == b"a"
    assert show(git_server.repo_path(remote), tip, "b.txt") == b"b"
    assert token not in json.dumps(events) and token[::-1] not in json.dumps(events)
    await engine.stop(5)


async def test_stop_flushes_changes_still_in_the_quiet_period(
    make_engine, workspace: Path, git_server: GitHTTPServer, remote: str
) -> None:
    engine, _, _ = make_engine(commit_delay_seconds=60, push_interval_seconds=60)
    await engine.start()
    await async_wait_until(lambda: engine.status.state == State.SYNCED, what="start-up")
    (workspace / "last.txt").write_text("the last save")
    await engine.stop(10)
    tip = remote_tip(git_server, remote)
    assert tip is not None
    assert show(git_server.repo_path(remote), tip, "last.txt") == b"the last save"


async def test_sync_now_skips_the_quiet_period(
    make_engine, workspace: Path, git_server: GitHTTPServer, remote: str
) -> None:
    engine, _, _ = make_engine(commit_delay_seconds=60)
    await engine.start()
    await async_wait_until(lambda: engine.status.state == State.SYNCED, what="start-up")
    (workspace / "now.txt").write_text("now")
    status = await engine.sync_now()
    tip = remote_tip(git_server, remote)
    assert status["head"] == status["remote_head"] == tip
    assert show(git_server.repo_path(remote), tip, "now.txt") == b"now"
    await engine.stop(5)


async def test_disabled_and_nothing_to_sync_to(tmp_path: Path, make_engine) -> None:
    engine, _, _ = make_engine(enabled=False)
    await engine.start()
    await async_wait_until(lambda: engine.status.state == State.DISABLED, what="disabled")
    plain = tmp_path / "plain"
    plain.mkdir()
    engine, _, _ = make_engine(workspace=plain, remote_url=None)
    await engine.start()
    await async_wait_until(lambda: engine.status.state == State.DISABLED, what="disabled")
    assert not (plain / ".git").exists()  # not ours to turn into a repository


async def test_invalid_branch_is_an_error_state(make_engine) -> None:
    engine, events, _ = make_engine(branch="no..dots")
    await engine.start()
    await async_wait_until(lambda: engine.status.state == State.ERROR, what="error")
    assert engine.status.error == {
        "kind": "config",
        "message": "'no..dots' is not a valid git branch name.",
    }
    assert events[-1]["state"] == "error"


def _notebook(*sources: str) -> str:
    cells = [
        {"cell_type": "code", "execution_count": None, "id": f"cell{i}", "metadata": {},
         "outputs": [], "source": source}
        for i, source in enumerate(sources)
    ]  # fmt: skip
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def _cell_sources(content: bytes | None) -> list[str]:
    assert content is not None
    return ["".join(c["source"]) for c in json.loads(content)["cells"]]


async def test_two_sessions_on_one_branch_merge_and_keep_both_versions(
    tmp_path: Path, clone_into: Callable[[Path], Path], git_server: GitHTTPServer,
    remote: str, remote_url: str, token: str,
) -> None:  # fmt: skip
    def engine_in(name: str) -> SyncEngine:
        config = EngineConfig(
            workspace=clone_into(tmp_path / name), branch="gitsync/shared",
            remote_url=remote_url, commit_delay_seconds=60, push_interval_seconds=0,
        )  # fmt: skip
        return SyncEngine(config, Credentials([MutableToken(token)]))

    a, b = engine_in("a"), engine_in("b")
    wa, wb = a.config.workspace, b.config.workspace
    await a.start()
    await async_wait_until(lambda: a.status.state == State.SYNCED, what="A started")
    (wa / "nb.ipynb").write_text(_notebook("x = 1", "y = 2"))
    (wa / "notes.txt").write_text("start\n")
    await a.sync_now()
    await b.start()
    await async_wait_until(lambda: b.status.state == State.SYNCED, what="B restored A's work")
    assert (wb / "notes.txt").read_text() == "start\n"

    # both edit: different cells of one notebook, their own files, and one file in common
    (wa / "nb.ipynb").write_text(_notebook("x = 100", "y = 2"))
    (wa / "from-a.txt").write_text("A\n")
    (wa / "notes.txt").write_text("A's notes\n")
    await a.sync_now()
    (wb / "nb.ipynb").write_text(_notebook("x = 1", "y = 200"))
    (wb / "from-b.txt").write_text("B\n")
    (wb / "notes.txt").write_text("B's notes\n")
    status = await b.sync_now()

    bare = git_server.repo_path(remote)
    tip = ref_or_none(bare, "refs/heads/gitsync/shared")
    assert status["head"] == status["remote_head"] == tip
    assert _cell_sources(show(bare, tip, "nb.ipynb")) == ["x = 100", "y = 200"]
    assert show(bare, tip, "from-a.txt") == b"A\n" and show(bare, tip, "from-b.txt") == b"B\n"
    # B's modified file was never overwritten; A's version is kept on a rescue branch
    assert (wb / "notes.txt").read_text() == "B's notes\n"
    assert (wb / "from-a.txt").read_text() == "A\n"  # A's other work arrived here
    notice = status["notice"]
    assert notice["paths"] == ["notes.txt"] and notice["branch"] in notice["message"]
    assert show(bare, f"refs/heads/{notice['branch']}", "notes.txt") == b"A's notes\n"
    # Sync now goes both ways: A, with nothing new of its own, brings in B's snapshots
    status = await a.sync_now()
    assert status["head"] == status["remote_head"] == tip
    assert (wa / "from-b.txt").read_text() == "B\n"
    assert _cell_sources((wa / "nb.ipynb").read_bytes()) == ["x = 100", "y = 200"]
    await a.stop(10)
    await b.stop(10)


async def test_consecutive_saves_go_out_at_once_until_the_burst_is_spent(
    make_engine, workspace: Path, git_server: GitHTTPServer, remote: str
) -> None:
    """Start-up talks to the remote but pushes nothing, so it spends nothing; saves then go
    out at once while the burst lasts, and the refill rate holds back the one after."""
    engine, _, _ = make_engine(push_interval_seconds=3600, push_burst=2)
    await engine.start()
    await async_wait_until(lambda: engine.status.state == State.SYNCED, what="start-up")
    bare = git_server.repo_path(remote)
    for name in ("first.txt", "second.txt"):
        (workspace / name).write_text(name)
        await async_wait_until(
            lambda name=name: show(bare, "refs/heads/gitsync/test", name), what=f"{name} pushed"
        )
    (workspace / "third.txt").write_text("third save")
    await async_wait_until(
        lambda: engine.status.state == State.UNPUSHED and engine.status.unpushed_commits == 1,
        what="the third held back by the refill rate",
    )
    assert show(bare, "refs/heads/gitsync/test", "third.txt") is None
    await engine.stop(10)  # shutdown pushes what is left, whatever the bucket says
    assert show(bare, "refs/heads/gitsync/test", "third.txt") == b"third save"
