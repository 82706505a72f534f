# ruff: noqa: F811
"""When the kernel refuses inotify (the per-user limits that every session of a uid on a node
shares), the watcher says so, the engine polls, and no save is lost.

The refusals are made where the kernel makes them: the watcher's calls of inotify_init and
inotify_add_watch fail with the errno the kernel gives at the limits (EMFILE, ENOSPC), so its
own handling of them runs, for the root, for folders below it and for folders that appear
later."""

from __future__ import annotations

import ctypes
import errno
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jupyter_gitsync import _inotify, filters
from jupyter_gitsync.state import State, Watching
from jupyter_gitsync.watcher import ChangeSet, Poller, Watcher, WatchLimit
from tests.gitserver import GitHTTPServer
from tests.helpers import async_wait_until, files, git, show, wait_until

# make_engine is test_engine's fixture; the tests' parameters of that name are how pytest hands
# it over, which ruff takes for redefinitions.
from tests.test_engine import make_engine, remote_tip  # noqa: F401

_real_add_watch = _inotify.inotify_add_watch


@pytest.fixture
def refuse_watches(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[str], bool]], list[str]]:
    """Make inotify_add_watch fail as at the watch limit for the paths `refused(path)` picks;
    returns the list of paths refused so far."""

    def install(refused: Callable[[str], bool]) -> list[str]:
        seen: list[str] = []

        def add_watch(fd: int, path: bytes, mask: int) -> int:
            if refused(os.fsdecode(path)):
                seen.append(os.fsdecode(path))
                ctypes.set_errno(errno.ENOSPC)
                return -1
            return int(_real_add_watch(fd, path, mask))

        monkeypatch.setattr(_inotify, "inotify_add_watch", add_watch)
        return seen

    return install


