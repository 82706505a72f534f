"""P5: the watcher on a large workspace: RSS it adds, CPU it uses while idle, and changes lost
in a burst of writes.

The watcher (`jupyter_gitsync.watcher.Watcher` filling a `ChangeSet`, as the engine runs it)
lives in a child process of its own (`python -m benchmarks.p5_watcher CHILD ...`), so its RSS
and CPU are its own: RSS is read before and after starting it, idle CPU from the child's CPU
times over the idle window. Then the benchmark process writes many new small files as fast as
it can; once the ChangeSet has been quiet for 3 s, the child drains it and compares with what
was written. A written file counts as seen if its path or a directory above it was recorded
(a snapshot stages a recorded directory whole). A final `Snapshotter.scan()` (what the engine runs
at start, on a forced sync, at shutdown, periodically, and after the watcher's overflow alarm
asks for one) is added, as the figure's definition says; a second row says what the engine's
next snapshot alone would miss: the unrecorded paths, unless the overflow alarm was raised.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .common import BRANCH, REPO_ROOT, Context, Row, close_repo, human_count, layout, log

_WRITER = """
import sys
root, listing, k, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
paths = open(listing).read().split()
for i in range(k, len(paths), n):
    with open(f"{root}/{paths[i]}", "w") as f:
        f.write(f"burst file {i}\\n")
"""


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def child(ws: Path) -> None:
    """In the child: start the watcher, report, wait for the burst, then count what it saw."""
    from jupyter_gitsync import filters
    from jupyter_gitsync.repository import SyncRepository
    from jupyter_gitsync.snapshots import Snapshotter
    from jupyter_gitsync.watcher import ChangeSet, Watcher

    gc.collect()
    time.sleep(0.5)
    before = _rss_kb()
    changes = ChangeSet(lambda: None)
    watcher = Watcher(ws, filters.DEFAULT_EXCLUDES, changes)
    start = time.perf_counter()
    watcher.start()
    start_s = time.perf_counter() - start
    time.sleep(1.0)
    gc.collect()
    after = _rss_kb()
    print(json.dumps({"rss_before_kb": before, "rss_after_kb": after, "start_s": start_s}))
    sys.stdout.flush()
    written_list = Path(sys.stdin.readline().strip())
    told = time.monotonic()
    while True:
        last = changes.last_change
        now = time.monotonic()
        if (last and now - last > 3.0 and now - told > 3.0) or now - told > 600:
            break
        time.sleep(0.2)
    rss_burst = _rss_kb()
    take_rescan = getattr(changes, "take_rescan", None)  # the watcher's overflow alarm
    rescan_requested = bool(take_rescan()) if take_rescan is not None else None
    drained = changes.drain()
    watcher.stop()
    written = written_list.read_text().splitlines()

    def seen(path: str) -> bool:
        if path in drained:
            return True
        parts = path.split("/")
        return any("/".join(parts[:i]) in drained for i in range(1, len(parts)))

    missed = [p for p in written if not seen(p)]
    start = time.perf_counter()
    repo = SyncRepository(ws, BRANCH)
    scanned = Snapshotter(repo).scan()
    close_repo(repo)
    scan_s = time.perf_counter() - start
    lost = [p for p in missed if p not in scanned]
    # What the engine's next snapshot misses: with the overflow alarm raised it scans the whole
    # workspace; without it, it stages the recorded paths only.
    engine_misses = len(lost) if rescan_requested else len(missed)
    print(
        json.dumps(
            {
                "recorded_paths": len(drained),
                "missed_by_watcher": len(missed),
                "missed_examples": missed[:5],
                "lost_after_scan": len(lost),
                "rescan_requested": rescan_requested,
                "missed_by_next_snapshot": engine_misses,
                "scan_found": len(scanned),
                "scan_s": scan_s,
                "rss_after_burst_kb": rss_burst,
            }
        )
    )


def run(ctx: Context) -> list[Row]:
    import psutil

    from jupyter_gitsync.repository import SyncRepository
    from jupyter_gitsync.snapshots import Snapshotter

    n = ctx.sizes.files
    base = ctx.base_remote(f"files:{n}")
    ws = ctx.clone(base, "p5")
    repo = SyncRepository(ws, BRANCH)
    Snapshotter(repo).snapshot(None)  # the sync index with its stat cache, as in a session
    close_repo(repo)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.p5_watcher", "CHILD", str(ws)],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        ready = json.loads(proc.stdout.readline())
        ps = psutil.Process(proc.pid)
        cpu0 = ps.cpu_times()
        t0 = time.monotonic()
        time.sleep(ctx.sizes.idle_seconds)
        cpu1 = ps.cpu_times()
        idle_window = time.monotonic() - t0
        idle_cpu = max(0.0, (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / idle_window)

        dirs = sorted({p.rsplit("/", 1)[0] for p in layout(n)})
        written = [f"{dirs[i % len(dirs)]}/burst{i:06d}.txt" for i in range(ctx.sizes.burst)]
        listing = ctx.scratch("p5-list") / "written.txt"
        listing.write_text("\n".join(written) + "\n")
        # As fast as this machine writes: one writer process a core, each a share of the files.
        writers = max(1, os.cpu_count() or 1)
        t_burst = time.monotonic()
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _WRITER, str(ws), str(listing), str(k), str(writers)]
            )
            for k in range(writers)
        ]
        for p in procs:
            p.wait()
        burst_s = time.monotonic() - t_burst
        log(f"P5: {writers} processes wrote {len(written)} files in {burst_s:.1f} s")
        proc.stdin.write(f"{listing}\n")
        proc.stdin.flush()
        result = json.loads(proc.stdout.readline())
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    overhead_mb = (ready["rss_after_kb"] - ready["rss_before_kb"]) / 1024
    log(
        f"P5: RSS +{overhead_mb:.1f} MB, idle CPU {idle_cpu * 100:.2f} %, burst: watcher missed"
        f" {result['missed_by_watcher']}, rescan requested {result['rescan_requested']}, lost"
        f" after scan {result['lost_after_scan']}"
    )
    size = human_count(n)
    details = {
        **ready,
        "idle_window_s": round(idle_window, 1),
        "burst_files": len(written),
        "burst_write_s": round(burst_s, 1),
        "burst_files_per_s": round(len(written) / burst_s),
        **result,
    }
    return [
        Row("P5", f"watcher RSS overhead, {size} files", "MB", overhead_mb, details=details),
        Row("P5", f"watcher idle CPU, {size} files", "%", idle_cpu * 100),
        Row(
            "P5",
            f"changes lost in a {human_count(len(written))}-file burst (ChangeSet + final scan)",
            "files",
            result["lost_after_scan"],
            target="0",
            target_abs=0,
        ),
        Row(
            "P5",
            "changes missed by the next snapshot (recorded paths, or a full scan if the"
            " overflow alarm asked for one)",
            "files",
            result["missed_by_next_snapshot"],
            target="0",
            target_abs=0,
        ),
        Row(
            "P5",
            "paths the watcher did not record in that burst (inotify queue overflow)",
            "files",
            result["missed_by_watcher"],
        ),
    ]


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "CHILD":
    child(Path(sys.argv[2]))
