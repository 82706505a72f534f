"""Turns watchdog's filesystem events into a set of changed workspace-relative paths.

It knows nothing of git: the engine drains the set when the workspace has been quiet long enough.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from . import filters

log = logging.getLogger(__name__)


class ChangeSet:
    """Paths changed since the last drain, with the time of the latest change; thread-safe."""

    def __init__(self, on_first_change: Callable[[], None]) -> None:
        self._lock = threading.Lock()
        self._paths: set[str] = set()
        self._on_first_change = on_first_change
        self.last_change = 0.0  # time.monotonic() of the latest change
        self.rescan = False

    def request_rescan(self) -> None:
        """Events were lost (the kernel's queue overflowed): the next snapshot scans it all."""
        with self._lock:
            was_empty = not self._paths and not self.rescan
            self.rescan = True
            self.last_change = time.monotonic()
        if was_empty:
            self._on_first_change()

    def take_rescan(self) -> bool:
        """Whether a full scan was asked for since the last call."""
        with self._lock:
            wanted, self.rescan = self.rescan, False
        return wanted

    def add(self, paths: Iterable[str]) -> None:
        """Record changed paths; the first change after a drain wakes the engine."""
        with self._lock:
            was_empty = not self._paths
            self._paths.update(paths)
            self.last_change = time.monotonic()
            notify = was_empty and bool(self._paths)
        if notify:
            self._on_first_change()

    def drain(self) -> set[str]:
        """Take every recorded path, leaving the set empty."""
        with self._lock:
            paths, self._paths = self._paths, set()
        return paths

    def peek(self, limit: int) -> tuple[list[str], int]:
        """Up to `limit` recorded paths (sorted) and how many there are, for the status; cheap
        even after a burst of 100k changes."""
        with self._lock:
            some = list(itertools.islice(self._paths, limit))
            count = len(self._paths)
        return sorted(some), count

    def __bool__(self) -> bool:
        with self._lock:
            return bool(self._paths) or self.rescan


class _Handler(FileSystemEventHandler):
    def __init__(self, root: Path, excludes: tuple[str, ...], changes: ChangeSet) -> None:
        self._root = str(root)
        self._excludes = excludes
        self._changes = changes

    def _relative(self, path: str | bytes) -> str | None:
        text = os.fsdecode(path)
        rel = os.path.relpath(text, self._root).replace(os.sep, "/")
        if rel == "." or rel.startswith("../") or filters.is_excluded(rel, self._excludes):
            return None
        return rel

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        if event.is_directory and event.event_type == "modified":
            return  # a directory's mtime changes with its entries, which have their own events
        paths = [event.src_path]
        dest = getattr(event, "dest_path", "")
        if dest:
            paths.append(dest)
        relative = [rel for rel in map(self._relative, paths) if rel is not None]
        if relative:
            self._changes.add(relative)


class _OverflowAlarm(logging.Handler):
    """watchdog only logs when the kernel's inotify queue overflows (events are lost then);
    this turns that log record into a request for a full rescan."""

    def __init__(self, changes: ChangeSet) -> None:
        super().__init__(logging.WARNING)
        self._changes = changes

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self._changes.request_rescan()


_WATCHDOG_LOGGERS = ("watchdog.observers.inotify_c", "watchdog.observers.inotify")


class Watcher:
    """Watches the workspace (inotify on Linux) and fills a ChangeSet.

    `.git` and excluded top-level directories are not watched at all: every snapshot writes
    objects into `.git`, and watching them would cost each one a trip through watchdog's
    Python threads (measured: they held the GIL ~60% of the time during a large first
    snapshot, stalling the Jupyter event loop). So the root is watched on its own, and each
    top-level directory recursively; directories that appear later are added as they come.
    With very many top-level directories one recursive watch of the root is used instead, to
    stay within the per-user limit of inotify instances.
    """

    MAX_SEPARATE_WATCHES = 48

    def __init__(self, root: Path, excludes: Iterable[str], changes: ChangeSet) -> None:
        self._root = root
        self._excludes = tuple(excludes)
        self._handler = _Handler(root, self._excludes, changes)
        self._alarm = _OverflowAlarm(changes)
        self._observer: Observer | None = None  # type: ignore[valid-type]
        self._trees: dict[str, Any] = {}  # top-level directory -> its watch

    def start(self) -> None:
        """Start watching; events arrive on watchdog's own threads."""
        for name in _WATCHDOG_LOGGERS:
            logging.getLogger(name).addHandler(self._alarm)
        observer = Observer()
        observer.daemon = True
        self._observer = observer
        tops = [
            entry.path
            for entry in os.scandir(self._root)
            if entry.is_dir(follow_symlinks=False) and self._watchable(entry.name)
        ]
        if len(tops) > self.MAX_SEPARATE_WATCHES:
            observer.schedule(self._handler, str(self._root), recursive=True)
        else:
            observer.schedule(_RootHandler(self), str(self._root), recursive=False)
            for path in tops:
                self.watch_tree(path)
        observer.start()

    def _watchable(self, name: str) -> bool:
        return not filters.is_excluded(name, self._excludes)

    def watch_tree(self, path: str) -> None:
        """Watch a top-level directory and everything below it."""
        if self._observer is None or path in self._trees:
            return
        try:
            self._trees[path] = self._observer.schedule(self._handler, path, recursive=True)
        except OSError as exc:  # gone again already, or out of inotify watches
            log.debug("not watching %s: %s", path, exc)

    def unwatch_tree(self, path: str) -> None:
        """Stop watching a top-level directory that was removed or moved away."""
        watch = self._trees.pop(path, None)
        if watch is not None and self._observer is not None:
            with contextlib.suppress(KeyError, OSError):
                self._observer.unschedule(watch)

    def stop(self) -> None:
        """Stop watching and wait for watchdog's threads to end."""
        for name in _WATCHDOG_LOGGERS:
            logging.getLogger(name).removeHandler(self._alarm)
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
            self._trees.clear()


class _RootHandler(FileSystemEventHandler):
    """Events directly in the workspace root: recorded like any other, and top-level
    directories that come and go get their own recursive watch."""

    def __init__(self, watcher: Watcher) -> None:
        self._watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        self._watcher._handler.on_any_event(event)
        if not event.is_directory:
            return
        source = os.fsdecode(event.src_path)
        if event.event_type in ("deleted", "moved"):
            self._watcher.unwatch_tree(source)
        target = os.fsdecode(getattr(event, "dest_path", "") or "")
        if event.event_type == "moved" and os.path.dirname(target) == str(self._watcher._root):
            source = target
        elif event.event_type != "created":
            return
        if self._watcher._watchable(os.path.basename(source)):
            self._watcher.watch_tree(source)
