# ruff: noqa: RUF001 (the multiplication sign in printed targets is meant)
"""P4: the longest stall of the Jupyter server's event loop while a large workspace syncs.

A real `jupyter server` with the extension starts on the generated tree in a directory that is
not a repository yet, with an empty remote: the extension initialises the repository, snapshots
every file and pushes them (phase "initial"); then a child process rewrites many files at once
(phase "burst") and the extension snapshots and pushes those. All along, a thread of the
benchmark process requests GET /api/status over one keep-alive connection, one request every
2 ms, and records each request's latency (time.monotonic): a stalled loop answers late.

The server also runs `benchmarks.loopticker`, a test-only extension that sleeps 2 ms at a time
on the loop and records how late it wakes: the stall as seen from inside, without the HTTP
round trip or the benchmark process's own scheduling.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import (
    BRANCH,
    Context,
    JupyterServer,
    Row,
    human_count,
    jupyter_server,
    layout,
    log,
    median,
    percentile,
    ref_of,
)

_BURST = """
import sys, time
from pathlib import Path
root = Path(sys.argv[1])
for rel in sys.argv[2:]:
    with open(root / rel, "a") as f:
        f.write(f"burst edit {time.time_ns()}\\n")
"""


class Poller(threading.Thread):
    """GET /api/status back to back (2 ms apart); keeps (sent_at, latency) of each answer."""

    def __init__(self, server: JupyterServer) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.samples: list[tuple[float, float]] = []
        self.errors = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        headers = {"Authorization": f"token {self.server.token}"}
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
        while not self.stop_event.is_set():
            start = time.monotonic()
            try:
                conn.request("GET", "/api/status", headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
            end = time.monotonic()
            if ok:
                self.samples.append((start, end - start))
            else:
                self.errors += 1
            self.stop_event.wait(0.002)
        conn.close()

    def window(self, t0: float, t1: float) -> list[float]:
        return [lat for at, lat in self.samples if t0 <= at < t1]


def _stats(latencies: list[float]) -> dict[str, Any]:
    if not latencies:
        return {"n": 0}
    return {
        "n": len(latencies),
        "max_ms": round(max(latencies) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
    }


def _session(
    ctx: Context, ws: Path, env: dict[str, str], home: Path,
    work: Callable[[JupyterServer, Callable[[str], None]], None],
) -> dict[str, Any]:  # fmt: skip
    """Start a server on `ws`, poll it during `work`, which marks the end of each phase."""
    phases: dict[str, tuple[float, float]] = {}
    ticker: dict[str, Any] = {}
    with jupyter_server(ws, home, env, extensions=["benchmarks.loopticker"]) as server:
        poller = Poller(server)
        t_up = time.monotonic()
        poller.start()
        server.request("GET", "bench/looplag?reset=1")
        last = [t_up]

        def mark(phase: str) -> None:
            now = time.monotonic()
            phases[phase] = (last[0], now)
            ticker[phase] = server.request("GET", "bench/looplag?reset=1")
            last[0] = now

        work(server, mark)
        poller.stop_event.set()
        poller.join()
    everything = poller.window(t_up, last[0])
    worst = sorted(poller.samples, key=lambda s: s[1], reverse=True)[:10]
    return {
        "started_at_wall_s": t_up + time.time() - time.monotonic(),  # `at_s` counts from here
        "all": _stats(everything),
        "phases": {k: _stats(poller.window(a, b)) for k, (a, b) in phases.items()},
        "phase_seconds": {k: round(b - a, 1) for k, (a, b) in phases.items()},
        "worst_requests": [
            {"at_s": round(at - t_up, 3), "ms": round(lat * 1000, 1)} for at, lat in worst
        ],
        "loop_ticker": {
            k: {
                "n": v.get("n", 0),
                "max_ms": round(v.get("max_ms", 0.0), 1),
                "p99_ms": round(v.get("p99_ms", 0.0), 1),
                "worst": [
                    {"lag_ms": round(w["lag_ms"], 1), "at_s": round(w["at"] - t_up, 3)}
                    for w in v.get("worst", [])
                ],
                "long_collections": [
                    {**c, "ms": round(c["ms"], 1), "at": round(c["at"] - t_up, 3)}
                    for c in v.get("long_collections", [])
                ],
            }
            for k, v in ticker.items()
        },
        "ticker_max_ms": max((t.get("max_ms", 0.0) for t in ticker.values()), default=0.0),
        "poll_errors": poller.errors,
        "inotify_overflow_warnings": server.log.read_text(errors="replace").count(
            "Inotify queue overflowed"
        ),
    }


def _burst(ws: Path, paths: list[str]) -> None:
    subprocess.run([sys.executable, "-c", _BURST, str(ws), *paths], check=True)


def _pair(ctx: Context, rep: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, float]]:
    """One measurement: ours on a fresh copy with an empty remote, then sync off, as long."""
    n = ctx.sizes.files
    ws = ctx.plain_copy(f"files:{n}", f"p4-{rep}")
    name = f"p4-{rep}"
    ctx.server.create_empty(name)
    bare = ctx.server.repo_path(name)
    ref = f"refs/heads/{BRANCH}"
    env = {
        "GITSYNC_REMOTE_URL": ctx.server.repo_url(name),
        "GITSYNC_BRANCH": BRANCH,
        "GITSYNC_TOKEN": ctx.token,
        "GITSYNC_COMMIT_DELAY": "0.2",
        "GITSYNC_PUSH_INTERVAL": "0",
    }
    paths = layout(n)
    step = max(1, len(paths) // ctx.sizes.edit_burst)
    burst = paths[::step][: ctx.sizes.edit_burst]
    facts: dict[str, float] = {}

    def ours(server: JupyterServer, mark: Callable[[str], None]) -> None:
        t_up = time.monotonic()
        deadline = t_up + 1200
        while ref_of(bare, ref) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"P4: the initial push never arrived: {server.status()}")
            time.sleep(0.01)
        facts["initial_push_arrived_s"] = time.monotonic() - t_up
        server.wait_status(lambda s: s["state"] == "synced", 300, "synced after the first push")
        mark("initial")
        before = ref_of(bare, ref)
        t_burst = time.monotonic()
        _burst(ws, burst)
        facts["burst_write_s"] = time.monotonic() - t_burst
        deadline = t_burst + 600
        while True:
            if ref_of(bare, ref) != before:
                status = server.status()
                if status["state"] == "synced" and not status["pending_paths"]:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"P4: the burst never synced: {server.status()}")
            time.sleep(0.05)
        facts["burst_synced_s"] = time.monotonic() - t_burst
        mark("burst")

    result = _session(ctx, ws, env, ctx.scratch(f"p4-home-{rep}"), ours)
    log(f"P4 #{rep} ours: {json.dumps(result['phases'])}; ticker max {result['ticker_max_ms']} ms")

    # The baseline: the same server on the same workspace with sync switched off, observed for
    # as long, with the same burst of edits.
    def baseline(server: JupyterServer, mark: Callable[[str], None]) -> None:
        time.sleep(min(facts["initial_push_arrived_s"], 60))
        mark("initial")
        _burst(ws, burst)
        time.sleep(min(facts["burst_synced_s"], 30))
        mark("burst")

    off_env = {**env, "GITSYNC_ENABLED": "0"}
    off = _session(ctx, ws, off_env, ctx.scratch(f"p4-home-off-{rep}"), baseline)
    log(f"P4 #{rep} sync off: {json.dumps(off['phases'])}; ticker max {off['ticker_max_ms']} ms")
    facts["burst_edits"] = len(burst)
    return result, off, facts


def run(ctx: Context) -> list[Row]:
    """`reps_expensive` pairs (ours, then sync off); each figure is the median of the pairs'
    worst values: one pair's worst is a single request or tick, which this machine's own
    spikes move by several times between runs of the same code."""
    pairs = [_pair(ctx, rep) for rep in range(ctx.sizes.reps_expensive)]
    ours_runs = [p[0] for p in pairs]
    off_runs = [p[1] for p in pairs]

    def med(runs: list[dict[str, Any]], pick: Callable[[dict[str, Any]], float]) -> float:
        return median([pick(r) for r in runs])

    details = {
        "ours": ours_runs,
        "sync_disabled": off_runs,
        "facts": [{k: round(v, 1) for k, v in p[2].items()} for p in pairs],
        "files": ctx.sizes.files,
        "samples": {
            "ours_max_ms": [r["all"]["max_ms"] for r in ours_runs],
            "off_max_ms": [r["all"]["max_ms"] for r in off_runs],
            "ours_ticker_max_ms": [r["ticker_max_ms"] for r in ours_runs],
            "off_ticker_max_ms": [r["ticker_max_ms"] for r in off_runs],
        },
    }
    size = human_count(ctx.sizes.files)
    off_name = "same server, GITSYNC_ENABLED=0"
    return [
        Row(
            "P4",
            f"event-loop stall while {size} files sync: max GET /api/status latency",
            "ms",
            med(ours_runs, lambda r: r["all"]["max_ms"]),
            med(off_runs, lambda r: r["all"]["max_ms"]),
            off_name,
            target="≤ 1.5×",
            target_ratio=1.5,
            details=details,
        ),
        Row(
            "P4",
            f"event-loop stall while {size} files sync: p99 GET /api/status latency",
            "ms",
            med(ours_runs, lambda r: r["all"]["p99_ms"]),
            med(off_runs, lambda r: r["all"]["p99_ms"]),
            off_name,
        ),
        Row(
            "P4",
            f"event-loop stall while {size} files sync: max lag of an in-server loop ticker",
            "ms",
            med(ours_runs, lambda r: r["ticker_max_ms"]),
            med(off_runs, lambda r: r["ticker_max_ms"]),
            off_name,
            target="≤ 1.5×",
            target_ratio=1.5,
        ),
    ]
