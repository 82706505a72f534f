# ruff: noqa: RUF001 (the multiplication sign in printed targets is meant)
"""P6: first push of a workspace that was never pushed, `Transport.push` of the sync branch as
the engine's push job sends it, vs `git push` of the same commit, each to a fresh bare
repository on the loopback server.

The workspace is the generated tree in a directory that is not a repository yet (a home
directory on a hub): `SyncRepository` initialises it and the first full snapshot
(`Snapshotter.snapshot(None)`) makes one commit with every file (loose objects, as the snapshot
leaves them). That first snapshot is a figure of its own, against
`git init && git add -A && git commit` on another fresh copy of the tree, alternating, each
side `reps_expensive` times (ours in this process, as the engine runs it; git as a command).
Both sides push our first snapshot's commit from the same `.git`, alternating. Ours is a new
session each time (`tests.helpers.LocalSession`, composed as the engine composes it, made
outside the timing); timed is its `push`: the sync branch's heads, then
`Transport.push(url, token, {sync_ref: tracking_ref})` (its own `pygit2.Repository` on the same
`.git`, opened at its first call as on the engine's transport thread), then the heads again.

A push goes straight to the remote: no ls-remote before it (it used to list the remote's refs
first, a connection and a ref advertisement more; that step no longer exists, so it is no
longer in the time). The engine pushes only after its restore gate has listed the remote, and
that restore is not part of this figure. The tracking ref the previous repetition's push wrote
is removed before each repetition, outside the timing, so that every session sees a workspace
that was never pushed (the remote is a fresh empty repository each time).

Also measured, for the diagnosis: the same push through pygit2 with the packbuilder's thread
count left to libgit2 (`threads=0`, all cores) instead of pygit2's default of one thread, which
is what `Transport.push` gets.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pygit2

from jupyter_gitsync.repository import SyncRepository
from jupyter_gitsync.snapshots import Snapshot, Snapshotter
from jupyter_gitsync.transport import _Callbacks, _origin
from jupyter_gitsync.watch import Watch
from tests.helpers import LocalSession

from .common import (
    BRANCH,
    Context,
    Row,
    close_repo,
    git_env,
    human_count,
    log,
    median,
    ref_of,
    rmtree,
)


def _first_snapshots(ctx: Context, n: int) -> tuple[Path, Snapshot, dict[str, list[float]]]:
    """The first full snapshot, ours and git's, alternating, each on a fresh copy of the tree
    (a directory that is not a repository yet); returns the workspace of our first one (for
    the pushes), its snapshot, and the times."""
    times: dict[str, list[float]] = {"ours": [], "git": []}
    kept: tuple[Path, Snapshot] | None = None
    env = git_env()
    for rep in range(ctx.sizes.reps_expensive):
        for side in ("ours", "git") if rep % 2 == 0 else ("git", "ours"):
            ws = ctx.plain_copy(f"files:{n}", f"p6-first-{side}-{rep}")
            if side == "ours":
                start = time.perf_counter()
                repo = SyncRepository(ws, BRANCH)
                snapshot = Snapshotter(repo).snapshot(None)
                elapsed = time.perf_counter() - start
                close_repo(repo)
                assert snapshot is not None and snapshot.paths >= n
            else:
                start = time.perf_counter()
                subprocess.run(
                    ["sh", "-c", "git init -q && git add -A && git commit -q -m first"],
                    cwd=ws,
                    env=env,
                    check=True,
                )
                elapsed = time.perf_counter() - start
            times[side].append(elapsed)
            log(f"P6: first full snapshot of {n} files, {side}: {elapsed:.1f} s")
            if side == "ours" and kept is None:
                kept = (ws, snapshot)
            else:
                rmtree(ws.parent)
    assert kept is not None
    return kept[0], kept[1], times


def run(ctx: Context) -> list[Row]:
    n = ctx.sizes.files
    ws, snapshot, first_times = _first_snapshots(ctx, n)
    first_snapshot = median(first_times["ours"])
    ref = f"refs/heads/{BRANCH}"
    env = git_env(ctx.token)
    times: dict[str, list[float]] = {"ours": [], "git": [], "pygit2_threads0": []}
    for rep in range(ctx.sizes.reps_expensive):
        order = ["ours", "git", "pygit2_threads0"]
        order = order[rep % 3 :] + order[: rep % 3]
        for side in order:
            name = f"p6-{side.replace('_', '-')}-{rep}"
            ctx.server.create_empty(name)
            url = ctx.server.repo_url(name)
            if side == "ours":
                session = LocalSession(ws, BRANCH)  # a new session
                stale = session.repo.repo.references.get(session.repo.tracking_ref)
                if stale is not None:  # what the previous repetition's push recorded
                    stale.delete()
                start = time.perf_counter()
                heads = session.push(url, lambda: ctx.token)
                elapsed = time.perf_counter() - start
                close_repo(session)
                if heads.remote_head != snapshot.commit:
                    raise RuntimeError("P6 ours: the push did not record the remote's tip")
            elif side == "git":
                start = time.perf_counter()
                subprocess.run(
                    ["git", "push", "-q", url, f"{ref}:{ref}"], cwd=ws, env=env, check=True
                )
            else:
                raw = pygit2.Repository(str(ws))
                start = time.perf_counter()
                raw.remotes.create_anonymous(url).push(
                    [f"{ref}:{ref}"],
                    callbacks=_Callbacks(lambda: ctx.token, Watch(), _origin(url)),
                    threads=0,
                )
            if side != "ours":
                elapsed = time.perf_counter() - start
            times[side].append(elapsed)
            if ref_of(ctx.server.repo_path(name), ref) != snapshot.commit:
                raise RuntimeError(f"P6 {side}: the remote did not get the commit")
    med = {k: median(v) for k, v in times.items()}
    log(
        f"P6: ours {med['ours']:.2f} s, git {med['git']:.2f} s,"
        f" pygit2 threads=0 {med['pygit2_threads0']:.2f} s"
    )
    details = {
        "samples_s": {k: [round(x, 2) for x in v] for k, v in times.items()},
        "first_full_snapshot_s": round(first_snapshot, 2),
        "files": n,
    }
    return [
        Row(
            "P6",
            f"first full snapshot, {human_count(n)} files",
            "s",
            first_snapshot,
            median(first_times["git"]),
            "git init && git add -A && git commit",
            target="≤ 1.0×",
            target_ratio=1.0,
            details={"samples_s": {k: [round(x, 2) for x in v] for k, v in first_times.items()}},
        ),
        Row(
            "P6",
            f"first push, {human_count(n)} files",
            "s",
            med["ours"],
            med["git"],
            "git push",
            target="≤ 1.2×",
            target_ratio=1.2,
            details=details,
        ),
        Row(
            "P6",
            f"first push, {human_count(n)} files (pygit2 push threads=0, for diagnosis)",
            "s",
            med["pygit2_threads0"],
            med["git"],
            "git push",
        ),
    ]
