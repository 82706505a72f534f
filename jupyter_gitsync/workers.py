"""The engine's two worker threads: one for git work on the workspace (snapshots, checkouts,
merges) and one for the network (list, fetch, push), the latter within deadlines.

Each is a daemon thread that runs blocking calls in order; the engine awaits their results on
the event loop. Daemon, and not a ThreadPoolExecutor, because Python joins every executor
thread at exit: a call stuck on a silent remote would keep the process alive after shutdown.
A worker whose call outlived its deadline is `retire`d and a new one takes over; the old thread
ends when its call returns.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .errors import DeadlineExceeded
from .watch import Watch

log = logging.getLogger(__name__)
T = TypeVar("T")

_Item = tuple[Callable[..., Any], tuple[Any, ...], asyncio.AbstractEventLoop, asyncio.Future[Any]]


class Worker:
    """One daemon thread running blocking calls in the order they were asked for."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on this thread and return (or raise) what it does."""
        return await self.submit(fn, *args)

    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Queue `fn(*args)`; the future settles with its outcome. Cancelling the future does
        not stop the call: its outcome is then dropped."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((fn, args, loop, future))
        return future

    def retire(self) -> None:
        """Take no more calls; the thread ends after the one it is running."""
        self._queue.put(None)

    def _main(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, args, loop, future = item
            try:
                result = fn(*args)
            except BaseException as exc:  # handed to the awaiting coroutine
                _deliver(loop, future, None, exc)
            else:
                _deliver(loop, future, result, None)


def _deliver(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    result: Any,
    error: BaseException | None,
) -> None:
    def settle() -> None:
        if future.done():
            return  # the caller stopped waiting
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    if loop.is_closed():
        return
    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the loop closed in between
        log.debug("a worker result arrived after the event loop closed")


class NetworkLane:
    """The network thread, with deadlines: a call that moves no data for `stall_seconds`,
    runs longer than `total_seconds`, or outlives `stop_deadline()` is cancelled, its thread
    retired (it ends when the library returns), and a fresh thread takes the next call.

    While a call runs, `meanwhile()` does whatever local work is due and says when it next
    needs to run (seconds on the monotonic clock); `wake` set means new work may be due.
    """

    def __init__(
        self,
        name: str,
        stall_seconds: float,
        total_seconds: float,
        stop_deadline: Callable[[], float],
    ) -> None:
        self.name = name
        self.stall_seconds = stall_seconds
        self.total_seconds = total_seconds
        self._stop_deadline = stop_deadline
        self._worker = Worker(name)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the network thread without a deadline of ours (for calls with
        timeouts of their own)."""
        return await self._worker.run(fn, *args)

    async def run(
        self,
        fn: Callable[..., T],
        *args: Any,
        meanwhile: Callable[[], Awaitable[float]],
        wake: asyncio.Event,
    ) -> T:
        """Run `fn(*args, watch)` within the deadlines; raise DeadlineExceeded at one."""
        watch = Watch()
        call = self._worker.submit(fn, *args, watch)
        while not call.done():
            now = time.monotonic()
            deadline = min(
                watch.last_activity + self.stall_seconds,
                watch.started + self.total_seconds,
                self._stop_deadline(),
            )
            if now >= deadline:
                call.cancel()
                raise self._abandon(watch, now)
            next_local = await meanwhile()
            now = time.monotonic()
            if next_local <= now or call.done():
                continue
            wake.clear()
            waker: asyncio.Future[Any] = asyncio.ensure_future(wake.wait())
            pending: set[asyncio.Future[Any]] = {call, waker}
            timeout = min(deadline, next_local) - now
            await asyncio.wait(pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            waker.cancel()
        return call.result()

    def _abandon(self, watch: Watch, now: float) -> DeadlineExceeded:
        if now >= self._stop_deadline():
            reason = "The server is stopping; the remote did not answer in time."
        elif now >= watch.started + self.total_seconds:
            reason = f"The remote took longer than {self.total_seconds:g} s."
        else:
            reason = f"The remote stopped answering (nothing for {self.stall_seconds:g} s)."
        watch.cancel(reason)
        self._worker.retire()
        self._worker = Worker(self.name)
        return DeadlineExceeded(reason)

    def retire(self) -> None:
        self._worker.retire()
