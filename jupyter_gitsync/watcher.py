"""Turns watchdog's filesystem events into a set of changed workspace-relative paths.

It knows nothing of git: the engine drains the set when the workspace has been quiet long enough.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

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
    """Watches the workspace recursively (inotify on Linux) and fills a ChangeSet."""

    def __init__(self, root: Path, excludes: Iterable[str], changes: ChangeSet) -> None:
        self._root = root
        self._handler = _Handler(root, tuple(excludes), changes)
        self._alarm = _OverflowAlarm(changes)
        self._observer: Observer | None = None  # type: ignore[valid-type]

    def start(self) -> None:
        """Start watching; events arrive on watchdog's own thread."""
        for name in _WATCHDOG_LOGGERS:
            logging.getLogger(name).addHandler(self._alarm)
        observer = Observer()
        observer.schedule(self._handler, str(self._root), recursive=True)
        observer.daemon = True
        observer.start()
        self._observer = observer

    def stop(self) -> None:
        """Stop watching and wait for watchdog's thread to end."""
        for name in _WATCHDOG_LOGGERS:
            logging.getLogger(name).removeHandler(self._alarm)
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
