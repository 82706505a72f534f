"""Restore is a gate, and the network never blocks a snapshot: the engine against the real git
server when the remote is down at start, the token arrives late, or the remote hangs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_gitsync import restore
from jupyter_gitsync.auth import Credentials
from jupyter_gitsync.engine import EngineConfig, SyncEngine
from jupyter_gitsync.state import State
from tests.gitserver import GitHTTPServer
from tests.helpers import SNAPSHOT_BRANCH as BRANCH
from tests.helpers import MutableToken, SilentRemote, async_wait_until, files, git, show

COMMIT_DELAY_SECONDS = 0.3


@pytest.fixture
def engines(jp_asyncio_loop: Any) -> Iterator[list[SyncEngine]]:
    running: list[SyncEngine] = []
    yield running
    for engine in running:
        jp_asyncio_loop.run_until_complete(engine.stop(5))


@pytest.fixture
def start(engines: list[SyncEngine], remote_url: str) -> Callable[..., Any]:
    async def start(
        workspace: Path, token: str | None, **overrides: Any
    ) -> tuple[SyncEngine, MutableToken]:
        source = MutableToken(token)
        settings: dict[str, Any] = {
            "workspace": workspace,
            "branch": BRANCH,
            "remote_url": remote_url,
            "commit_delay_seconds": COMMIT_DELAY_SECONDS,
            "push_interval_seconds": 0.0,
            "retry_initial_seconds": 0.2,
            "retry_max_seconds": 1.0,
            "network_connect_timeout_seconds": 2.0,
            "network_stall_timeout_seconds": 2.0,
        }
        settings.update(overrides)
        engine = SyncEngine(EngineConfig(**settings), Credentials([source]))
        engines.append(engine)
        await engine.start()
        return engine, source

    return start


def tip_files(bare: Path, branch: str = BRANCH) -> dict[str, bytes]:
    """Every file of `branch`'s tip in the bare repository, with its bytes."""
    names = git(bare, "ls-tree", "-r", "--name-only", f"refs/heads/{branch}").splitlines()
    return {name: show(bare, f"refs/heads/{branch}", name) or b"" for name in names}


def synced_with(engine: SyncEngine, bare: Path, path: str) -> bool:
    """Synced, and `path` is on the remote's tip of the branch."""
    return engine.status.state == State.SYNCED and bool(show(bare, f"refs/heads/{BRANCH}", path))


def history(bare: Path, branch: str = BRANCH) -> list[str]:
    return git(bare, "rev-list", f"refs/heads/{branch}").splitlines()


def make_workspace(kind: str, tmp_path: Path, clone_into: Callable[[Path], Path]) -> Path:
    """An empty directory, or a fresh clone at the launch commit (repo2docker/Binder)."""
    if kind == "clone":
        return clone_into(tmp_path / "launched")
    empty = tmp_path / "empty"
    empty.mkdir()
    return empty


@pytest.mark.parametrize("kind", ["empty", "clone"])
async def test_remote_down_at_start_then_back_loses_no_earlier_file(
    kind: str,
    tmp_path: Path,
    earlier_session: Path,
    clone_into: Callable[[Path], Path],
    git_server: GitHTTPServer,
    remote: str,
    start: Callable[..., Any],
    token: str,
) -> None:
    bare = git_server.repo_path(remote)
    before = tip_files(bare)
    earlier_tip = history(bare)[0]
    workspace = make_workspace(kind, tmp_path, clone_into)
    git_server.stop()
    engine, _ = await start(workspace, token)
    await async_wait_until(lambda: engine.status.state == State.OFFLINE, what="offline")
    (workspace / "new.txt").write_text("written while the remote was down\n")
    await async_wait_until(lambda: engine.status.head is not None, what="a local snapshot")
    assert engine.status.state == State.OFFLINE  # the snapshot waits behind the gate
    assert history(bare)[0] == earlier_tip  # nothing reached the remote meanwhile

    git_server.start()
    await async_wait_until(
        lambda: (
            engine.status.state == State.SYNCED and show(bare, f"refs/heads/{BRANCH}", "new.txt")
        ),
        what="restore, merge and push once the remote is back",
    )
    after = tip_files(bare)
    assert after == {**before, "new.txt": b"written while the remote was down\n"}
    assert earlier_tip in history(bare)  # continued, never rewound
    on_disk = files(workspace)
    for path, content in before.items():
        assert on_disk[path] == content, path
    assert on_disk["new.txt"] == b"written while the remote was down\n"


