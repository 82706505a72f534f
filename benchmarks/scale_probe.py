"""`python -m benchmarks.scale_probe`: the per-session numbers behind docs/scale.md.

Not a figure (nothing is compared with a baseline): it starts a real `jupyter server`
(`common.jupyter_server`, as P4 does) on a small, typical workspace three times: without the
extension (disabled in the server's config), with it but sync off (`GITSYNC_ENABLED=0`), and
syncing to a repository on the loopback git server. Once the server is idle (with sync on:
after the first push, and again after a save has reached the remote) it reads from /proc:

- VmRSS, VmHWM and the thread count of the server process (`/proc/<pid>/status`), and the
  threads' names (`/proc/<pid>/task/*/comm`);
- the inotify instances the process holds (fds that are `anon_inode:inotify`) and the watches
  on them (`inotify wd:` lines of `/proc/<pid>/fdinfo/<fd>`);
- this machine's inotify limits (`/proc/sys/fs/inotify/*`).

The workspace: a clone of the `files:1000` remote (1,000 files of ~2 kB in 10 directories
under `pkg00/`), plus `notebooks/` (3 notebooks of ~0.5 MB with PNG outputs), `data/` (one
directory with 20 CSV files) and what a home directory on a hub collects by itself:
`.cache/pip/http/` with 256 directories and `.ipynb_checkpoints/` (both excluded from sync).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.jupyter_process import jupyter_process

from .common import (
    BRANCH,
    FULL,
    Context,
    JupyterServer,
    dump_notebook,
    jupyter_server,
    log,
    notebook,
)


def _inotify_limits() -> dict[str, int]:
    return {p.name: int(p.read_text()) for p in sorted(Path("/proc/sys/fs/inotify").iterdir())}


def _inotify_of(pid: int) -> tuple[int, int]:
    """(inotify instances, watches) held by the process `pid`."""
    instances = watches = 0
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            if os.readlink(fd) != "anon_inode:inotify":
                continue
            info = Path(f"/proc/{pid}/fdinfo/{fd.name}").read_text()
        except OSError:
            continue
        instances += 1
        watches += sum(1 for line in info.splitlines() if line.startswith("inotify wd:"))
    return instances, watches


def _process(pid: int) -> dict[str, Any]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "Threads"):
            fields[key] = int(value.split()[0])
    names: dict[str, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
        except OSError:
            continue
        names[name] = names.get(name, 0) + 1
    instances, watches = _inotify_of(pid)
    return {
        "rss_mb": round(fields["VmRSS"] / 1024, 1),
        "hwm_mb": round(fields["VmHWM"] / 1024, 1),
        "threads": fields["Threads"],
        "thread_names": dict(sorted(names.items())),
        "inotify_instances": instances,
        "inotify_watches": watches,
    }


def _workspace(ctx: Context) -> Path:
    remote = ctx.base_remote("files:1000")
    ws = ctx.clone(remote, "scale-ws")
    rng = random.Random(3)
    (ws / "notebooks").mkdir()
    for i in range(3):
        (ws / "notebooks" / f"analysis{i}.ipynb").write_text(
            dump_notebook(notebook(rng, 500_000, cells=10))
        )
    (ws / "data").mkdir()
    for i in range(20):
        (ws / "data" / f"table{i:02d}.csv").write_text("a,b\n" + "1,2\n" * 100)
    for i in range(256):
        (ws / ".cache" / "pip" / "http" / f"{i:02x}").mkdir(parents=True)
    (ws / ".ipynb_checkpoints").mkdir()
    return ws


def _directories(ws: Path) -> dict[str, int]:
    """Directories in the workspace: all of them, and those outside `.git` and the excludes."""
    total = synced = 0
    for root, dirs, _ in os.walk(ws):
        rel = Path(root).relative_to(ws)
        total += len(dirs)
        if not rel.parts or rel.parts[0] not in (".git", ".cache", ".ipynb_checkpoints"):
            synced += sum(1 for d in dirs if d not in (".git", ".cache", ".ipynb_checkpoints"))
    return {"all": total, "outside_git_and_excludes": synced}


@contextmanager
def _server(ws: Path, home: Path, env: dict[str, str], extension: bool) -> Iterator[Any]:
    """The server with jupyter_gitsync enabled, or with it disabled in the server config (the
    package not even imported)."""
    if extension:
        with jupyter_server(ws, home, env) as server:
            yield server
    else:
        with jupyter_process(ws, home, env, extensions={"jupyter_gitsync": False}) as plain:
            yield JupyterServer(plain.url, plain.token, plain.process, plain.log)


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="gitsync-scale-"))
    ctx = Context(root, FULL)
    result: dict[str, Any] = {"inotify_limits": _inotify_limits()}
    try:
        ws = _workspace(ctx)
        result["directories"] = _directories(ws)
        name = "scale-remote"
        ctx.server.create_empty(name)
        env = {
            "GITSYNC_REMOTE_URL": ctx.server.repo_url(name),
            "GITSYNC_BRANCH": BRANCH,
            "GITSYNC_TOKEN": ctx.token,
        }
        modes = (("no extension", {}), ("sync off", {"GITSYNC_ENABLED": "0"}), ("sync on", {}))
        for mode, extra in modes:
            home = ctx.scratch(f"scale-home-{mode.replace(' ', '-')}")
            with _server(ws, home, {**env, **extra}, mode != "no extension") as server:
                pid = server.process.pid
                if mode == "sync on":
                    server.wait_status(lambda s: s["state"] == "synced", 120, "the first push")
                time.sleep(3)  # idle
                result[mode] = {"idle": _process(pid)}
                if mode == "sync on":
                    server.save("notebooks/analysis0.ipynb", "{}\n")
                    server.wait_status(
                        lambda s: s["state"] == "synced" and not s["pending_paths"], 60,
                        "the save on the remote",
                    )  # fmt: skip
                    time.sleep(1)
                    result[mode]["after a save"] = _process(pid)
            log(f"{mode}: {json.dumps(result[mode])}")
    finally:
        ctx.close()
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
