"""watchdog's inotify observer, told to report the watches the kernel refuses.

watchdog gives each observer one inotify instance (`InotifyFD`) that all its watches share.
When the kernel refuses a watch below a directory watched recursively (the per-user limit
`fs.inotify.max_user_watches` is reached, ENOSPC), watchdog passes over it in silence, both at
start and for a directory that appears later: that directory is then simply not watched, and
saves in it would wait for the next safety rescan. This instance reports every refusal before
watchdog decides what to do with it. It is the only place that relies on watchdog's inotify
classes; where they cannot be imported (not Linux, or another watchdog), the plain `Observer`
is used and refusals show only where watchdog raises them.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from watchdog.observers.api import BaseObserver
from watchdog.observers.inotify import InotifyEmitter
from watchdog.observers.inotify_c import CallbackId, InotifyFD, Mask, WatchCallback, WatchDescriptor

Refused = Callable[[OSError, str], None]  # (the error, the path it was refused for)


class _ReportingInotifyFD(InotifyFD):
    def __init__(self, refused: Refused) -> None:
        self._refused = refused
        super().__init__()  # inotify_init: EMFILE when the user has no instance left

    def add_callback(
        self, path: bytes, mask: Mask, callback: WatchCallback, id_: CallbackId
    ) -> WatchDescriptor:
        try:
            return super().add_callback(path, mask, callback, id_)
        except OSError as exc:
            self._refused(exc, os.fsdecode(path))
            raise  # watchdog decides: raised for the top of a watch, passed over below it


class ReportingObserver(BaseObserver):
    """watchdog's InotifyObserver (one inotify instance for all its watches) that calls
    `refused` for every watch the kernel refuses, from whichever thread asked for it. Raises
    OSError (EMFILE) when no inotify instance can be had."""

    def __init__(self, refused: Refused) -> None:
        self._inotify_fd = _ReportingInotifyFD(refused)
        self._inotify_fd.start()
        super().__init__(InotifyEmitter, inotify_fd=self._inotify_fd)

    def on_thread_stop(self) -> None:
        super().on_thread_stop()
        self._inotify_fd.stop()
        self._inotify_fd.join()
