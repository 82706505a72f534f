"""A real `jupyter server` process, started the way a hub or Binder starts it (env vars only)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.gitserver import GitHTTPServer
from tests.helpers import SilentRemote, ref_or_none, show, user_git_state, wait_until
from tests.jupyter_process import JupyterProcess, free_port, jupyter_process

__all__ = ["Server", "free_port", "jupyter_server"]

BRANCH = "b"

# The names other tests import from here (tests/test_cli.py, test_demo.py, test_faults.py).
Server = JupyterProcess


@contextmanager
def jupyter_server(
    root: Path, tmp: Path, env: dict[str, str], wrapper: list[str] | None = None
) -> Iterator[Server]:
    """Start `jupyter server` on a free loopback port with the extension enabled."""
    with jupyter_process(root, tmp, env, wrapper=wrapper) as server:
        yield server


@pytest.fixture
def env(git_server: GitHTTPServer, remote: str, token: str) -> dict[str, str]:
    return {
        "GITSYNC_REMOTE_URL": git_server.repo_url(remote),
        "GITSYNC_BRANCH": BRANCH,
        "GITSYNC_TOKEN": token,
        "GITSYNC_COMMIT_DELAY": "0.5",
    }


@pytest.mark.parametrize("trial", range(3))
def test_sigterm_right_after_a_save_still_pushes_it(
    workspace: Path,
    tmp_path: Path,
    env: dict[str, str],
    git_server: GitHTTPServer,
    remote: str,
    token: str,
    trial: int,
) -> None:
    before = user_git_state(workspace, BRANCH)
    with jupyter_server(workspace, tmp_path, env) as server:
        wait_until(lambda: server.status()["state"] == "synced", what="start-up")
        server.save("first.txt", "first save")
        wait_until(
            lambda: ref_or_none(git_server.repo_path(remote), f"refs/heads/{BRANCH}"),
            what="the first save on the remote",
        )
        server.save("last.txt", f"saved just before SIGTERM, trial {trial}")
        time.sleep(0.2)  # the scenario under test: SIGTERM 0.2 s after the save
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0
    tip = ref_or_none(git_server.repo_path(remote), f"refs/heads/{BRANCH}")
    assert tip is not None
    last = show(git_server.repo_path(remote), tip, "last.txt")
    assert last == f"saved just before SIGTERM, trial {trial}".encode()
    assert user_git_state(workspace, BRANCH) == before
    log = server.log.read_text()
    assert token not in log
    assert "Traceback" not in log


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_a_stop_signal_flushes_and_exits_in_time_even_with_a_hung_remote(
    workspace: Path,
    tmp_path: Path,
    env: dict[str, str],
    git_server: GitHTTPServer,
    remote: str,
    signame: str,
) -> None:
    """JupyterHub's local spawners stop servers with SIGINT, Kubernetes with SIGTERM; either
    way the last save is snapshotted, the server exits within shutdown_timeout_seconds + 2 s
    although the remote never answers, and the next start pushes the snapshot."""
    shutdown_seconds = 3.0
    silent = SilentRemote()
    hung = {**env, "GITSYNC_REMOTE_URL": silent.url("project")}
    args = [
        f"--GitSync.shutdown_timeout_seconds={shutdown_seconds}",
        "--GitSync.network_stall_timeout_seconds=60",
    ]
    content = f"saved just before {signame}"
    try:
        with jupyter_process(workspace, tmp_path / "first", hung, extra_args=args) as server:
            wait_until(lambda: silent.connections > 0, what="the hung restore")
            server.save("last.txt", content)
            signalled = time.monotonic()
            server.process.send_signal(getattr(signal, signame))
            assert server.process.wait(timeout=shutdown_seconds + 2) == 0
            exited_after = time.monotonic() - signalled
        log = server.log.read_text()
    finally:
        silent.close()
    assert exited_after <= shutdown_seconds + 2
    assert "Shutting down" in log  # the stop hooks ran
    assert show(workspace, f"refs/heads/{BRANCH}", "last.txt") == content.encode()

    with jupyter_server(workspace, tmp_path / "second", env):
        wait_until(
            lambda: show(git_server.repo_path(remote), f"refs/heads/{BRANCH}", "last.txt"),
            what="the kept snapshot pushed at the next start",
        )


def _read_only(path: Path) -> list[str]:
    """A wrapper that runs the server with `path` mounted read-only in a private namespace, so
    the workspace is truly not writable, even for root."""
    script = f'mount --bind "{path}" "{path}" && mount -o remount,bind,ro "{path}" && exec "$@"'
    base = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-rm"]
    return [*base, "sh", "-c", script, "sh"]


def test_a_workspace_that_is_not_writable(tmp_path: Path, env: dict[str, str]) -> None:
    workspace = tmp_path / "readonly"
    workspace.mkdir()
    (workspace / "notes.md").write_text("keep me")
    probe = subprocess.run(
        [*_read_only(workspace), "touch", str(workspace / "x")], capture_output=True
    )
    if probe.returncode == 0 or b"Read-only" not in probe.stderr:
        pytest.fail(f"could not make a read-only mount here: {probe.stderr!r}")
    with jupyter_server(workspace, tmp_path, env, wrapper=_read_only(workspace)) as server:
        current = wait_until(
            lambda: (s := server.status())["state"] == "error" and s, what="the error state"
        )
        assert current["error"]["kind"] == "workspace"
        assert "Cannot open or create a git repository" in current["error"]["message"]
        assert server.request("GET", "api/status") is not None  # the server stays up
        listing = server.request("GET", "api/contents")
        assert [item["name"] for item in listing["content"]] == ["notes.md"]
    assert (workspace / "notes.md").read_text() == "keep me"
