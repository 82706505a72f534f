"""The worker threads and the network lane's deadlines, with blocking calls of our own (no git:
the lane does not know what it runs)."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from typing import Any

import pytest

from jupyter_gitsync.errors import DeadlineExceeded
from jupyter_gitsync.watch import Watch
from jupyter_gitsync.workers import NetworkLane, Worker


def lane(stall: float = 0.3, total: float = 60.0, stop: float = math.inf) -> NetworkLane:
    return NetworkLane("test-net", stall, total, lambda: stop)


async def nothing_due() -> float:
    return math.inf


async def test_a_worker_runs_calls_in_order_on_one_daemon_thread() -> None:
    worker = Worker("test-git")
    seen: list[tuple[int, str]] = []

    def record(n: int) -> int:
        seen.append((n, threading.current_thread().name))
        return n * 2

    assert await asyncio.gather(*(worker.run(record, n) for n in range(5))) == [0, 2, 4, 6, 8]
    assert [n for n, _ in seen] == [0, 1, 2, 3, 4]
    assert {name for _, name in seen} == {"test-git"}
    assert worker._thread.daemon  # never holds the process at exit
    with pytest.raises(ZeroDivisionError):
        await worker.run(lambda: 1 / 0)
    worker.retire()


async def test_a_silent_call_is_given_up_at_the_stall_deadline_and_a_fresh_thread_goes_on() -> None:
    release = threading.Event()
    net = lane(stall=0.3)
    threads: list[str] = []

    def silent(watch: Watch) -> None:
        threads.append(threading.current_thread().name + str(threading.get_ident()))
        release.wait(30)  # libgit2 blocked on a socket that never answers

    with pytest.raises(DeadlineExceeded, match="stopped answering"):
        await net.run(silent, meanwhile=nothing_due, wake=asyncio.Event())

    def answer(watch: Watch) -> str:
        threads.append(threading.current_thread().name + str(threading.get_ident()))
        return "answered"

    assert await net.run(answer, meanwhile=nothing_due, wake=asyncio.Event()) == "answered"
    assert len(set(threads)) == 2  # the stuck thread did not hold the next call
    release.set()
    net.retire()


async def test_a_call_that_keeps_moving_data_runs_past_the_stall_timeout() -> None:
    net = lane(stall=0.3)

    def trickle(watch: Watch) -> int:
        for _ in range(8):
            watch.touch()
            time.sleep(0.1)  # the remote sends a little now and then
        return 8

    assert await net.run(trickle, meanwhile=nothing_due, wake=asyncio.Event()) == 8
    net.retire()


async def test_a_cancelled_call_stops_at_its_next_callback() -> None:
    net = lane(stall=60.0, total=0.3)
    stopped = threading.Event()

    def endless(watch: Watch) -> None:
        try:
            while True:
                watch.touch()
                time.sleep(0.05)
        except DeadlineExceeded:
            stopped.set()
            raise

    with pytest.raises(DeadlineExceeded, match=r"longer than 0\.3 s"):
        await net.run(endless, meanwhile=nothing_due, wake=asyncio.Event())
    assert await asyncio.to_thread(stopped.wait, 5)
    net.retire()


async def test_the_shutdown_deadline_cuts_a_call_short() -> None:
    release = threading.Event()
    net = lane(stall=60.0, stop=time.monotonic() + 0.2)
    with pytest.raises(DeadlineExceeded, match="stopping"):
        await net.run(lambda watch: release.wait(30), meanwhile=nothing_due, wake=asyncio.Event())
    release.set()
    net.retire()


async def test_local_work_runs_while_the_network_waits() -> None:
    release = threading.Event()
    net = lane(stall=60.0)
    wake = asyncio.Event()
    done: list[float] = []
    due: list[float] = [math.inf]

    async def meanwhile() -> float:
        if due[0] <= time.monotonic():
            done.append(time.monotonic())
            due[0] = math.inf
            if len(done) == 2:
                release.set()  # the network answers once two snapshots were made meanwhile
        return due[0]

    async def changes() -> None:
        for _ in range(2):
            due[0] = time.monotonic()
            wake.set()  # what the watcher does when a save arrives
            while due[0] != math.inf:
                await asyncio.sleep(0.01)

    def slow(watch: Any) -> str:
        release.wait(30)
        return "pushed"

    feeder = asyncio.ensure_future(changes())
    assert await net.run(slow, meanwhile=meanwhile, wake=wake) == "pushed"
    await feeder
    assert len(done) == 2
    net.retire()