@pytest.fixture
def no_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make inotify_init fail as at the instance limit."""

    def init() -> int:
        ctypes.set_errno(errno.EMFILE)
        return -1

    monkeypatch.setattr(_inotify, "inotify_init", init)


def named(name: str) -> Callable[[str], bool]:
    """Refuse the directory `name` wherever it is, and everything below it."""
    return lambda path: name in Path(path).parts


# -- the watcher ------------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    for folder in ("notebooks", "data/raw"):
        (tmp_path / folder).mkdir(parents=True)
    return tmp_path


def start_watcher(root: Path) -> tuple[Watcher, ChangeSet, list[WatchLimit]]:
    limits: list[WatchLimit] = []
    changes = ChangeSet(lambda: None)
    watcher = Watcher(root, filters.DEFAULT_EXCLUDES, changes, limits.append)
    watcher.start()  # never raises for a limit
    return watcher, changes, limits


def seen(changes: ChangeSet, path: str) -> bool:
    return path in changes.peek(10_000)[0]


def test_no_instance_is_reported_once_with_the_sysctl_to_raise(
    tree: Path, no_instance: None, caplog: pytest.LogCaptureFixture
) -> None:
    watcher, _, limits = start_watcher(tree)
    try:
        assert [limit.sysctl for limit in limits] == ["fs.inotify.max_user_instances"]
        assert watcher.limit == limits[0]
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "sysctl -w fs.inotify.max_user_instances=" in warnings[0]
    finally:
        watcher.stop()


def test_a_refused_watch_keeps_the_watches_that_work(
    tree: Path, refuse_watches: Any, caplog: pytest.LogCaptureFixture
) -> None:
    refused = refuse_watches(named("data"))
    watcher, changes, limits = start_watcher(tree)
    try:
        assert any(path.endswith("/data") for path in refused)
        assert [limit.sysctl for limit in limits] == ["fs.inotify.max_user_watches"]
        (tree / "notebooks" / "a.ipynb").write_text("{}")
        (tree / "top.txt").write_text("top")
        wait_until(lambda: seen(changes, "notebooks/a.ipynb") and seen(changes, "top.txt"))
        (tree / "data" / "more").mkdir()  # refused again: still one report, one warning
        (tree / "notebooks" / "b.ipynb").write_text("{}")
        wait_until(lambda: seen(changes, "notebooks/b.ipynb"))
        assert len(limits) == 1
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "sysctl -w fs.inotify.max_user_watches=" in warnings[0]
    finally:
        watcher.stop()


def test_a_refusal_below_a_watched_directory_is_reported(tree: Path, refuse_watches: Any) -> None:
    """watchdog passes over this refusal in silence (the new directory is just not watched)."""
    refused = refuse_watches(named("later"))
    watcher, _, limits = start_watcher(tree)
    try:
        assert limits == [] and watcher.limit is None  # everything was watched at start
        (tree / "notebooks" / "later").mkdir()
        wait_until(lambda: limits, what="the refusal of notebooks/later")
        assert refused and limits[0].sysctl == "fs.inotify.max_user_watches"
        (tree / "later").mkdir()  # a new top-level directory: watched on its own, refused too
        wait_until(lambda: any(p == str(tree / "later") for p in refused), what="later/")
        assert len(limits) == 1
    finally:
        watcher.stop()


def test_the_poller_records_each_change_once(tmp_path: Path) -> None:
    changes = ChangeSet(lambda: None)
    poller = Poller(tmp_path, changes)
    differing = {"big.bin", "a.txt"}
    (tmp_path / "big.bin").write_bytes(b"x" * 10)  # keeps differing: it is not synced
    (tmp_path / "a.txt").write_text("a")
    assert poller.poll(lambda: differing) == 2
    assert changes.drain() == {"big.bin", "a.txt"}
    differing.discard("a.txt")  # snapshotted
    assert poller.poll(lambda: differing) == 0 and not changes
    (tmp_path / "big.bin").write_bytes(b"y" * 20)  # saved again
    assert poller.poll(lambda: differing) == 1 and changes.drain() == {"big.bin"}
    (tmp_path / "big.bin").unlink()
    assert poller.poll(lambda: differing) == 1 and changes.drain() == {"big.bin"}
    differing.add("a.txt")  # changed after its snapshot, even to the same stat: recorded
    assert poller.poll(lambda: differing) == 1 and changes.drain() == {"a.txt"}


# -- the engine, against the real git server ---------------------------------------------------


def remote_file(server: GitHTTPServer, remote: str, path: str) -> bytes | None:
    tip = remote_tip(server, remote)
    return None if tip is None else show(server.repo_path(remote), tip, path)


def remote_files(server: GitHTTPServer, remote: str) -> dict[str, bytes]:
    bare = server.repo_path(remote)
    tip = remote_tip(server, remote)
    assert tip is not None
    listed = git(bare, "ls-tree", "-r", "--name-only", tip).splitlines()
    return {p: show(bare, tip, p) or b"" for p in listed}


# Polls every 0.3 s; the safety rescan (which would find every change too) never comes.
POLLING = {"poll_interval_seconds": 0.3, "rescan_interval_seconds": 3600.0}


async def save_and_see_pushed(
    workspace: Path, server: GitHTTPServer, remote: str, path: str, content: str
) -> None:
    (workspace / path).write_text(content)
    await async_wait_until(
        lambda: remote_file(server, remote, path) == content.encode(), what=f"{path} pushed"
    )


async def test_refused_watches_are_polled_and_no_save_is_lost(
    make_engine: Any,
    workspace: Path,
    git_server: GitHTTPServer,
    remote: str,
    refuse_watches: Any,
) -> None:
    """data/ (there at start) and notebooks/later/ (made after start, below a watched
    directory: watchdog says nothing) cannot be watched; every save in them is pushed while
    the engine runs, one after the other, and the rest is still watched."""
    (workspace / "data").mkdir()
    (workspace / "data" / "old.csv").write_text("a,b\n")
    (workspace / "notebooks").mkdir()
    refuse_watches(lambda path: bool({"data", "later"} & set(Path(path).parts)))
    engine, events, _ = make_engine(**POLLING)
    await engine.start()
    await async_wait_until(lambda: engine.status.state == State.SYNCED, what="start-up")
    assert engine.status.watching == Watching.POLLING
    message = engine.status.watching_message or ""
    assert "fs.inotify.max_user_watches" in message and "0.3 s" in message
    assert "polling" in [e["watching"] for e in events]  # and the event stream said so
    for i in range(3):
        await save_and_see_pushed(workspace, git_server, remote, "data/old.csv", f"a,b\n{i},{i}\n")
    (workspace / "notebooks" / "later" / "deeper").mkdir(parents=True)
    for i in range(3):
        await save_and_see_pushed(
            workspace, git_server, remote, "notebooks/later/deeper/n.ipynb", f'{{"v": {i}}}'
        )
    await save_and_see_pushed(workspace, git_server, remote, "watched.txt", "still watched")
    (workspace / "data" / "old.csv").unlink()
    await async_wait_until(
        lambda: remote_file(git_server, remote, "data/old.csv") is None, what="the deletion"
    )
    await async_wait_until(lambda: engine.status.state == State.SYNCED, what="synced")
    assert remote_files(git_server, remote) == files(workspace)  # nothing lost, nothing extra
    await engine.stop(5)


async def test_a_refusal_after_start_switches_to_polling(
    make_engine: Any,
    workspace: Path,
    git_server: GitHTTPServer,
    remote: str,
    refuse_watches: Any,
) -> None:
    refuse_watches(named("later"))
    engine, _, _ = make_engine(**POLLING)
    await engine.start()
    await async_wait_until(lambda: engine.status.state == State.SYNCED, what="start-up")
    assert engine.status.watching == Watching.EVENTS
    (workspace / "later").mkdir()  # a new top-level directory; the save comes before any poll
    (workspace / "later" / "first.txt").write_text("written at once")
    await async_wait_until(lambda: engine.status.watching == Watching.POLLING, what="polling")
    assert "fs.inotify.max_user_watches" in (engine.status.watching_message or "")
    await async_wait_until(
        lambda: remote_file(git_server, remote, "later/first.txt") == b"written at once",
        what="the save made before polling began",
    )
    await save_and_see_pushed(workspace, git_server, remote, "later/second.txt", "then this")
    await engine.stop(5)


async def test_no_inotify_instance_polls_the_whole_workspace_quietly(
    make_engine: Any, workspace: Path, git_server: GitHTTPServer, remote: str, no_instance: None
) -> None:
    """Nothing is watched at all. Polling finds every save; while nothing changes it is not
    seen in the status, even with a file that keeps differing because it is not synced."""
    engine, events, _ = make_engine(max_file_size_bytes=100, **POLLING)
    (workspace / "big.bin").write_bytes(b"x" * 1000)  # too large: skipped, differs for good
    await engine.start()
    await async_wait_until(lambda: engine.status.state == State.SYNCED, what="start-up")
    assert engine.status.watching == Watching.POLLING
    assert "fs.inotify.max_user_instances" in (engine.status.watching_message or "")
    assert [s["path"] for s in engine.status.skipped] == ["big.bin"]
    await save_and_see_pushed(workspace, git_server, remote, "a.txt", "one")
    (workspace / "sub" / "dir").mkdir(parents=True)
    await save_and_see_pushed(workspace, git_server, remote, "sub/dir/b.txt", "two")
    await async_wait_until(lambda: engine.status.state == State.SYNCED, what="synced")

    assert engine._snaps is not None
    polls = 0
    differing = engine._snaps.differing

    def counted() -> set[str]:
        nonlocal polls
        polls += 1
        return differing()

    engine._snaps.differing = counted  # type: ignore[method-assign]
    before = len(events)
    await async_wait_until(lambda: polls >= 5, what="five polls")
    assert events[before:] == []  # no snapshot, no state change: polling is quiet
    await engine.stop(5)


async def test_when_watching_works_the_status_says_events(
    make_engine: Any, workspace: Path, git_server: GitHTTPServer, remote: str
) -> None:
    engine, events, _ = make_engine(**POLLING)
    assert engine.status_json()["watching"] == "off"  # not started yet
    await engine.start()
    await async_wait_until(lambda: engine.status.state == State.SYNCED, what="start-up")
    status = engine.status_json()
    assert status["watching"] == "events" and status["watching_message"] is None
    (workspace / "nested").mkdir()
    await save_and_see_pushed(workspace, git_server, remote, "nested/c.txt", "by events")
    assert engine.status.watching == Watching.EVENTS
    assert "polling" not in [e["watching"] for e in events]
    await engine.stop(5)
