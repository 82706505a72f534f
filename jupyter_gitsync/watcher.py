"""Turns the workspace's filesystem events into a set of changed workspace-relative paths.

It knows nothing of git: the engine drains the set when the workspace has been quiet long enough.
On Linux the events are read from inotify on one thread (`_inotify`); elsewhere watchdog's
observer for the platform stands in. Where the kernel refuses inotify (all single-user pods of a
node usually share one uid, and with it that uid's inotify limits), the watcher says so once,
and a `Poller` fed by the engine's cheap scans stands in for the events it cannot have.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

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
    """Watches the workspace and fills a ChangeSet.

    Every folder has a watch of its own (`_inotify`), so `.git` (which every snapshot writes
    into) and excluded folders are not watched at all, at any depth; folders that appear later
    are watched as they come, before their arrival is recorded.

    When the kernel refuses an inotify instance or a watch (see `LIMITS`), the watches that
    work are kept, `on_limit` is called once (from whichever thread met the refusal), and one
    warning says which limit it was and how to raise it. Which folders went unwatched is not
    tracked (watches come and go with folders), so the engine then polls the whole workspace
    (`Poller`). When the kernel's queue overflows (events were lost), the next snapshot scans
    the whole workspace.
    """

    def __init__(
        self,
        root: Path,
        excludes: Iterable[str],
        changes: ChangeSet,
        on_limit: Callable[[WatchLimit], None] = lambda limit: None,
    ) -> None:
        self._root = root
        self._excludes = tuple(excludes)
        self._changes = changes
        self._on_limit = on_limit
        self._lock = threading.Lock()
        self._watching: _Watching | None = None  # an `_inotify.Inotify`; watchdog elsewhere
        self.limit: WatchLimit | None = None  # the first limit the kernel enforced

    def start(self) -> None:
        """Start watching. Never raises for a limit: what cannot be watched is reported
        through `on_limit`."""
        try:
            from ._inotify import Inotify

            watching: _Watching = Inotify(
                self._root,
                self._watchable,
                self._changes.add,
                self._changes.request_rescan,
                self._refused,
            )
        except (ImportError, AttributeError):  # not Linux: no inotify in the C library
            watching = _PlatformObserver(self._root, self._watchable, self._changes)
        except OSError as exc:
            if exc.errno not in LIMITS:
                raise
            self._refused(exc, str(self._root))  # no inotify instance: nothing is watched
            return
        watching.start()
        self._watching = watching

    def _refused(self, exc: OSError, path: str) -> None:
        """The kernel refused a watch of `path` (or the instance, for the root); only logs and
        notifies."""
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

    def _watchable(self, relpath: str) -> bool:
        return not filters.is_excluded(relpath, self._excludes)

    def stop(self) -> None:
        """Stop watching and wait for the reading thread to end."""
        if self._watching is not None:
            self._watching.stop()
            self._watching = None


class _Watching(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


class _PlatformObserver:
    """watchdog's observer for platforms without inotify: one recursive watch of the root,
    its events filtered to changes and to paths that are not excluded."""

    def __init__(self, root: Path, watched: Callable[[str], bool], changes: ChangeSet) -> None:
        from watchdog import events
        from watchdog.observers import Observer

        class Handler(events.FileSystemEventHandler):
            def on_any_event(self, event: events.FileSystemEvent) -> None:
                if event.is_directory and event.event_type == "modified":
                    return
                named = [event.src_path, getattr(event, "dest_path", "")]
                relative = [
                    rel
                    for rel in (os.path.relpath(os.fsdecode(p), root) for p in named if p)
                    if not rel.startswith("..") and rel != "." and watched(rel.replace(os.sep, "/"))
                ]
                if relative:
                    changes.add(rel.replace(os.sep, "/") for rel in relative)

        self._observer = Observer()
        self._observer.daemon = True
        self._observer.schedule(Handler(), str(root), recursive=True)

    def start(self) -> None:
        self._observer.start()

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)
