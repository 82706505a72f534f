"""Turns watchdog's filesystem events into a set of changed workspace-relative paths.

It knows nothing of git: the engine drains the set when the workspace has been quiet long enough.
Where the kernel refuses inotify (all single-user pods of a node usually share one uid, and
with it that uid's inotify limits), the watcher says so once, and a `Poller` fed by the
engine's cheap scans stands in for the events it cannot have.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watchdog import events
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.utils import UnsupportedLibcError

from . import filters

log = logging.getLogger(__name__)

# What the watcher asks the kernel for: every change, and not a file opened or closed unwritten.
# Those two come with every read (a snapshot reads each file it stores; Jupyter and kernels read
# files all the time) and say nothing changed; watchdog would handle each in Python on its own
# threads, which took the GIL from the server's event loop for 100+ ms while a first snapshot
# read 50k files, and filled the kernel's event queue.
CHANGE_EVENTS: list[type[FileSystemEvent]] = [
    events.FileCreatedEvent,
    events.DirCreatedEvent,
    events.FileModifiedEvent,  # with IN_ATTRIB: a mode change (the executable bit)
    events.DirModifiedEvent,
    events.FileMovedEvent,
    events.DirMovedEvent,
    events.FileDeletedEvent,
    events.DirDeletedEvent,
    events.FileClosedEvent,  # closed after writing
    *(
        getattr(events, name)
        for name in ("FileAttribEvent", "DirAttribEvent")
        if hasattr(events, name)
    ),
]


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


@dataclass(frozen=True)
class WatchLimit:
    """A per-user inotify limit the kernel enforced, in words for the status and the log."""

    sysctl: str  # the setting that raises it
    refused: str  # what the kernel refused, in plain words


# What inotify_init (EMFILE) and inotify_add_watch (ENOSPC) fail with at the per-user limits
# (watchdog raises them as OSError "inotify instance/watch limit reached").
LIMITS = {
    errno.EMFILE: WatchLimit(
        "fs.inotify.max_user_instances", "no inotify instance was left for this user"
    ),
    errno.ENOSPC: WatchLimit("fs.inotify.max_user_watches", "this user's inotify watches ran out"),
}


class Poller:
    """Stands in for inotify where it cannot watch. Each `poll` runs a scan that lists the paths
    differing from the last snapshot (the engine's, cheap thanks to its stat cache) and records
    in the ChangeSet those whose stat changed since the previous poll: a file that keeps
    differing because it is not synced (too large, a secret) is recorded once, not every time,
    while a new save to it is recorded again."""

    def __init__(self, root: Path, changes: ChangeSet) -> None:
        self._root = root
        self._changes = changes
        self._seen: dict[str, tuple[int, ...] | None] = {}  # path -> its stat at the last poll

    def poll(self, scan: Callable[[], Iterable[str]]) -> int:
        """Scan, record what is new, and say how many paths that was."""
        seen = {path: self._stat(path) for path in scan()}
        new = [
            path for path, st in seen.items() if path not in self._seen or self._seen[path] != st
        ]
        self._seen = seen
        if new:
            self._changes.add(new)
        return len(new)

    def _stat(self, path: str) -> tuple[int, ...] | None:
        try:
            st = os.lstat(self._root / path)
        except OSError:
            return None  # gone: recorded as a change once
        return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_mode)


class Watcher:
    """Watches the workspace (inotify on Linux) and fills a ChangeSet.

    `.git` and excluded top-level directories are not watched at all: every snapshot writes
    objects into `.git`, and watching them would cost each one a trip through watchdog's
    Python threads (measured: they held the GIL ~60% of the time during a large first
    snapshot, stalling the Jupyter event loop). So the root is watched on its own, and each
    top-level directory recursively; directories that appear later are added as they come.
    With very many top-level directories one recursive watch of the root is used instead, to
    stay within the per-user limit of inotify instances.

    When the kernel refuses an inotify instance or a watch (see `LIMITS`), the watches that
    work are kept, `on_limit` is called once (from whichever thread met the refusal), and one
    warning says which limit it was and how to raise it. Which directories went unwatched is
    not tracked: watchdog passes over refusals below a watched directory, and watches come and
    go with directories, so the engine then polls the whole workspace (`Poller`).
    """

    MAX_SEPARATE_WATCHES = 48

    def __init__(
        self,
        root: Path,
        excludes: Iterable[str],
        changes: ChangeSet,
        on_limit: Callable[[WatchLimit], None] = lambda limit: None,
    ) -> None:
        self._root = root
        self._excludes = tuple(excludes)
        self._handler = _Handler(root, self._excludes, changes)
        self._alarm = _OverflowAlarm(changes)
        self._observer: BaseObserver | None = None
        self._trees: dict[str, Any] = {}  # top-level directory -> its watch
        self._on_limit = on_limit
        self._lock = threading.Lock()
        self.limit: WatchLimit | None = None  # the first limit the kernel enforced

    def start(self) -> None:
        """Start watching; events arrive on watchdog's own threads. Never raises for a limit:
        what cannot be watched is reported through `on_limit`."""
        for name in _WATCHDOG_LOGGERS:
            logging.getLogger(name).addHandler(self._alarm)
        try:
            observer = _new_observer(self._refused)
        except OSError as exc:
            if exc.errno not in LIMITS:
                raise
            self._refused(exc, str(self._root))  # no inotify instance: nothing is watched
            return
        observer.daemon = True
        observer.start()  # watches scheduled from now on start at once, and raise if refused
        self._observer = observer
        tops = [
            entry.path
            for entry in os.scandir(self._root)
            if entry.is_dir(follow_symlinks=False) and self._watchable(entry.name)
        ]
        if len(tops) > self.MAX_SEPARATE_WATCHES:
            self._schedule(self._handler, str(self._root), recursive=True)
        else:
            self._schedule(_RootHandler(self), str(self._root), recursive=False)
            for path in tops:
                self.watch_tree(path)

    def _schedule(self, handler: FileSystemEventHandler, path: str, recursive: bool) -> Any:
        """A watch of `path`, or None when it could not be had (gone again already, or refused:
        `_refused` has heard of a refusal by then)."""
        assert self._observer is not None
        try:
            return self._observer.schedule(
                handler, path, recursive=recursive, event_filter=CHANGE_EVENTS
            )
        except OSError as exc:
            self._refused(exc, path)  # once more if the observer reported it: said only once
            log.debug("not watching %s: %s", path, exc)
            return None

    def _refused(self, exc: OSError, path: str) -> None:
        """The kernel refused a watch of `path` (or the instance, for the root); from any
        thread, including watchdog's own while it holds its locks: only logs and notifies."""
        limit = LIMITS.get(exc.errno or 0)
        if limit is None:
            return  # not a limit: the directory went away, or cannot be read
        with self._lock:
            first, self.limit = self.limit is None, self.limit or limit
        if not first:
            return
        log.debug("gitsync: inotify refused %s: %s", path, exc)
        log.warning(
            "gitsync: %s (%s), so changes are found by scanning the workspace every few seconds"
            " instead of by inotify events. The limit is %s, shared by every process of this"
            " user on the machine; to raise it, as root on the host: sysctl -w %s=<higher>"
            " (and a file in /etc/sysctl.d/ to keep it).",
            limit.refused,
            exc.strerror or exc,
            limit.sysctl,
            limit.sysctl,
        )
        try:
            self._on_limit(limit)
        except Exception:
            log.exception("gitsync: could not switch to scanning")

    def _watchable(self, name: str) -> bool:
        return not filters.is_excluded(name, self._excludes)

    def watch_tree(self, path: str) -> None:
        """Watch a top-level directory and everything below it."""
        if self._observer is None or path in self._trees:
            return
        watch = self._schedule(self._handler, path, recursive=True)
        if watch is not None:
            self._trees[path] = watch

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


def _new_observer(refused: Callable[[OSError, str], None]) -> BaseObserver:
    """The inotify observer that reports refused watches, where there is one (see
    `_inotify`); the platform's own observer elsewhere."""
    try:
        from ._inotify import ReportingObserver
    except (ImportError, UnsupportedLibcError):
        observer: BaseObserver = Observer()
        return observer
    return ReportingObserver(refused)


class _RootHandler(FileSystemEventHandler):
    """Events directly in the workspace root: recorded like any other, and top-level
    directories that come and go get their own recursive watch."""

    def __init__(self, watcher: Watcher) -> None:
        self._watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        # Watch the directory that came before the change is recorded: once a change is
        # recorded (and the engine may drain it), what happens in that directory is seen.
        if event.is_directory:
            self._follow(event)
        self._watcher._handler.on_any_event(event)

    def _follow(self, event: FileSystemEvent) -> None:
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
