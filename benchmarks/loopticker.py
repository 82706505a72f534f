"""A test-only Jupyter server extension for P4: a ticker on the server's event loop.

It sleeps 2 ms at a time on the loop and records how late each wake-up is (the loop's stall).
`GET /bench/looplag` answers the count, max and p99 of the lags (ms) since the last call with
`?reset=1`, and the worst ones with their times (time.monotonic, comparable with the benchmark
process on the same machine); also the garbage collector's pauses of 10 ms or more (a
collection holds the GIL, so it stalls the loop whichever thread it runs on), with their
generation and time. Enabled only by the benchmark's own server config.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import time
from array import array
from typing import Any

from jupyter_server.base.handlers import APIHandler
from tornado import web

_INTERVAL = 0.002
_LONG_COLLECTION_S = 0.010


class _Ticker:
    def __init__(self) -> None:
        self.lags = array("d")
        self.times = array("d")
        self.task: asyncio.Task[None] | None = None
        self.collections: list[dict[str, float]] = []  # the long ones
        self._collecting_since = 0.0

    def on_collection(self, phase: str, info: dict[str, int]) -> None:
        now = time.monotonic()
        if phase == "start":
            self._collecting_since = now
        elif now - self._collecting_since >= _LONG_COLLECTION_S:
            self.collections.append(
                {
                    "ms": (now - self._collecting_since) * 1000,
                    "at": now,
                    "generation": info["generation"],
                    "collected": info["collected"],
                }
            )

    async def run(self) -> None:
        while True:
            start = time.monotonic()
            await asyncio.sleep(_INTERVAL)
            now = time.monotonic()
            self.lags.append(now - start - _INTERVAL)
            self.times.append(now)

    def stats(self) -> dict[str, Any]:
        lags = sorted(self.lags)
        if not lags:
            return {"n": 0}
        worst = sorted(zip(self.lags, self.times, strict=True), reverse=True)[:10]
        return {
            "n": len(lags),
            "max_ms": lags[-1] * 1000,
            "p99_ms": lags[max(0, math.ceil(0.99 * len(lags)) - 1)] * 1000,
            "worst": [{"lag_ms": lag * 1000, "at": at} for lag, at in worst],
            "long_collections": list(self.collections),
        }


TICKER = _Ticker()


class LagHandler(APIHandler):
    @web.authenticated
    def get(self) -> None:
        stats = TICKER.stats()
        if self.get_argument("reset", ""):
            TICKER.lags = array("d")
            TICKER.times = array("d")
            TICKER.collections = []
        self.finish(json.dumps(stats))


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "benchmarks.loopticker"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    base = serverapp.web_app.settings["base_url"]
    serverapp.web_app.add_handlers(".*$", [(f"{base.rstrip('/')}/bench/looplag", LagHandler)])


async def _start_jupyter_server_extension(serverapp: Any) -> None:
    gc.callbacks.append(TICKER.on_collection)
    TICKER.task = asyncio.get_running_loop().create_task(TICKER.run())
