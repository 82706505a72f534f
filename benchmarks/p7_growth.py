"""P7: growth of `.git` after 100 saves of a 5 MB notebook with small edits, each a snapshot,
vs the packed size of the distinct contents.

Each save changes one number in one cell's source and writes the notebook as Jupyter does
(indent 1, sorted keys), then `Snapshotter.snapshot([path])`. Ours is what `.git` grew by. The
baselines pack every object reachable from the sync branch: with `git pack-objects` as
`git gc --aggressive` does (window 250, depth 50), and with libgit2's own packbuilder
(`Repository.pack()`). The same saves are also run as the engine runs them, with
`Snapshotter.maintain()` (`SyncRepository.maintain()`: git repack -d, gc --auto; then the
snapshot counters start again) after every `pack_every_snapshots` snapshots
(EngineConfig's default), when the product has it. No target is set: the figure says what it
is and what bounds it.
"""

from __future__ import annotations

import random
import subprocess
import time
from pathlib import Path
from typing import Any

import pygit2

from jupyter_gitsync.repository import SyncRepository
from jupyter_gitsync.snapshots import Snapshotter

from .common import (
    BRANCH,
    Context,
    Row,
    close_repo,
    copy_tree,
    du,
    dump_notebook,
    git_env,
    log,
    median,
    ms,
    notebook,
)


def _pack_every() -> int | None:
    """How often the engine packs (EngineConfig.pack_every_snapshots), if it does."""
    from jupyter_gitsync.engine import EngineConfig

    field = EngineConfig.__dataclass_fields__.get("pack_every_snapshots")
    return None if field is None else int(field.default)  # type: ignore[arg-type]


def _saves(ws: Path, saves: int, size_mb: float, pack_every: int | None) -> dict[str, Any]:
    """Make the notebook, snapshot it, then `saves` small edits, each saved and snapshotted.
    With `pack_every`, call `Snapshotter.maintain()` as the engine does after a snapshot."""
    rng = random.Random(11)
    nb = notebook(rng, int(size_mb * 1e6))
    path = "analysis.ipynb"
    (ws / path).write_text(dump_notebook(nb))
    (ws / "README.md").write_text("# notes\n")
    repo = SyncRepository(ws, BRANCH)
    snaps = Snapshotter(repo)
    assert snaps.snapshot(None) is not None
    git_dir = ws / ".git"
    before = du(git_dir)
    times, maintain_times = [], []
    for i in range(saves):
        cell = nb["cells"][rng.randrange(len(nb["cells"]))]
        cell["source"][0] = f"x = compute({i}, scale={rng.random():.6f})\n"
        cell["execution_count"] = i + 100
        (ws / path).write_text(dump_notebook(nb))
        start = time.perf_counter()
        assert snaps.snapshot([path]) is not None
        times.append(time.perf_counter() - start)
        if pack_every and snaps.snapshots_since_pack >= pack_every:
            start = time.perf_counter()
            snaps.maintain()
            maintain_times.append(time.perf_counter() - start)
    close_repo(repo)
    return {
        "before": before,
        "growth": du(git_dir) - before,
        "objects": du(git_dir / "objects"),
        "notebook_bytes": (ws / path).stat().st_size,
        "snapshot_s": times,
        "maintain_s": maintain_times,
    }


def run(ctx: Context) -> list[Row]:
    saves = ctx.sizes.p7_saves
    size_mb = ctx.sizes.p7_notebook_mb
    ws = ctx.scratch("p7") / "ws"
    ws.mkdir()
    plain = _saves(ws, saves, size_mb, None)
    pack_every = _pack_every()
    engine = None
    if pack_every:
        ws_engine = ctx.scratch("p7-engine") / "ws"
        ws_engine.mkdir()
        engine = _saves(ws_engine, saves, size_mb, pack_every)
    git_dir = ws / ".git"
    growth = plain["growth"]
    notebook_bytes = plain["notebook_bytes"]

    env = git_env()
    revs = f"refs/heads/{BRANCH}\n".encode()
    aggressive = subprocess.run(
        ["git", "pack-objects", "--revs", "--stdout", "-q", "--window=250", "--depth=50"],
        cwd=ws,
        env=env,
        input=revs,
        capture_output=True,
        check=True,
    ).stdout
    default_pack = subprocess.run(
        ["git", "pack-objects", "--revs", "--stdout", "-q"],
        cwd=ws,
        env=env,
        input=revs,
        capture_output=True,
        check=True,
    ).stdout
    copy = ctx.scratch("p7-packbuilder") / "git"
    copy_tree(git_dir, copy)
    start = time.perf_counter()
    packed = pygit2.Repository(str(copy)).pack()
    packbuilder_s = time.perf_counter() - start
    packbuilder_bytes = sum(p.stat().st_size for p in (copy / "objects" / "pack").glob("*.pack"))

    mb = 1e6
    log(
        f"P7: .git grew {growth / mb:.1f} MB over {saves} saves of a {notebook_bytes / mb:.1f} MB"
        f" notebook; aggressive pack {len(aggressive) / mb:.2f} MB, libgit2 packbuilder"
        f" {packbuilder_bytes / mb:.2f} MB ({packed} objects, {packbuilder_s:.1f} s)"
        + (f"; with the engine's packing every {pack_every}: {engine['growth'] / mb:.1f} MB"
           if engine else "")
    )  # fmt: skip
    label = f"{saves} saves of a {notebook_bytes / mb:.0f} MB notebook"
    details = {
        "saves": saves,
        "notebook_mb": round(notebook_bytes / mb, 2),
        "git_dir_before_mb": round(plain["before"] / mb, 2),
        "objects_mb_after": round(plain["objects"] / mb, 2),
        "per_save_growth_mb": round(growth / saves / mb, 3),
        "snapshot_ms_median": round(ms(median(plain["snapshot_s"])), 1),
        "git_pack_objects_default_mb": round(len(default_pack) / mb, 3),
        "libgit2_packbuilder_mb": round(packbuilder_bytes / mb, 3),
        "libgit2_packbuilder_s": round(packbuilder_s, 2),
        "engine_pack_every_snapshots": pack_every,
    }
    baseline_name = "git pack-objects --window=250 --depth=50 (gc --aggressive)"
    rows = [
        Row(
            "P7",
            f".git growth, {label}, Snapshotter.snapshot alone",
            "MB",
            growth / mb,
            len(aggressive) / mb,
            baseline_name,
            target="— (report)",
            details=details,
        ),
    ]
    if engine is not None:
        rows.append(
            Row(
                "P7",
                f".git growth, {label}, with the engine's Snapshotter.maintain() every"
                f" {pack_every} snapshots",
                "MB",
                engine["growth"] / mb,
                len(aggressive) / mb,
                baseline_name,
                target="— (report)",
                details={
                    "maintain_s": [round(x, 2) for x in engine["maintain_s"]],
                    "snapshot_ms_median": round(ms(median(engine["snapshot_s"])), 1),
                },
            )
        )
    rows.append(
        Row(
            "P7",
            f"same history packed by libgit2's packbuilder, {label}",
            "MB",
            packbuilder_bytes / mb,
            len(aggressive) / mb,
            baseline_name,
            target="— (report)",
        )
    )
    return rows
