"""The watcher against a real directory tree (inotify)."""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_gitsync import _inotify, filters
from jupyter_gitsync.watcher import ChangeSet, Watcher
from tests.helpers import wait_until


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[Path, ChangeSet, list[int]]]:
    (tmp_path / ".git" / "objects").mkdir(parents=True)
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "node_modules").mkdir()
    wakeups: list[int] = []
    changes = ChangeSet(lambda: wakeups.append(1))
    watcher = Watcher(tmp_path, filters.DEFAULT_EXCLUDES, changes)
    watcher.start()
    yield tmp_path, changes, wakeups
    watcher.stop()


def seen(changes: ChangeSet, path: str) -> bool:
    return path in changes.peek(10_000)[0]


def test_changes_anywhere_are_recorded_and_wake_the_engine_once(watched) -> None:
    root, changes, wakeups = watched
    (root / "a.txt").write_text("a")
    (root / "notebooks" / "b.ipynb").write_text("{}")
    wait_until(lambda: seen(changes, "a.txt") and seen(changes, "notebooks/b.ipynb"))
    assert wakeups == [1]  # only the first change after a drain wakes the engine
    assert changes.drain() >= {"a.txt", "notebooks/b.ipynb"}
    (root / "a.txt").write_text("again")
    wait_until(lambda: seen(changes, "a.txt"))
    assert wakeups == [1, 1]


def _inotify_masks() -> list[int]:
    """The event mask of every inotify watch this process holds (from /proc/self/fdinfo)."""
    masks = []
    for info in Path("/proc/self/fdinfo").iterdir():
        try:
            text = info.read_text()
        except OSError:
            continue  # an fd closed meanwhile
        for line in text.splitlines():
            if line.startswith("inotify wd:"):
                fields = dict(part.split(":", 1) for part in line.split()[1:])
                masks.append(int(fields["mask"], 16))
    return masks


def test_reading_files_brings_no_events(watched) -> None:
    """The kernel is asked for changes only: not for a file opened, or closed unwritten, which
    every read brings (a snapshot reads every file it stores). Changes of every kind are still
    seen, a mode change among them."""
    root, changes, _ = watched
    masks = _inotify_masks()
    assert len(masks) >= 2  # the root, and the notebooks folder
    in_open, in_close_nowrite = 0x20, 0x10
    wanted = {"modify": 0x2, "attrib": 0x4, "close_write": 0x8, "moved": 0xC0, "create": 0x100,
              "delete": 0x200}  # fmt: skip
    for mask in masks:
        assert not mask & (in_open | in_close_nowrite), hex(mask)
        assert all(mask & bit == bit for bit in wanted.values()), hex(mask)

    script = root / "notebooks" / "run.sh"
    script.write_text("echo hi\n")
    wait_until(lambda: seen(changes, "notebooks/run.sh"))
    changes.drain()
    script.chmod(0o755)
    wait_until(lambda: seen(changes, "notebooks/run.sh"))


def test_folders_that_go_take_their_watches_with_them(watched) -> None:
    """Folders made and then deleted, or moved out of the workspace, leave no watch behind (a
    session that lived for days would otherwise run out of the user's inotify watches), and
    what happens in a folder moved out is not recorded."""
    root, changes, _ = watched
    outside = root.parent / f"{root.name}-outside"
    before = len(_inotify_masks())
    for i in range(30):
        (root / f"tmp{i}" / "deep").mkdir(parents=True)
    (root / "leaving" / "deep").mkdir(parents=True)
    wait_until(lambda: len(_inotify_masks()) == before + 62, what="the new folders watched")
    for i in range(30):
        (root / f"tmp{i}" / "deep").rmdir()
        (root / f"tmp{i}").rmdir()
    (root / "leaving").rename(outside)
    wait_until(lambda: seen(changes, "leaving"), what="the move away")
    wait_until(lambda: len(_inotify_masks()) == before, what="their watches gone")
    changes.drain()
    (outside / "deep" / "after.txt").write_text("outside the workspace now")
    (root / "sentinel.txt").write_text("after it")
    wait_until(lambda: seen(changes, "sentinel.txt"))
    assert changes.drain() == {"sentinel.txt"}


def test_a_linked_folder_is_recorded_and_not_followed(watched) -> None:
    """A symbolic link to a folder elsewhere is a change (git stores the link), and what
    happens in the folder it points to is not watched."""
    root, changes, _ = watched
    elsewhere = root.parent / f"{root.name}-elsewhere"
    elsewhere.mkdir()
    before = len(_inotify_masks())
    (root / "link").symlink_to(elsewhere, target_is_directory=True)
    wait_until(lambda: seen(changes, "link"), what="the link")
    changes.drain()
    (elsewhere / "inside.txt").write_text("not in the workspace")
    (root / "sentinel.txt").write_text("after it")
    wait_until(lambda: seen(changes, "sentinel.txt"))
    assert changes.drain() == {"sentinel.txt"}
    assert len(_inotify_masks()) == before


