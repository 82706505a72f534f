# ruff: noqa: RUF001 (the multiplication sign in printed targets is meant)
"""P3: restore of a sync branch into an empty workspace (what `jupyter gitsync restore` does:
`limit_pack_mappings()`, then `run_restore(repo, Snapshotter(repo), url, token_getter)` with
`repo = SyncRepository(empty_dir, branch)`) vs `git clone --depth 1 --branch B` of the same
branch from the same loopback server.

Each side runs as a child process: wall time from spawn to exit (so ours includes starting
Python and importing pygit2), peak RSS from os.wait4's rusage of that child (for git, the
largest of git clone and the children it waited for: remote-http, fetch-pack, index-pack), and,
sampled every 10 ms, the peak of the summed RSS of the live process tree. The branch is what a
session leaves: `main` with every file, then three snapshots of ten edited files each, pushed
as the engine pushes (`tests.helpers.LocalSession.push`: `Transport.push` of the sync branch).
The server's repository is packed, as a forge's is.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from tests.helpers import LocalSession

from .common import (
    BRANCH,
    REPO_ROOT,
    ChildRun,
    Context,
    Row,
    close_repo,
    du,
    git,
    git_env,
    human_count,
    log,
    median,
    rmtree,
    run_measured,
)

_OURS = """
import json, os, sys, time
t0 = time.perf_counter()
from pathlib import Path
from jupyter_gitsync.repository import SyncRepository, limit_pack_mappings
from jupyter_gitsync.restore import run_restore
from jupyter_gitsync.snapshots import Snapshotter
limit_pack_mappings()
t1 = time.perf_counter()
phases = {}
def progress(phase, done, total, size):
    now = time.perf_counter()
    phases.setdefault(phase, [now, now])[1] = now
repo = SyncRepository(Path(sys.argv[1]), sys.argv[2])
token = lambda: os.environ["GITSYNC_TOKEN"]
result = run_restore(repo, Snapshotter(repo), sys.argv[3], token, progress)
t2 = time.perf_counter()
print(json.dumps({
    "case": result.case, "import_s": t1 - t0, "restore_s": t2 - t1,
    "phases_s": {k: [a - t1, b - t1] for k, (a, b) in phases.items()},
}))
"""


def _prepare(ctx: Context, kind: str) -> tuple[str, int]:
    """A remote whose sync branch has three snapshots on top of main; returns (name, files)."""
    base = ctx.base_remote(kind)
    name = f"p3-{kind.replace(':', '-')}"
    ctx.server.copy_repo(base, name)
    ws = ctx.clone(base, f"p3-src-{kind.replace(':', '-')}")
    session = LocalSession(ws, BRANCH)
    session.snapshot(None)
    files = [p for p in git("ls-files", cwd=ws).splitlines()]
    for round_ in range(3):
        changed = []
        for k in range(10):
            path = files[(round_ * 10 + k) * 997 % len(files)]
            with open(ws / path, "a") as f:
                f.write(f"\nedit {round_}.{k}\n")
            changed.append(path)
        assert session.snapshot(changed) is not None
    heads = session.push(ctx.server.repo_url(name), lambda: ctx.token)
    assert heads.head is not None and heads.head == heads.remote_head
    close_repo(session)
    bare = ctx.server.repo_path(name)
    git("repack", "-adq", cwd=bare)
    git("pack-refs", "--all", cwd=bare)
    rmtree(ws.parent)
    return name, len(files)


def measure(ctx: Context, kind: str, with_targets: bool) -> list[Row]:
    name, files = _prepare(ctx, kind)
    url = ctx.server.repo_url(name)
    ours_env = {**git_env(), "PYTHONPATH": str(REPO_ROOT), "GITSYNC_TOKEN": ctx.token}
    runs: dict[str, list[ChildRun]] = {"ours": [], "git": []}
    inside: list[dict[str, Any]] = []
    size_mb = 0.0
    for rep in range(ctx.sizes.reps_expensive):
        order = ["ours", "git"] if rep % 2 == 0 else ["git", "ours"]
        for side in order:
            target = ctx.scratch(f"p3-{side}-{rep}") / "ws"
            if side == "ours":
                target.mkdir()
                run = run_measured(
                    [sys.executable, "-c", _OURS, str(target), BRANCH, url], env=ours_env
                )
                if run.returncode == 0:
                    inside.append(json.loads(run.stdout.strip().splitlines()[-1]))
            else:
                cmd = ["git", "clone", "-q", "--depth", "1", "--branch", BRANCH, url, str(target)]
                run = run_measured(cmd, env=git_env(ctx.token))
            if run.returncode != 0:
                raise RuntimeError(f"P3 {side} failed: {run.stderr[-2000:]}")
            if not (target / layout_probe(target)).exists():
                raise RuntimeError(f"P3 {side}: the workspace was not restored")
            if side == "git" and rep == 0:
                size_mb = (du(target) - du(target / ".git")) / 1e6
            runs[side].append(run)
            rmtree(target.parent)
            time.sleep(1)  # let writeback of the deleted tree settle a little
    wall = {k: median([r.wall for r in v]) for k, v in runs.items()}
    rss = {k: median([r.maxrss_kb / 1024 for r in v]) for k, v in runs.items()}
    tree = {k: median([r.tree_peak_kb / 1024 for r in v]) for k, v in runs.items()}
    log(
        f"P3 {kind}: wall ours {wall['ours']:.2f} s / git {wall['git']:.2f} s; maxrss ours"
        f" {rss['ours']:.0f} MB / git {rss['git']:.0f} MB; tree peak {tree['ours']:.0f} /"
        f" {tree['git']:.0f} MB"
    )
    label = "notebook-heavy" if kind == "notebooks" else f"{human_count(files)} files"
    label += f", {size_mb:.0f} MB"
    details = {
        "wall_s": {k: [round(r.wall, 2) for r in v] for k, v in runs.items()},
        "maxrss_mb": {k: [round(r.maxrss_kb / 1024) for r in v] for k, v in runs.items()},
        "tree_peak_rss_mb": {k: [round(r.tree_peak_kb / 1024) for r in v] for k, v in runs.items()},
        "ours_inside": inside,
        "files": files,
        "worktree_mb": round(size_mb, 1),
    }
    return [
        Row(
            "P3",
            f"restore into empty dir, wall, {label}",
            "s",
            wall["ours"],
            wall["git"],
            "git clone --depth 1",
            target="≤ 1.0×" if with_targets else "—",
            target_ratio=1.0 if with_targets else None,
            details=details,
        ),
        Row(
            "P3",
            f"restore into empty dir, peak RSS, {label}",
            "MB",
            rss["ours"],
            rss["git"],
            "git clone --depth 1",
            target="≤ 1.2×" if with_targets else "—",
            target_ratio=1.2 if with_targets else None,
            details={"tree_peak_rss_mb_median": {k: round(v) for k, v in tree.items()}},
        ),
    ]


def layout_probe(target) -> str:  # type: ignore[no-untyped-def]
    """A file every restored workspace has (the generated trees both have a pkg00 or src)."""
    return "pkg00" if (target / "pkg00").exists() else "src"


def run(ctx: Context) -> list[Row]:
    rows = measure(ctx, f"files:{ctx.sizes.files}", with_targets=True)
    rows += measure(ctx, "notebooks", with_targets=False)
    return rows
