"""The engine's two worker threads: one for git work on the workspace (snapshots, checkouts,
merges) and one for the network (list, fetch, push).

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
from collections.abc import Callable
from typing import Any, TypeVar

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
