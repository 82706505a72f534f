"""P2: a save through the Jupyter contents API (PUT /api/contents/...) until the commit is on
the remote's branch, minus the configured quiet delay.

A real `jupyter server` process with the extension, configured by env vars
(GITSYNC_COMMIT_DELAY=0.05, GITSYNC_PUSH_INTERVAL=0), on a clone of the generated repository;
the remote is the loopback git server. The benchmark process times each save from just before
the PUT until the bare repository's branch ref changes (polled every 0.5 ms), with
time.monotonic.
"""

from __future__ import annotations

import time

from .common import (
    BRANCH,
    Context,
    Row,
    git,
    human_count,
    jupyter_server,
    layout,
    log,
    median,
    ms,
    percentile,
    ref_of,
)

COMMIT_DELAY = 0.05


def _git_push_floor(ctx: Context, base: str, name: str) -> list[float]:
    """For the diagnosis: `git push` of one new commit (same tree as its parent) to the same
    remote and server, i.e. what a push costs this server at the least."""
    probe = ctx.scratch("p2-probe") / "repo"
    git("clone", "-q", "--no-checkout", str(ctx.server.repo_path(base)), str(probe))
    url = ctx.server.repo_url(name)
    times = []
    for i in range(6):
        commit = git("commit-tree", "HEAD^{tree}", "-p", "HEAD", "-m", f"probe {i}", cwd=probe)
        git("update-ref", "HEAD", commit, cwd=probe)
        start = time.monotonic()
        git("push", "-q", url, "HEAD:refs/heads/probe", cwd=probe, token=ctx.token)
        if i:
            times.append(time.monotonic() - start)
    return times


def run(ctx: Context, n: int, with_targets: bool = True) -> list[Row]:
    kind = f"files:{n}"
    base = ctx.base_remote(kind)
    name = f"p2-{n}"
    ctx.server.copy_repo(base, name)
    bare = ctx.server.repo_path(name)
    ws = ctx.clone(base, f"p2-{n}")
    home = ctx.scratch(f"p2-home-{n}")
    env = {
        "GITSYNC_REMOTE_URL": ctx.server.repo_url(name),
        "GITSYNC_BRANCH": BRANCH,
        "GITSYNC_TOKEN": ctx.token,
        "GITSYNC_COMMIT_DELAY": str(COMMIT_DELAY),
        "GITSYNC_PUSH_INTERVAL": "0",
    }
    ref = f"refs/heads/{BRANCH}"
    paths = layout(n)
    latencies: list[float] = []
    put_times: list[float] = []
    to_local: list[float] = []  # save → snapshot commit in the workspace, minus the delay
    to_remote: list[float] = []  # snapshot commit → on the remote (the push)
    local = ws / ".git"
    start = time.monotonic()
    with jupyter_server(ws, home, env) as server:
        answered = time.monotonic() - start
        server.wait_status(lambda s: s["state"] == "synced", 900, "the initial sync")
        startup = time.monotonic() - start
        log(f"P2 {n}: server answered after {answered:.1f} s, synced after {startup:.1f} s")
        warmup = 2
        for i in range(ctx.sizes.saves + warmup):
            path = paths[(i * 104729) % len(paths)]
            text = (ws / path).read_text() + f"edit {i} at {time.time_ns()}\n"
            before = ref_of(bare, ref)
            local_before = ref_of(local, ref)
            t0 = time.monotonic()
            server.save(path, text)
            t_put = time.monotonic()
            t_local = None
            deadline = t0 + 60
            while ref_of(bare, ref) == before:
                if t_local is None and ref_of(local, ref) != local_before:
                    t_local = time.monotonic()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"save {i} never reached the remote: {server.status()}")
                time.sleep(0.0005)
            t1 = time.monotonic()
            if i >= warmup:
                latencies.append(t1 - t0 - COMMIT_DELAY)
                put_times.append(t_put - t0)
                if t_local is not None:
                    to_local.append(t_local - t0 - COMMIT_DELAY)
                    to_remote.append(t1 - t_local)
            server.wait_status(lambda s: s["state"] == "synced", 60, "synced after a save")
            time.sleep(0.1)
    push_floor = _git_push_floor(ctx, base, name)
    p50, p95 = ms(median(latencies)), ms(percentile(latencies, 95))
    log(f"P2 {n}: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    size = human_count(n)
    details = {
        "samples_ms": [round(ms(v), 1) for v in latencies],
        "put_ms_median": round(ms(median(put_times)), 1),
        "save_to_local_commit_ms_median": round(ms(median(to_local)), 1) if to_local else None,
        "local_commit_to_remote_ms_median": round(ms(median(to_remote)), 1) if to_remote else None,
        "git_push_one_commit_ms_median": round(ms(median(push_floor)), 1),
        "commit_delay_s": COMMIT_DELAY,
        "server_startup_to_synced_s": round(startup, 1),
        "files": n,
    }
    return [
        Row(
            "P2",
            f"save → commit on remote, p50, {size} files",
            "ms",
            p50,
            target="≤ 100 ms" if with_targets else "— (target at 50k)",
            target_abs=100 if with_targets else None,
            details=details,
        ),
        Row("P2", f"save → commit on remote, p95, {size} files", "ms", p95),
    ]
