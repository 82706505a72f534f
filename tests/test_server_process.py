"""A real `jupyter server` process, started the way a hub or Binder starts it (env vars only)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.gitserver import GitHTTPServer
from tests.helpers import ref_or_none, show, user_git_state, wait_until

BRANCH = "b"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    token: str
    process: subprocess.Popen[bytes]
    log: Path

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(req, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def save(self, name: str, text: str) -> None:
        self.request(
            "PUT", f"api/contents/{name}", {"type": "file", "format": "text", "content": text}
        )

    def status(self) -> dict[str, Any]:
        return self.request("GET", "gitsync/status")  # type: ignore[no-any-return]


@contextmanager
def jupyter_server(
    root: Path, tmp: Path, env: dict[str, str], wrapper: list[str] | None = None
) -> Iterator[Server]:
    """Start `jupyter server` on a free loopback port with the extension enabled."""
    config = tmp / "config"
    config.mkdir(exist_ok=True)
    (config / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"jupyter_gitsync": True}}})
    )
    port = free_port()
    jupyter_token = os.urandom(16).hex()
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GITSYNC_", "GITHUB_"))},
        "HOME": str(tmp),
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        "JUPYTER_DATA_DIR": str(tmp / "data"),
        **env,
    }
    log = tmp / "server.log"
    command = [
        sys.executable, "-m", "jupyter_server",
        f"--ServerApp.root_dir={root}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.open_browser=False",
        "--ServerApp.allow_root=True",
        f"--IdentityProvider.token={jupyter_token}",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*(wrapper or []), *command], env=full_env, stdout=out, stderr=subprocess.STDOUT
        )
    server = Server(f"http://127.0.0.1:{port}/", jupyter_token, process, log)

    def up() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            server.request("GET", "api/status")
        except (urllib.error.URLError, ConnectionError):
            return False
        return True

    try:
        wait_until(up, timeout=60, what="jupyter server to answer")
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=60)


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
