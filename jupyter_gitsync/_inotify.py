"""The workspace's inotify watches, read on one thread a buffer of events at a time (Linux).

watchdog hands every event through three Python threads (its reader, an emitter per watch and
its dispatcher), each taking the GIL in turn: while a process wrote 2,000 files, the server's
event loop waited up to 30-80 ms for the GIL to come round, though the work itself took the
threads about 27 ms in all. Here one thread reads what the kernel has queued (up to 64 kB of
events), turns it into workspace-relative paths and hands them over in one call.

Each folder gets a watch of its own, so `.git` and excluded folders are never watched at any
depth. A folder that appears (made, or moved in) is watched, with what is below it, before its
path is handed over: once the engine has taken the path, what happens in the folder is seen. A
folder that goes (deleted, or moved away) loses its watches and those below it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import select
import struct
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

IN_MODIFY = 0x2
IN_ATTRIB = 0x4  # a mode change (the executable bit)
IN_CLOSE_WRITE = 0x8
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_Q_OVERFLOW = 0x4000  # the kernel's queue was full: events were lost
IN_IGNORED = 0x8000  # the watch is gone (its folder was deleted, or it was removed)
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_EXCL_UNLINK = 0x04000000
IN_ISDIR = 0x40000000

# Changes only: not a file opened, or closed unwritten, which every read brings.
CHANGES = (
    IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
)
_WATCH_MASK = CHANGES | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK
_GONE = IN_MOVED_FROM | IN_DELETE
_CAME = IN_MOVED_TO | IN_CREATE
_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then the name
_READ_BYTES = 64 * 1024

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


# The three system calls, as module functions so that tests can make them fail as the kernel
# does at its limits.
def inotify_init() -> int:
    return int(_libc.inotify_init1(os.O_CLOEXEC | os.O_NONBLOCK))


def inotify_add_watch(fd: int, path: bytes, mask: int) -> int:
    return int(_libc.inotify_add_watch(fd, path, mask))


def inotify_rm_watch(fd: int, wd: int) -> int:
    return int(_libc.inotify_rm_watch(fd, wd))


Refused = Callable[[OSError, str], None]  # (the error, the path it was refused for)


class Inotify:
    """One inotify instance watching every folder of `root` that `watched(relpath)` allows.

    `on_paths(paths)` gets the changed paths (relative to `root`, "/"-separated) of each
    buffer read, `on_overflow()` is called when the kernel dropped events, `refused(error,
    path)` for each watch the kernel refuses; all on the reader thread, except refusals met
    while `start` watches the tree. Raises OSError (EMFILE at the user's limit) when no
    instance can be had.
    """

    def __init__(
        self,
        root: Path,
        watched: Callable[[str], bool],
        on_paths: Callable[[list[str]], None],
        on_overflow: Callable[[], None],
        refused: Refused,
    ) -> None:
        self._root = os.fsencode(root)
        self._watched = watched
        self._on_paths = on_paths
        self._on_overflow = on_overflow
        self._refused = refused
        self._fd = inotify_init()
        if self._fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"inotify_init: {os.strerror(code)}")
        self._folders: dict[int, str] = {}  # watch descriptor -> its folder ("" for the root)
        self._stop_read, self._stop_write = os.pipe2(os.O_CLOEXEC)
        self._thread = threading.Thread(target=self._run, name="gitsync-inotify", daemon=True)

    def start(self) -> None:
        """Watch the tree, then read events on the reader thread."""
        self._watch_tree("")
        self._thread.start()

    def stop(self) -> None:
        """Stop reading and close the instance (the kernel drops its watches)."""
        if self._thread.is_alive():
            os.write(self._stop_write, b"x")
            self._thread.join(timeout=5)
        for fd in (self._fd, self._stop_read, self._stop_write):
            os.close(fd)

    # -- watches (from `start`, then only on the reader thread) ---------------------------------

    def _watch_tree(self, top: str) -> None:
        """Watch `top` and every folder below it that may be watched."""
        pending = [top]
        while pending:
            folder = pending.pop()
            if not self._watch(folder):
                continue
            try:
                entries = list(os.scandir(self._absolute(folder)))
            except OSError:
                continue  # gone again, or unreadable: nothing below it to watch
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    name = os.fsdecode(entry.name)
                    child = f"{folder}/{name}" if folder else name
                    if self._watched(child):
                        pending.append(child)

    def _watch(self, folder: str) -> bool:
        """Add one folder's watch; False if it could not be had."""
        wd = inotify_add_watch(self._fd, self._absolute(folder), _WATCH_MASK)
        if wd < 0:
            code = ctypes.get_errno()
            if code not in (errno.ENOENT, errno.ENOTDIR):  # not gone again: refused
                self._refused(OSError(code, os.strerror(code)), os.fsdecode(self._absolute(folder)))
            return False
        self._folders[wd] = folder  # the same folder seen again keeps its descriptor
        return True

    def _unwatch_below(self, folder: str) -> None:
        """Remove the watches of `folder` and of everything below it."""
        below = f"{folder}/"
        for wd, path in list(self._folders.items()):
            if path == folder or path.startswith(below):
                del self._folders[wd]
                inotify_rm_watch(self._fd, wd)  # fails harmlessly if the kernel dropped it

    def _absolute(self, folder: str) -> bytes:
        return os.path.join(self._root, os.fsencode(folder)) if folder else self._root

    # -- reading ------------------------------------------------------------------------------

    def _run(self) -> None:
        waiting = select.poll()  # not select(): a server's descriptors can number over 1,024
        waiting.register(self._fd, select.POLLIN)
        waiting.register(self._stop_read, select.POLLIN)
        while True:
            try:
                if any(fd == self._stop_read for fd, _ in waiting.poll()):
                    return
                data = os.read(self._fd, _READ_BYTES)
            except BlockingIOError:
                continue
            except OSError:
                log.exception("gitsync: cannot read inotify events; the safety rescan stands in")
                return
            try:
                paths = self.handle(data)
                if paths:
                    self._on_paths(paths)
            except Exception:  # the watcher must go on: the next rescan finds what was missed
                log.exception("gitsync: could not handle inotify events")

    def handle(self, data: bytes) -> list[str]:
        """The changed paths a buffer of events names, in order, after watching the folders
        that came in it."""
        paths: list[str] = []
        offset = 0
        while offset + _EVENT.size <= len(data):
            wd, mask, _, length = _EVENT.unpack_from(data, offset)
            start = offset + _EVENT.size
            name = data[start : start + length].rstrip(b"\0")
            offset = start + length
            if mask & IN_Q_OVERFLOW:
                self._watch_tree("")  # folders made meanwhile came unseen: watch them now
                self._on_overflow()
                continue
            folder = self._folders.get(wd)
            if mask & IN_IGNORED:
                self._folders.pop(wd, None)
                continue
            if folder is None or not name:  # a watch removed, or an event of the folder itself
                continue
            decoded = os.fsdecode(name)
            path = f"{folder}/{decoded}" if folder else decoded
            if not self._watched(path):
                continue
            if mask & IN_ISDIR:
                if mask & _GONE:
                    self._unwatch_below(path)
                elif mask & _CAME:
                    self._watch_tree(path)
                else:
                    continue  # a folder's own mode or times: git keeps no such thing
            paths.append(path)
        return paths
