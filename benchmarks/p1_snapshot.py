# ruff: noqa: RUF001 (the multiplication sign in printed targets is meant)
"""P1: snapshot of one changed file, `Snapshotter.snapshot([path])`, vs `git add -A && git commit`
(what gitwatch-style tools run) and vs raw pygit2 on the repository's normal index.

Three clones of the same repository, each with a warm index (ours: a `Snapshotter` on the
workspace's `SyncRepository`, after the first full snapshot; raw pygit2 and git: the index
`git clone` wrote). Each repetition changes the same file in all three, then times the three in
a rotating order.

For the diagnosis, `describe_ms_median`: the commit message as the current code builds it,
`Snapshotter._describe(staged)` from the (kind, path) pairs the repetition's snapshot staged,
timed again on its own after each repetition (it is also inside the timed snapshot). This used
to time `_describe(tree, tree)`, a diff of the previous and the new whole root tree; a snapshot
no longer does that, so it is no longer measured.
"""

from __future__ import annotations

import subprocess
import time

import pygit2

from jupyter_gitsync.repository import SyncRepository
from jupyter_gitsync.snapshots import Snapshotter

from .common import BRANCH, Context, Row, close_repo, git_env, human_count, layout, log, median, ms


def run(ctx: Context, n: int, with_targets: bool = True) -> list[Row]:
    kind = f"files:{n}"
    remote = ctx.base_remote(kind)
    ours_ws = ctx.clone(remote, f"p1-ours-{n}")
    raw_ws = ctx.clone(remote, f"p1-raw-{n}")
    git_ws = ctx.clone(remote, f"p1-git-{n}")
    env = git_env()

    repo = SyncRepository(ours_ws, BRANCH)
    snaps = Snapshotter(repo)
    start = time.perf_counter()
    snaps.snapshot(None)  # the sync index gets its stat cache (no commit: nothing changed)
    first_scan = time.perf_counter() - start
    start = time.perf_counter()
    snaps.scan()
    warm_scan = time.perf_counter() - start

    raw = pygit2.Repository(str(raw_ws))
    raw_index = raw.index
    signature = pygit2.Signature("Bench", "bench@example.invalid")

    describe: list[float] = []

    def ours(path: str) -> None:
        assert snaps.snapshot([path]) is not None

    def time_describe() -> None:
        """For the diagnosis: how long the commit message takes to build from what the last
        snapshot staged (part of the snapshot timed above, timed again here on its own)."""
        try:
            staged = list(snaps._staged)
            start = time.perf_counter()
            Snapshotter._describe(staged)
            describe.append(time.perf_counter() - start)
        except Exception:  # a private helper; the figure does not depend on it
            pass

    def raw_pygit2(path: str) -> None:
        raw_index.add(path)
        raw_index.write()
        tree = raw_index.write_tree()
        raw.create_commit("HEAD", signature, signature, f"Update {path}", tree, [raw.head.target])

    def git_cli(path: str) -> None:
        subprocess.run(
            ["sh", "-c", 'git add -A && git commit -q -m "gitwatch: $1"', "sh", path],
            cwd=git_ws,
            env=env,
            check=True,
        )

    methods = {"ours": ours, "raw": raw_pygit2, "git": git_cli}
    times: dict[str, list[float]] = {name: [] for name in methods}
    paths = layout(n)
    reps = ctx.sizes.reps
    for rep in range(reps + 1):  # the first one warms up and is not counted
        path = paths[(rep * 7919) % len(paths)]
        line = f"edit {rep} at {time.time_ns()}\n"
        for ws in (ours_ws, raw_ws, git_ws):
            with open(ws / path, "a") as f:
                f.write(line)
        order = list(methods)
        order = order[rep % 3 :] + order[: rep % 3]
        for name in order:
            start = time.perf_counter()
            methods[name](path)
            elapsed = time.perf_counter() - start
            if rep:
                times[name].append(elapsed)
        if rep:
            time_describe()
    close_repo(repo)
    ours_ms, raw_ms, git_ms = (ms(median(times[k])) for k in ("ours", "raw", "git"))
    log(f"P1 {n}: ours {ours_ms:.1f} ms, raw pygit2 {raw_ms:.1f} ms, git {git_ms:.1f} ms")
    size = human_count(n)
    details = {
        "samples_ms": {k: [round(ms(v), 2) for v in vals] for k, vals in times.items()},
        "first_full_snapshot_s": round(first_scan, 2),
        "describe_ms_median": round(ms(median(describe)), 2) if describe else None,
        "warm_full_scan_ms": round(ms(warm_scan), 1),
        "files": n,
    }
    return [
        Row(
            "P1",
            f"snapshot 1 changed file, {size} files",
            "ms",
            ours_ms,
            git_ms,
            "git add -A && git commit",
            target="≤ 0.2×" if with_targets else "— (target at 50k)",
            target_ratio=0.2 if with_targets else None,
            details=details,
        ),
        Row(
            "P1",
            f"snapshot 1 changed file, {size} files",
            "ms",
            ours_ms,
            raw_ms,
            "raw pygit2 add+write+write_tree+commit",
            target="≤ 1.5×" if with_targets else "— (target at 50k)",
            target_ratio=1.5 if with_targets else None,
        ),
    ]
