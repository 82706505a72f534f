# ruff: noqa: RUF001 (the multiplication sign in printed labels is meant)
"""P10: growth of the remote per 1,000 saves of a plot-heavy notebook, pushed as the engine
pushes, vs the same saves made with `git add && git commit` and `git push`. No target: the
figure says how fast a sync branch grows on the forge, and docs/benchmarks.md what bounds it.

How it differs from P7: P7 measures the workspace's own `.git` after small *source* edits (the
bytes delta away, so what matters there is when loose objects get packed). P10 measures the
*remote*, after `git gc` on the server (a forge repacks what it receives), for saves that
re-render a figure: the outputs are new PNG bytes each time, which no delta and no zlib
shrinks, so every save adds roughly one figure to the remote for good.

The notebook: `p10_figures` code cells, each with a stdout line and a PNG output whose size is
drawn once per figure from 100 to 300 kB (random bytes, as incompressible as a real plot: a
re-rendered PNG is deflate output, and a small change to the plot changes most of its bytes),
plus a few markdown cells. Each save re-runs one cell, in turn: a number in its source, its
execution count and its figure change (new bytes, the same size), and the file is written as
Jupyter writes it. The same bytes are saved into two clones of the same remote (`main` holds
the first version of the notebook).

- Ours: `tests.helpers.LocalSession` (SyncRepository + Snapshotter + Transport composed as the
  engine composes them): `snapshot([path])` per save, `Snapshotter.maintain()` when
  `wants_packing(pack_every_snapshots, pack_every_bytes)` says so (EngineConfig's defaults), and
  `push` (`Transport.push`) when the engine's token bucket (`scheduler.TokenBucket` with
  EngineConfig's `push_burst` and `push_interval_seconds`) allows it, on a simulated clock of
  one save per `commit_delay_seconds` (the most snapshots a user saving without pause makes),
  so a push carries the snapshots made since the last one, as in the engine.
- Baseline: `git add analysis.ipynb && git commit -q -m …` per save, `git push` at the same
  saves as ours.

Both remotes start as copies of one packed bare repository and are `git gc`'d after the first
push, and again after the last; the figure is the growth of the packed size between the two
(the `*.pack` files: a gc'd repository keeps nothing loose that is reachable), scaled to 1,000
saves when the run makes fewer (`p10_saves`; the scaling is linear: every save adds one new
figure of the same mean size, and `git gc` stores the whole notebook again at least every 50
versions, its delta depth, so runs of fewer than ~100 saves read low). The size before the
last gc (what `receive-pack` left: pushes of fewer than `receive.unpackLimit` (100) objects
are stored loose) is in the JSON.
"""

from __future__ import annotations

import base64
import random
import time
from pathlib import Path
from typing import Any

from jupyter_gitsync.engine import EngineConfig
from jupyter_gitsync.scheduler import TokenBucket
from tests.helpers import LocalSession

from .common import (
    BRANCH,
    Context,
    Row,
    close_repo,
    du,
    dump_notebook,
    git,
    log,
    rmtree,
)

_NOTEBOOK = "analysis.ipynb"
_FIGURE_BYTES = (100_000, 300_000)  # raw PNG size of one figure, drawn once per figure


