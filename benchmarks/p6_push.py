# ruff: noqa: RUF001 (the multiplication sign in printed targets is meant)
"""P6: first push of a workspace that was never pushed, `Transport.push` of the sync branch as
the engine's push job sends it, vs `git push` of the same commit, each to a fresh bare
repository on the loopback server.

The workspace is the generated tree in a directory that is not a repository yet (a home
directory on a hub): `SyncRepository` initialises it and the first full snapshot
(`Snapshotter.snapshot(None)`) makes one commit with every file (its blobs in packs of 16 MB,
`packs.BlobPack`, undeltified). That first snapshot is a figure of its own, against
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

git's commit runs with `gc.auto=0`: otherwise a commit of 50k loose objects starts `git gc
--auto` in the background, which is not in git's time but takes both cores for several seconds
of whichever measurement comes next (the first full snapshot's samples swung 6.4-12.1 s for
git and ours was measured against that).

Also measured: `git push` of git's own first commit (from its `git add`, loose objects) from
the repository git's first snapshot made, which is what a user of plain git waits for. From our
repository git copies the packed blobs into its pack as they are (pack reuse), which libgit2's
packbuilder cannot: it inflates, searches deltas and deflates every object again. And the two
steps together: first snapshot then first push, ours against git's own.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from jupyter_gitsync.repository import SyncRepository
from jupyter_gitsync.snapshots import Snapshot, Snapshotter
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


def _first_snapshots(ctx: Context, n: int) -> tuple[Path, Snapshot, Path, dict[str, list[float]]]:
    """The first full snapshot, ours and git's, alternating, each on a fresh copy of the tree
    (a directory that is not a repository yet); returns the workspace of our first one (for
    the pushes), its snapshot, the workspace of git's first one, and the times."""
    times: dict[str, list[float]] = {"ours": [], "git": []}
    kept: tuple[Path, Snapshot] | None = None
    kept_git: Path | None = None
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
                    [
                        "sh",
                        "-c",
                        "git init -q && git add -A && git -c gc.auto=0 commit -q -m first",
                    ],
                    cwd=ws,
                    env=env,
                    check=True,
                )
                elapsed = time.perf_counter() - start
            times[side].append(elapsed)
            log(f"P6: first full snapshot of {n} files, {side}: {elapsed:.1f} s")
            if side == "ours" and kept is None:
                kept = (ws, snapshot)
            elif side == "git" and kept_git is None:
                kept_git = ws
            else:
                rmtree(ws.parent)
    assert kept is not None and kept_git is not None
    return kept[0], kept[1], kept_git, times


def run(ctx: Context) -> list[Row]:
    n = ctx.sizes.files
    ws, snapshot, git_ws, first_times = _first_snapshots(ctx, n)
    git_commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=git_ws, env=git_env(), check=True,
        capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    first_snapshot = median(first_times["ours"])
    ref = f"refs/heads/{BRANCH}"
    env = git_env(ctx.token)
    times: dict[str, list[float]] = {"ours": [], "git": [], "git_own": []}
    for rep in range(ctx.sizes.reps_expensive):
        order = ["ours", "git", "git_own"]
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
            else:  # git's own first commit, its loose objects: a user of plain git
                start = time.perf_counter()
                subprocess.run(
                    ["git", "push", "-q", url, f"HEAD:{ref}"], cwd=git_ws, env=env, check=True
                )
            if side != "ours":
                elapsed = time.perf_counter() - start
            times[side].append(elapsed)
            expected = git_commit if side == "git_own" else snapshot.commit
            if ref_of(ctx.server.repo_path(name), ref) != expected:
                raise RuntimeError(f"P6 {side}: the remote did not get the commit")
    med = {k: median(v) for k, v in times.items()}
    log(
        f"P6: ours {med['ours']:.2f} s, git {med['git']:.2f} s,"
        f" git from its own repository {med['git_own']:.2f} s"
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
            f"first push, {human_count(n)} files, vs git's own repository",
            "s",
            med["ours"],
            med["git_own"],
            "git push of git's own first commit (loose objects)",
        ),
        Row(
            "P6",
            f"first snapshot + first push, {human_count(n)} files",
            "s",
            first_snapshot + med["ours"],
            median(first_times["git"]) + med["git_own"],
            "git init && git add -A && git commit, then git push",
        ),
    ]