async def test_a_token_that_arrives_after_start_restores_before_anything_is_pushed(
    tmp_path: Path,
    earlier_session: Path,
    clone_into: Callable[[Path], Path],
    git_server: GitHTTPServer,
    remote: str,
    start: Callable[..., Any],
    token: str,
) -> None:
    """A private remote, no token at start (the hub's auth_state or a sign-in comes later),
    and the branch fixed by GITSYNC_BRANCH."""
    bare = git_server.repo_path(remote)
    before = tip_files(bare)
    workspace = clone_into(tmp_path / "launched")
    engine, source = await start(workspace, None)
    await async_wait_until(lambda: engine.status.state == State.AUTH_REQUIRED, what="sign-in")
    refused = git_server.count(401)
    (workspace / "new.txt").write_text("before signing in\n")
    await async_wait_until(lambda: engine.status.head is not None, what="a local snapshot")
    # a restore refused for want of a token is not retried by itself (back-off is 0.2 s)
    assert git_server.count(401) == refused

    source.value = token
    engine.credentials.changed()
    await async_wait_until(
        lambda: (
            engine.status.state == State.SYNCED and show(bare, f"refs/heads/{BRANCH}", "new.txt")
        ),
        what="the restore and the push after sign-in",
    )
    assert tip_files(bare) == {**before, "new.txt": b"before signing in\n"}
    assert (workspace / "data" / "x.csv").read_bytes() == before["data/x.csv"]


async def test_a_new_login_branch_is_taken_in_before_anything_is_pushed_to_it(
    tmp_path: Path,
    earlier_session: Path,
    clone_into: Callable[[Path], Path],
    git_server: GitHTTPServer,
    remote: str,
    start: Callable[..., Any],
    token: str,
) -> None:
    """Signing in after start moves syncing to gitsync/<login>, which an earlier session
    filled: its files arrive here and stay on its tip."""
    bare = git_server.repo_path(remote)
    theirs = tip_files(bare)
    workspace = clone_into(tmp_path / "launched")
    engine, source = await start(workspace, None, branch="gitsync/jovyan")
    await async_wait_until(lambda: engine.status.state == State.AUTH_REQUIRED, what="sign-in")
    (workspace / "new.txt").write_text("mine\n")
    await async_wait_until(lambda: engine.status.head is not None, what="a local snapshot")

    source.value = token
    engine.credentials.changed()
    await engine.adopt_branch(BRANCH)  # what signing in does once the login is known
    await async_wait_until(
        lambda: (
            engine.status.state == State.SYNCED and show(bare, f"refs/heads/{BRANCH}", "new.txt")
        ),
        what="the login branch restored, merged and pushed",
    )
    assert tip_files(bare) == {**theirs, "new.txt": b"mine\n"}
    assert (workspace / "data" / "x.csv").read_bytes() == theirs["data/x.csv"]
    assert engine.status.branch == BRANCH