def test_a_process_with_many_open_files_still_watches(tmp_path: Path) -> None:
    """A server with many kernels and connections open: the watcher's descriptors number past
    1,024 (beyond what select() can wait on), and its events are still read."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip("needs a hard limit of 2,048 open files or more")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        changes = ChangeSet(lambda: None)
        watcher = Watcher(tmp_path, filters.DEFAULT_EXCLUDES, changes)
        watcher.start()
        try:
            (tmp_path / "a.txt").write_text("seen")
            wait_until(lambda: seen(changes, "a.txt"), what="a change")
        finally:
            watcher.stop()
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_git_and_excluded_directories_are_not_watched(watched) -> None:
    root, changes, _ = watched
    (root / ".git" / "objects" / "x").write_text("object")
    (root / "node_modules" / "m.js").write_text("js")
    (root / "notebooks" / ".ipynb_checkpoints").mkdir()
    (root / "notebooks" / ".ipynb_checkpoints" / "b-checkpoint.ipynb").write_text("{}")
    (root / "sentinel.txt").write_text("after the others")
    (root / "notebooks" / "sentinel.txt").write_text("after the others")
    wait_until(lambda: seen(changes, "sentinel.txt") and seen(changes, "notebooks/sentinel.txt"))
    recorded = changes.drain()
    assert not any(p.startswith((".git", "node_modules")) or "checkpoint" in p for p in recorded)


def test_a_directory_moved_in_is_watched_before_its_move_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Watching a directory that came takes a while (here: a slow kernel, 0.3 s a folder); its
    arrival is recorded only once it is watched, so a change in it right after the engine
    drained the arrival is never missed."""
    real = _inotify.Inotify._watch

    def slow(self: _inotify.Inotify, folder: str) -> bool:
        if folder.startswith("moved"):
            time.sleep(0.3)  # the attack: a slow watch, not a wait for anything
        return real(self, folder)

    monkeypatch.setattr(_inotify.Inotify, "_watch", slow)
    (tmp_path / "away").mkdir()
    changes = ChangeSet(lambda: None)
    watcher = Watcher(tmp_path, filters.DEFAULT_EXCLUDES, changes)
    watcher.start()
    try:
        (tmp_path / "away" / "deep").mkdir()
        os.rename(tmp_path / "away", tmp_path / "moved")
        wait_until(lambda: seen(changes, "moved"), what="the move")
        changes.drain()
        (tmp_path / "moved" / "deep" / "file.txt").write_text("new")
        wait_until(lambda: seen(changes, "moved/deep/file.txt"), what="a change right after")
    finally:
        watcher.stop()


def test_directories_that_appear_or_move_later_are_watched(watched) -> None:
    root, changes, _ = watched
    (root / "new").mkdir()
    wait_until(lambda: seen(changes, "new"), what="the new directory")
    (root / "new" / "deep").mkdir()
    (root / "new" / "deep" / "file.txt").write_text("x")
    wait_until(lambda: seen(changes, "new/deep/file.txt"), what="a file in it")
    (root / "new").rename(root / "renamed")
    wait_until(lambda: seen(changes, "renamed"), what="the move")
    changes.drain()
    (root / "renamed" / "deep" / "file.txt").write_text("changed")
    wait_until(lambda: seen(changes, "renamed/deep/file.txt"), what="a change after the move")


def test_an_inotify_overflow_asks_for_a_full_rescan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel's queue overflows for real: the reader is held while more changes happen
    than the queue holds, among them a folder made and a file in it. Once it reads again, the
    next snapshot is asked to scan everything, and the folder whose creation was lost is
    watched: a change in it afterwards is seen."""
    queue_events = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    held, holding = threading.Event(), threading.Event()
    real = _inotify.Inotify.handle

    def held_once(self: _inotify.Inotify, data: bytes) -> list[str]:
        if not holding.is_set():
            holding.set()
            assert held.wait(120)
        return real(self, data)

    monkeypatch.setattr(_inotify.Inotify, "handle", held_once)
    wakeups: list[int] = []
    changes = ChangeSet(lambda: wakeups.append(1))
    watcher = Watcher(tmp_path, filters.DEFAULT_EXCLUDES, changes)
    watcher.start()
    try:
        (tmp_path / "first.txt").write_text("the reader takes this and is held")
        wait_until(holding.is_set, what="the reader to be held")
        for i in range(queue_events // 2 + 100):  # 2 events at least each: more than fit
            (tmp_path / f"f{i}.txt").write_text("x")
        (tmp_path / "late").mkdir()
        (tmp_path / "late" / "inside.txt").write_text("made while events were lost")
        held.set()
        wait_until(lambda: changes.rescan, what="the overflow")
        assert changes.take_rescan()
        changes.drain()
        (tmp_path / "late" / "inside.txt").write_text("changed after")
        wait_until(lambda: seen(changes, "late/inside.txt"), what="a change in the late folder")
    finally:
        held.set()
        watcher.stop()


def test_peek_is_bounded() -> None:
    changes = ChangeSet(lambda: None)
    changes.add(f"f{i:05d}" for i in range(5000))
    listed, count = changes.peek(100)
    assert count == 5000 and len(listed) == 100 and listed == sorted(listed)
