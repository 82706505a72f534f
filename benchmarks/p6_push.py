# ruff: noqa: RUF001 (the multiplication sign in printed targets is meant)
"""P6: first push of a workspace that was never pushed, `SyncRepo.push`, vs `git push` of the
same commit, each to a fresh bare repository on the loopback server.

The workspace is the generated tree in a directory that is not a repository yet (a home
directory on a hub): SyncRepo initialises it and the first full snapshot makes one commit with
every file (loose objects, as the snapshot leaves them). Both sides push that commit from the
same `.git`, alternating. Also measured, for the diagnosis: the same push through pygit2 with
the packbuilder's thread count left to libgit2 (`threads=0`, all cores) instead of pygit2's
default of one thread, which is what SyncRepo.push gets.
"""

from __future__ import annotations

import subprocess
import time

import pygit2

from jupyter_gitsync.repo import SyncRepo, _Callbacks

from .common import BRANCH, Context, Row, close_repo, git_env, human_count, log, median, ref_of


def run(ctx: Context) -> list[Row]:
    n = ctx.sizes.files
    ws = ctx.plain_copy(f"files:{n}", f"p6-{n}")
    start = time.perf_counter()
    first = SyncRepo(ws, BRANCH)
    snapshot = first.snapshot(None)
    close_repo(first)
    first_snapshot = time.perf_counter() - start
    assert snapshot is not None
    log(f"P6: first full snapshot of {n} files in {first_snapshot:.1f} s")
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
                repo = SyncRepo(ws, BRANCH)  # a new session: it learns the remote first
                start = time.perf_counter()
                repo.push(url, lambda: ctx.token)
                elapsed = time.perf_counter() - start
                close_repo(repo)
            elif side == "git":
                start = time.perf_counter()
                subprocess.run(
                    ["git", "push", "-q", url, f"{ref}:{ref}"], cwd=ws, env=env, check=True
                )
            else:
                raw = pygit2.Repository(str(ws))
                start = time.perf_counter()
                raw.remotes.create_anonymous(url).push(
                    [f"{ref}:{ref}"], callbacks=_Callbacks(lambda: ctx.token), threads=0
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
