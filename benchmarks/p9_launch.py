# ruff: noqa: RUF001 (the multiplication sign in printed targets is meant)
"""P9: restore into a fresh clone at the launch commit (what Binder starts a session in) when
the sync branch changed 10 files: the bytes received from the server vs the packed size of
the changed objects.

The remote is the `files:{small_files}` tree (`main`, one commit). A session on a clone of it
makes `p9_snapshots` snapshots, each appending a line to one of 10 files spread over the
tree's folders, and pushes them (`tests.helpers.LocalSession.push`, `Transport.push` as the
engine pushes); the server's repository is then packed. The launch clone is
`git clone --single-branch --branch main` over `file://` (main only, as a launch fetches the
launch ref; a clone from a local path would copy every object), made once and copied for each
repetition. Ours runs `python -m jupyter_gitsync.cli restore --quiet --branch B --remote URL`
in the copy, with URL a counting TCP relay in front of the loopback server
(`common.CountingProxy`): the bytes counted are everything the server sends (HTTP headers,
ref advertisements, packs). The baseline is the packed size of the changed objects:
`git pack-objects --revs --stdout` (not thin) of a commit with the tip's tree on top of the
launch commit, i.e. that commit, the new trees and the 10 new blobs. Also shown, through the
same relay: `git fetch --depth 1` of the branch into the same clone.
"""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import LocalSession

from .common import (
    BRANCH,
    REPO_ROOT,
    Context,
    CountingProxy,
    Row,
    close_repo,
    copy_tree,
    git,
    git_env,
    log,
    median,
    rmtree,
    run_measured,
)

CHANGED_FILES = 10


def _remote(ctx: Context) -> tuple[str, str, str]:
    """A remote whose sync branch changed 10 files over `p9_snapshots` snapshots; returns its
    name, the launch commit and the tip."""
    kind = f"files:{ctx.sizes.small_files}"
    base = ctx.base_remote(kind)
    name = "p9-launch"
    bare = ctx.server.copy_repo(base, name)
    ws = ctx.clone(base, "p9-src")
    session = LocalSession(ws, BRANCH)
    paths = git("ls-files", cwd=ws).splitlines()
    changed = [paths[(k * 97) % len(paths)] for k in range(CHANGED_FILES)]
    for i in range(ctx.sizes.p9_snapshots):
        path = changed[i % CHANGED_FILES]
        with open(ws / path, "a") as f:
            f.write(f"\nsaved {i}\n")
        assert session.snapshot([path]) is not None
    heads = session.push(ctx.server.repo_url(name), lambda: ctx.token)
    assert heads.head is not None and heads.head == heads.remote_head
    close_repo(session)
    git("repack", "-adq", cwd=bare)
    git("pack-refs", "--all", cwd=bare)
    launch = git("rev-parse", "refs/heads/main", cwd=bare)
    rmtree(ws.parent)
    return name, launch, heads.head


def _changed_objects_packed(bare_dir: str, launch: str, tip: str) -> int:
    """The packed size of what the tip changed: a commit of the tip's tree on the launch
    commit, packed without the launch commit's objects (and not thin)."""
    env = git_env()
    on_launch = git("commit-tree", f"{tip}^{{tree}}", "-p", launch, "-m", "changed", cwd=bare_dir)
    pack = subprocess.run(
        ["git", "pack-objects", "--revs", "--stdout", "-q"],
        cwd=bare_dir, env=env, input=f"{on_launch}\n^{launch}\n".encode(),
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return len(pack)


def run(ctx: Context) -> list[Row]:
    name, launch, tip = _remote(ctx)
    bare = ctx.server.repo_path(name)
    changed = _changed_objects_packed(str(bare), launch, tip)
    pristine = ctx.scratch("p9-launch-clone") / "ws"
    git("clone", "-q", "--single-branch", "--branch", "main", f"file://{bare}", str(pristine))
    proxy = CountingProxy(ctx.server.url)
    url = f"{proxy.url}/{name}.git"
    ours_env = {**git_env(), "PYTHONPATH": str(REPO_ROOT), "GITSYNC_TOKEN": ctx.token}
    received: dict[str, list[int]] = {"ours": [], "git": []}
    walls: dict[str, list[float]] = {"ours": [], "git": []}
    try:
        for rep in range(ctx.sizes.reps):
            for side in ["ours", "git"] if rep % 2 == 0 else ["git", "ours"]:
                target = copy_tree(pristine, ctx.scratch(f"p9-{side}-{rep}") / "ws")
                proxy.reset()
                if side == "ours":
                    cmd = [sys.executable, "-m", "jupyter_gitsync.cli", "restore", "--quiet"]
                    cmd += ["--branch", BRANCH, "--remote", url, str(target)]
                    run = run_measured(cmd, env=ours_env)
                else:
                    refspec = f"+refs/heads/{BRANCH}:refs/remotes/origin/{BRANCH}"
                    cmd = ["git", "-C", str(target), "fetch", "-q", "--depth", "1", url, refspec]
                    run = run_measured(cmd, env=git_env(ctx.token))
                if run.returncode != 0:
                    raise RuntimeError(f"P9 {side} failed: {run.stderr[-2000:]}")
                if side == "ours" and git("rev-parse", "HEAD", cwd=target) != launch:
                    raise RuntimeError("P9: the restore did not leave HEAD on the launch commit")
                received[side].append(proxy.received)
                walls[side].append(run.wall)
                rmtree(target.parent)
    finally:
        proxy.close()
    ours, git_fetch = median(received["ours"]), median(received["git"])
    log(
        f"P9: received ours {ours / 1e3:.1f} kB, git fetch --depth 1 {git_fetch / 1e3:.1f} kB;"
        f" the changed objects packed {changed / 1e3:.1f} kB"
    )
    label = f"{CHANGED_FILES} files changed over {ctx.sizes.p9_snapshots} snapshots"
    details = {
        "received_bytes": received,
        "wall_s": {k: [round(w, 2) for w in v] for k, v in walls.items()},
        "changed_objects_packed_bytes": changed,
        "files": ctx.sizes.small_files,
    }
    return [
        Row("P9", f"restore into a clone at the launch commit, bytes received, {label}", "kB",
            ours / 1e3, changed / 1e3, "packed size of the changed objects", target="≤ 2×",
            target_ratio=2.0, details=details),
        Row("P9", "… the same, vs git fetch --depth 1 of the branch", "kB", ours / 1e3,
            git_fetch / 1e3, "git fetch --depth 1"),
    ]  # fmt: skip
