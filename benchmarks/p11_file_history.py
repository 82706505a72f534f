# ruff: noqa: RUF001 (the multiplication sign in printed targets is meant)
"""P11: the history of one file across `p11_snapshots` (10,000) snapshots of a workspace of
`files` (50k) files, as the History panel asks for it (`history.read_history` with the
versions marked, on a freshly opened repository, as the server's git thread runs it), vs
`git log --format=%H -- PATH` on the same repository in the same run. `reps` repetitions,
alternating the order.

Two files: a *rare* one, changed in 20 snapshots spread over the whole history (the page of
50 never fills, so the walk covers every snapshot: the worst case), and a *busy* one, changed
in every tenth snapshot (the first page of 50 is the 500 newest snapshots; the baseline then
is `git log -n 50`).

The history is written with `git fast-import` as the engine commits snapshots (committer
"Jupyter GitSync <gitsync@localhost>", parents: the previous snapshot and the launch commit,
`Gitsync-Base`/`Gitsync-Head`/`Gitsync-Session` trailers), on top of `main` = the 50k-file
workspace: each snapshot changes one file (the busy file, the rare file, or one of 500 others
a session edits), as saves do. 10,000 real snapshots would take an hour and measure nothing
this figure is about. A version (annotated tag) marks every 500th snapshot, as the panel shows
them.
"""

from __future__ import annotations

import random
import subprocess
import time
from pathlib import Path

import pygit2

from jupyter_gitsync import history, versions

from .common import BRANCH, Context, Row, git, git_env, human_count, layout, log, median

_RARE = "notes/rarely-changed.md"
_BUSY = "analysis/results.ipynb"
_RARE_CHANGES = 20
_BUSY_EVERY = 10
_OTHERS = 500  # files of the workspace a session edits besides these two
_VERSION_EVERY = 500
_PAGE = 50


def _data(payload: bytes) -> bytes:
    return b"data %d\n%s\n" % (len(payload), payload)


def _history(ctx: Context) -> tuple[Path, int]:
    """A bare repository: main = the workspace, BRANCH = the snapshots; the commit count."""
    base = ctx.base_remote(f"files:{ctx.sizes.files}")
    bare = ctx.server.copy_repo(base, "p11-history")
    launch = git("rev-parse", "refs/heads/main", cwd=bare)
    rng = random.Random(11)
    others = rng.sample(layout(ctx.sizes.files), _OTHERS)
    snapshots = ctx.sizes.p11_snapshots
    rare_at = set(rng.sample(range(1, snapshots), _RARE_CHANGES - 1)) | {0}
    stamp = int(time.time()) - snapshots - 3600
    proc = subprocess.Popen(
        ["git", "fast-import", "--quiet"], cwd=bare, env=git_env(), stdin=subprocess.PIPE
    )
    assert proc.stdin is not None
    trailers = (
        f"\nGitsync-Base: {launch}\nGitsync-Head: refs/heads/main\n"
        "Gitsync-Session: bench-pod 2026-12-01T00:00:00Z\n"
    )
    for i in range(snapshots):
        if i in rare_at:
            path = _RARE
        elif i % _BUSY_EVERY == 1:
            path = _BUSY
        else:
            path = others[i % _OTHERS]
        content = f"# {path}\nsave {i}\n{rng.random()}\n".encode() * 20
        when = stamp + i
        parents = f"from {launch}\n" if i == 0 else f"from :{i}\nmerge {launch}\n"
        proc.stdin.write(
            f"commit refs/heads/{BRANCH}\nmark :{i + 1}\n"
            f"author Bench User <user@example.invalid> {when} +0000\n"
            f"committer Jupyter GitSync <gitsync@localhost> {when} +0000\n".encode()
            + _data(f"Update {path}\n{trailers}".encode())
            + parents.encode()
            + f"M 100644 inline {path}\n".encode()
            + _data(content)
        )
        if i % _VERSION_EVERY == _VERSION_EVERY - 1:
            proc.stdin.write(
                f"tag {BRANCH}/v{i // _VERSION_EVERY}\nfrom :{i + 1}\n"
                f"tagger Bench User <user@example.invalid> {when} +0000\n".encode()
                + _data(b"a named version\n")
            )
    proc.stdin.write(b"done\n")
    proc.stdin.close()
    if proc.wait():
        raise RuntimeError("git fast-import of the history failed")
    git("pack-refs", "--all", cwd=bare)
    return bare, snapshots


def _ours(bare: Path, path: str) -> tuple[float, int]:
    """Seconds for one page as the server reads it, and the entries on it."""
    start = time.perf_counter()
    repo = pygit2.Repository(str(bare))
    marks = versions.by_commit(versions.list_versions(repo, BRANCH))
    page = history.read_history(repo, bare, BRANCH, path, _PAGE, None, marks)
    return time.perf_counter() - start, len(page.entries)


def _git_log(bare: Path, path: str, limit: int | None) -> tuple[float, int]:
    command = ["git", "log", "--format=%H", BRANCH, "--", path]
    if limit is not None:
        command.insert(2, f"-n{limit}")
    start = time.perf_counter()
    out = subprocess.run(command, cwd=bare, env=git_env(), capture_output=True, check=True)
    return time.perf_counter() - start, len(out.stdout.split())


def run(ctx: Context) -> list[Row]:
    start = time.monotonic()
    bare, snapshots = _history(ctx)
    label = f"{human_count(snapshots)} snapshots, {human_count(ctx.sizes.files)} files"
    log(f"P11: {label} written in {time.monotonic() - start:.0f} s")
    rows = []
    for kind, path, limit in (("rare", _RARE, None), ("busy", _BUSY, _PAGE)):
        samples: dict[str, list[float]] = {"ours": [], "git": []}
        counts: dict[str, int] = {}
        for rep in range(ctx.sizes.reps):
            sides = ["ours", "git"] if rep % 2 == 0 else ["git", "ours"]
            for side in sides:
                seconds, found = (
                    _ours(bare, path) if side == "ours" else _git_log(bare, path, limit)
                )
                samples[side].append(seconds)
                counts[side] = found
        if counts["ours"] != counts["git"]:
            raise RuntimeError(f"P11 {kind}: ours found {counts['ours']}, git {counts['git']}")
        ours, base = median(samples["ours"]), median(samples["git"])
        log(f"P11 {kind}: ours {ours:.3f} s, git log {base:.3f} s, {counts['ours']} entries")
        what = (
            f"file history, {label}: a file changed {_RARE_CHANGES}× (every snapshot walked)"
            if kind == "rare"
            else f"… a file changed every {_BUSY_EVERY}th snapshot, first page of {_PAGE}"
        )
        baseline = "git log -- PATH" if limit is None else f"git log -n {limit} -- PATH"
        rows.append(
            Row("P11", what, "s", ours, base, baseline, target="≤ 1 s", target_abs=1.0,
                details={"samples_s": {k: [round(x, 4) for x in v] for k, v in samples.items()},
                         "entries": counts["ours"]})
        )  # fmt: skip
    return rows