async def test_a_hung_remote_never_delays_a_snapshot_and_stop_is_bounded(
    workspace: Path,
    git_server: GitHTTPServer,
    remote: str,
    start: Callable[..., Any],
    token: str,
) -> None:
    """A remote that takes the request and never answers (a stalled proxy) while a push is
    in flight: saves are still snapshotted within the commit delay, stop returns by its
    deadline, and the next start pushes what was kept."""
    bare = git_server.repo_path(remote)
    engine, _ = await start(workspace, token, network_stall_timeout_seconds=30.0)
    await async_wait_until(lambda: engine.status.state == State.SYNCED, what="start-up")
    git_server.delay_seconds = 3600.0  # from now on it answers nothing
    (workspace / "first.txt").write_text("first\n")
    await async_wait_until(lambda: engine.status.state == State.PUSHING, what="a hung push")
    (workspace / "second.txt").write_text("second\n")
    await async_wait_until(
        lambda: engine.status.head and show(workspace, engine.status.head, "second.txt"),
        timeout=COMMIT_DELAY_SECONDS + 1.0,
        what="the second save snapshotted while the push hangs",
    )
    started = time.monotonic()
    await engine.stop(2.0)
    assert time.monotonic() - started < 2.0 + 2.0
    assert show(workspace, "refs/heads/" + BRANCH, "second.txt") == b"second\n"

    git_server.delay_seconds = 0.0
    await start(workspace, token)
    await async_wait_until(
        lambda: show(bare, f"refs/heads/{BRANCH}", "second.txt"), what="pushed at the next start"
    )
    assert show(bare, f"refs/heads/{BRANCH}", "first.txt") == b"first\n"


async def test_a_silent_remote_at_start_gives_up_at_the_stall_timeout_and_keeps_saving(
    workspace: Path, start: Callable[..., Any], token: str
) -> None:
    silent = SilentRemote()
    try:
        engine, _ = await start(workspace, token, remote_url=silent.url("project"))
        (workspace / "a.txt").write_text("a\n")
        await async_wait_until(
            lambda: engine.status.head and show(workspace, engine.status.head, "a.txt"),
            timeout=COMMIT_DELAY_SECONDS + 1.0,
            what="a snapshot while the restore hangs",
        )
        offline = await async_wait_until(
            lambda: engine.status_json()["error"] if engine.status.state == State.OFFLINE else None,
            what="the restore given up on",
        )
        assert offline["kind"] == "network" and "stopped answering" in offline["message"]
        assert silent.connections >= 1
    finally:
        silent.close()


async def test_an_unexpected_failure_is_a_state_with_a_retry_not_the_end(
    workspace: Path,
    earlier_session: Path,
    git_server: GitHTTPServer,
    remote: str,
    start: Callable[..., Any],
    token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug or a library's surprise in the restore (here: the first take-in raises) shows
    as an error in plain words, keeps snapshots going, and is retried."""
    real_take_in = restore.take_in
    calls: list[int] = []

    def flaky(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("surprise")
        return real_take_in(*args)

    monkeypatch.setattr(restore, "take_in", flaky)
    bare = git_server.repo_path(remote)
    engine, _ = await start(workspace, token)
    failed = await async_wait_until(
        lambda: engine.status_json()["error"] if engine.status.state == State.ERROR else None,
        what="the failure shown",
    )
    assert "failed unexpectedly (RuntimeError: surprise)" in failed["message"]
    (workspace / "meanwhile.txt").write_text("saved while the restore failed\n")
    await async_wait_until(
        lambda: synced_with(engine, bare, "meanwhile.txt"), what="the retry, then the push"
    )
    assert (workspace / "data" / "x.csv").exists()  # the restore did happen in the end


async def test_switching_to_another_remote_pushes_everything_there(
    workspace: Path,
    git_server: GitHTTPServer,
    remote: str,
    start: Callable[..., Any],
    token: str,
) -> None:
    """After a switch (a fork made without its branches, or a remote where the branch was
    deleted), what the old remote had is not taken for what the new one has."""
    engine, _ = await start(workspace, token)
    (workspace / "a.txt").write_text("a\n")
    await async_wait_until(lambda: synced_with(engine, git_server.repo_path(remote), "a.txt"))
    git_server.create_repo("elsewhere", {"README.md": b"# Project\n"})
    await engine.set_remote(git_server.repo_url("elsewhere"))
    elsewhere = git_server.repo_path("elsewhere")
    await async_wait_until(lambda: synced_with(engine, elsewhere, "a.txt"), what="pushed there")
    assert engine.status.remote_url == git_server.repo_url("elsewhere")