def _notebook(rng: random.Random, figures: int) -> dict[str, Any]:
    """A plot-heavy notebook: `figures` code cells with a PNG output each, markdown between."""
    cells: list[dict[str, Any]] = []
    for i in range(figures):
        cells.append(
            {"cell_type": "markdown", "id": f"md-{i:03d}", "metadata": {},
             "source": [f"## Figure {i}\n", "What the plot below shows.\n"]}
        )  # fmt: skip
        size = rng.randint(*_FIGURE_BYTES)
        cells.append(
            {
                "cell_type": "code",
                "execution_count": i + 1,
                "id": f"plot-{i:03d}",
                "metadata": {},
                "source": [f"fig{i} = plot(data[{i}], alpha={rng.random():.4f})\n"],
                "outputs": [
                    {"name": "stdout", "output_type": "stream", "text": [f"{size} points\n"]},
                    {
                        "output_type": "display_data",
                        "metadata": {},
                        "data": {
                            "image/png": base64.b64encode(rng.randbytes(size)).decode(),
                            "text/plain": ["<Figure size 640x480 with 1 Axes>"],
                        },
                    },
                ],
            }
        )
    return {
        "cells": cells,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _rerun(nb: dict[str, Any], rng: random.Random, save: int) -> None:
    """Re-run one plot cell (in turn): new source number, execution count and figure bytes."""
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    cell = code[save % len(code)]
    name = cell["id"].replace("plot-", "fig")
    cell["source"][0] = f"{name} = plot(data[{save}], alpha={rng.random():.4f})\n"
    cell["execution_count"] = len(code) + save + 1
    png = cell["outputs"][1]["data"]
    png["image/png"] = base64.b64encode(rng.randbytes(len(png["image/png"]) * 3 // 4)).decode()


def _gc(bare: Path) -> int:
    """`git gc` on the server's repository, as a forge repacks; the packed size after it."""
    git("gc", "-q", "--prune=now", cwd=bare)
    return _packed(bare)


def _packed(bare: Path) -> int:
    return sum(p.stat().st_size for p in (bare / "objects" / "pack").glob("*.pack"))


def run(ctx: Context) -> list[Row]:
    saves = ctx.sizes.p10_saves
    figures = ctx.sizes.p10_figures
    config = EngineConfig(workspace=Path("."), branch=BRANCH)
    rng = random.Random(10)
    nb = _notebook(rng, figures)
    first = dump_notebook(nb)

    # One remote with `main` = the first version of the notebook, packed; one copy per side.
    base = ctx.server.create_empty("p10-base")
    src = ctx.scratch("p10-src") / "ws"
    src.mkdir()
    git("init", "-q", "-b", "main", cwd=src)
    (src / _NOTEBOOK).write_text(first)
    git("add", _NOTEBOOK, cwd=src)
    git("commit", "-q", "-m", "Initial commit", cwd=src)
    git("push", "-q", str(base), "main", cwd=src)
    git("repack", "-adq", cwd=base)
    rmtree(src.parent)
    sides = ("ours", "git")
    bare = {side: ctx.server.copy_repo("p10-base", f"p10-{side}") for side in sides}
    url = {side: ctx.server.repo_url(f"p10-{side}") for side in sides}
    ws = {side: ctx.clone("p10-base", f"p10-{side}") for side in sides}
    token = ctx.token
    ref = f"refs/heads/{BRANCH}"

    session = LocalSession(ws["ours"], BRANCH)
    session.snapshot(None)  # the first full snapshot, as at a session's start
    session.push(url["ours"], lambda: token)
    git("checkout", "-q", "-b", BRANCH, cwd=ws["git"])
    git("push", "-q", url["git"], f"HEAD:{ref}", cwd=ws["git"], token=token)
    start_size = {side: _gc(bare[side]) for side in sides}

    bucket = TokenBucket(max(1, config.push_burst), config.push_interval_seconds)
    seconds = {"write": 0.0, "ours_snapshot": 0.0, "ours_maintain": 0.0, "ours_push": 0.0,
               "git_commit": 0.0, "git_push": 0.0}  # fmt: skip
    pushes = maintains = 0
    new_png_bytes = 0
    started = time.monotonic()
    for i in range(saves):
        now = (i + 1) * config.commit_delay_seconds  # simulated: one snapshot per delay
        _rerun(nb, rng, i)
        text = dump_notebook(nb)
        new_png_bytes += len(nb["cells"][2 * (i % figures) + 1]["outputs"][1]["data"]["image/png"])
        t = time.perf_counter()
        for side in sides:
            (ws[side] / _NOTEBOOK).write_text(text)
        seconds["write"] += time.perf_counter() - t

        t = time.perf_counter()
        assert session.snapshot([_NOTEBOOK]) is not None
        seconds["ours_snapshot"] += time.perf_counter() - t
        if session.snaps.wants_packing(config.pack_every_snapshots, config.pack_every_bytes):
            t = time.perf_counter()
            session.snaps.maintain()
            seconds["ours_maintain"] += time.perf_counter() - t
            maintains += 1
        t = time.perf_counter()
        git("add", _NOTEBOOK, cwd=ws["git"])
        git("commit", "-q", "-m", f"Save {i}", cwd=ws["git"])
        seconds["git_commit"] += time.perf_counter() - t

        if bucket.available_at(now) <= now or i == saves - 1:  # the last save goes out too
            t = time.perf_counter()
            session.push(url["ours"], lambda: token)
            seconds["ours_push"] += time.perf_counter() - t
            t = time.perf_counter()
            git("push", "-q", url["git"], f"HEAD:{ref}", cwd=ws["git"], token=token)
            seconds["git_push"] += time.perf_counter() - t
            bucket.take(now)
            pushes += 1
    loop_s = time.monotonic() - started
    heads = session.heads()
    close_repo(session)
    if heads.head is None or heads.head != heads.remote_head:
        raise RuntimeError("P10: the last snapshot did not reach the remote")
    if git("rev-parse", ref, cwd=bare["git"]) != git("rev-parse", "HEAD", cwd=ws["git"]):
        raise RuntimeError("P10: the last git commit did not reach the remote")
    received = {side: du(bare[side] / "objects") for side in sides}
    t = time.perf_counter()
    end_size = {side: _gc(bare[side]) for side in sides}
    gc_s = time.perf_counter() - t
    growth = {side: end_size[side] - start_size[side] for side in sides}
    scale = 1000 / saves
    per_1000 = {side: growth[side] * scale for side in sides}
    new_raw = new_png_bytes * 3 / 4  # base64 -> the PNG bytes
    mb = 1e6
    log(
        f"P10: {saves} saves of a {len(text) / mb:.1f} MB notebook ({figures} figures),"
        f" {pushes} pushes, {maintains} maintain(); remote grew {growth['ours'] / mb:.1f} MB"
        f" (ours) vs {growth['git'] / mb:.1f} MB (git) after gc; new PNG bytes"
        f" {new_raw / mb:.1f} MB; loop {loop_s:.0f} s, server gc {gc_s:.1f} s"
    )
    extrapolated = saves != 1000
    label = f"{len(text) / mb:.1f} MB notebook, 1 of {figures} figures re-rendered a save" + (
        f" ({saves} saves ×{scale:g})" if extrapolated else ""
    )
    details = {
        "saves": saves,
        "extrapolated_from_saves": saves if extrapolated else None,
        "figures": figures,
        "notebook_mb": round(len(text.encode()) / mb, 3),
        "pushes": pushes,
        "maintain_runs": maintains,
        "new_png_mb": round(new_raw / mb, 2),
        "remote_packed_mb_start": {k: round(v / mb, 3) for k, v in start_size.items()},
        "remote_packed_mb_end": {k: round(v / mb, 3) for k, v in end_size.items()},
        "remote_objects_mb_before_gc": {k: round(v / mb, 2) for k, v in received.items()},
        "growth_mb": {k: round(v / mb, 2) for k, v in growth.items()},
        "per_save_kb": {k: round(v / saves / 1e3, 1) for k, v in growth.items()},
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "loop_s": round(loop_s, 1),
        "server_gc_s": round(gc_s, 1),
        "push_burst": config.push_burst,
        "push_interval_seconds": config.push_interval_seconds,
        "simulated_save_every_seconds": config.commit_delay_seconds,
    }
    baseline = "git add && git commit, git push; same pushes"
    return [
        Row("P10", f"remote growth per 1,000 saves after server gc, {label}", "MB",
            per_1000["ours"] / mb, per_1000["git"] / mb, baseline, target="— (report)",
            details=details),
        Row("P10", "… the same vs the new PNG bytes saved (what no packing removes)", "MB",
            per_1000["ours"] / mb, new_raw * scale / mb, "raw PNG bytes of the re-rendered"
            " figures", target="— (report)"),
    ]  # fmt: skip
