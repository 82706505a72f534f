"""`Watch`: one blocking network operation as seen from outside, so that a deadline can end it.

The transport and `wire` take one and touch it whenever data moves; `workers.NetworkLane`
cancels it at a deadline. Apart from `workers` because those blocking modules import no
asyncio: the command line's `restore` runs them without an event loop, and importing asyncio
was a tenth of its start-up.
"""

from __future__ import annotations

import threading
import time

from .errors import DeadlineExceeded


class Watch:
    """One network operation as seen from outside: when data last moved, and a way to cancel
    it (the operation raises DeadlineExceeded at its next callback)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.last_activity = self.started
        self._cancelled = threading.Event()
        self.reason = ""

    def touch(self) -> None:
        """Called from the worker thread whenever data moves."""
        self.last_activity = time.monotonic()
        if self._cancelled.is_set():
            raise DeadlineExceeded(self.reason)

    @property
    def cancelled(self) -> bool:
        """Whether the operation should stop (for callers that poll rather than call back)."""
        return self._cancelled.is_set()

    def cancel(self, reason: str) -> None:
        self.reason = reason
        self._cancelled.set()
