# ruff: noqa: RUF001 (the multiplication sign in printed targets is meant)
"""`python -m benchmarks [--quick] [--only P1,P3] [--out FILE] [--keep]`: run the figures, print
the table (figure, ours median, baseline median, ratio, target, met?) and write the JSON."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import FULL, QUICK, REPO_ROOT, Context, Row, log

_MODULES = {
    "P1": "p1_snapshot",
    "P2": "p2_save",
    "P3": "p3_restore",
    "P4": "p4_stall",
    "P5": "p5_watcher",
    "P6": "p6_push",
    "P7": "p7_growth",
    "P8": "p8_history",
    "P9": "p9_launch",
    "P10": "p10_growth",
    "P11": "p11_file_history",
}


def _figure(name: str) -> Callable[[Context], list[Row]]:
    """The figure's `run(ctx)`; P1 and P2 also run at the small size, for scale."""
    module = importlib.import_module(f"benchmarks.{_MODULES[name]}")
    if name in ("P1", "P2"):

        def both(ctx: Context) -> list[Row]:
            small = module.run(ctx, ctx.sizes.small_files, with_targets=False)
            return small + module.run(ctx, ctx.sizes.files, with_targets=True)

        return both
    return module.run  # type: ignore[no-any-return]


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import pygit2
    import watchdog.version

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    git_version = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout
    try:
        from importlib.metadata import version

        jupyter_server = version("jupyter_server")
    except Exception:
        jupyter_server = "unknown"
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "pygit2": pygit2.__version__,
        "libgit2": pygit2.LIBGIT2_VERSION,
        "git": git_version.strip().removeprefix("git version "),
        "watchdog": watchdog.version.VERSION_STRING,
        "jupyter_server": jupyter_server,
        "inotify_max_queued_events": _read_int("/proc/sys/fs/inotify/max_queued_events"),
        "product_commit": _git_out("rev-parse", "HEAD"),
        "product_changes": _git_out("status", "--porcelain", "--", "jupyter_gitsync").splitlines(),
    }


def _git_out(*args: str) -> str:
    """What the checkout's git says (the code measured may have uncommitted changes)."""
    proc = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True)
    return proc.stdout.strip()


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit in ("ms", "s", "kB", "MB", "%"):
        if abs(value) < 0.005:
            return f"0 {unit}"
        return f"{value:.3g} {unit}" if abs(value) < 100 else f"{value:.0f} {unit}"
    return f"{value:g} {unit}".strip()


def table(rows: list[Row]) -> str:
    header = ["fig", "what", "ours (median)", "baseline (median)", "ratio", "target", "met?"]
    lines = [header]
    for r in rows:
        base = "—" if r.baseline is None else f"{_fmt(r.baseline, r.unit)} ({r.baseline_name})"
        ratio = "—" if r.ratio is None else f"{r.ratio:.2f}×"
        met = {True: "yes", False: "NO", None: "—"}[r.met]
        lines.append([r.figure, r.what, _fmt(r.ours, r.unit), base, ratio, r.target, met])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for i, line in enumerate(lines):
        out.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run with small sizes")
    parser.add_argument("--only", default="", help="comma-separated figures, e.g. P1,P3")
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO_ROOT / "bench-results" / "results.json",
        help="where to write the JSON results (default: bench-results/results.json)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir of the run")
    parser.add_argument("--tmp", type=Path, help="parent of the run's temp dir (default: $TMPDIR)")
    args = parser.parse_args(argv)

    wanted = [f.strip().upper() for f in args.only.split(",") if f.strip()] or list(_MODULES)
    unknown = [f for f in wanted if f not in _MODULES]
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}; known: {', '.join(_MODULES)}")
    sizes = QUICK if args.quick else FULL
    root = Path(tempfile.mkdtemp(prefix="gitsync-bench-", dir=args.tmp))
    log(f"run dir {root}; sizes {'quick' if args.quick else 'full'}; figures {','.join(wanted)}")
    started = time.monotonic()
    info = machine()
    rows: list[Row] = []
    failures: dict[str, str] = {}
    timings: dict[str, float] = {}
    loads: dict[str, list[float]] = {}
    ctx = Context(root, sizes)
    try:
        for name in wanted:
            log(f"--- {name} (load average {os.getloadavg()[0]:.2f})")
            start = time.monotonic()
            try:
                rows.extend(_figure(name)(ctx))
            except Exception:
                failures[name] = traceback.format_exc()
                log(f"{name} failed:\n{failures[name]}")
            timings[name] = round(time.monotonic() - start, 1)
            loads[name] = [round(x, 2) for x in os.getloadavg()]
            log(f"--- {name} done in {timings[name]:.0f} s")
    finally:
        ctx.close()
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    result = {
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "sizes": sizes.__dict__,
        "machine": info,
        "load_average_at_end": os.getloadavg(),
        "seconds": round(time.monotonic() - started, 1),
        "figure_seconds": timings,
        "load_average_after_figure": loads,
        "rows": [r.to_json() for r in rows],
        "failures": failures,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(table(rows))
    print()
    for name, trace in failures.items():
        print(f"{name} FAILED: {trace.strip().splitlines()[-1]}")
    print(f"results: {args.out}  ({result['seconds']:.0f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
