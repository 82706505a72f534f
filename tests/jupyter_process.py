"""A real Jupyter server process (`jupyter server` or `jupyter lab`), started the way a hub or
Binder starts it: settings from environment variables only, extensions enabled by a config
file, an isolated HOME and Jupyter dirs. Shared by the server-process tests, the browser tests
(tests/e2e/lab.py) and the benchmarks (benchmarks/common.py)."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class JupyterProcess:
    url: str  # base URL, ending with /
    token: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def port(self) -> int:
        return int(urlsplit(self.url).port or 0)

    def request(self, method: str, path: str, body: Any = None, timeout: float = 30) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return json.loads(response.read() or b"null")

    def save(self, name: str, text: str) -> None:
        """A save, as JupyterLab does it: PUT /api/contents/<name>."""
        self.request(
            "PUT", f"api/contents/{name}", {"type": "file", "format": "text", "content": text}
        )

    def status(self) -> dict[str, Any]:
        return self.request("GET", "gitsync/status")  # type: ignore[no-any-return]


def _log_tail(log: Path, chars: int = 3000) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


@contextmanager
def jupyter_process(
    root: Path,
    tmp: Path,
    env: Mapping[str, str],
    *,
    app: str = "jupyter_server",
    extra_args: Sequence[str] = (),
    extra_env: Mapping[str, str] | None = None,
    extensions: Mapping[str, bool] | None = None,
    wrapper: Sequence[str] | None = None,
    python: Path | None = None,
    start_timeout: float = 60,
    stop_timeout: float = 60,
) -> Iterator[JupyterProcess]:
    """Start `python -m <app>` serving `root` on a free loopback port with `extensions`
    (default: jupyter_gitsync) enabled, HOME and the Jupyter dirs under `tmp`, and `env` over
    an inherited environment cleaned of GITSYNC_*/GITHUB_*; stop it (SIGTERM, then SIGKILL
    after `stop_timeout`) afterwards. `extra_env` is applied before `env`; `wrapper` is a
    command prefix (e.g. a fault injector). `python`: another environment's interpreter (an
    installed wheel), which then never sees this checkout (not on its path, nor its cwd)."""
    config = tmp / "config"
    config.mkdir(parents=True, exist_ok=True)
    enabled = {"jupyter_gitsync": True} if extensions is None else dict(extensions)
    (config / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": enabled}})
    )
    port = free_port()
    token = secrets.token_hex(16)
    inherited = os.environ.get("PYTHONPATH")
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GITSYNC_", "GITHUB_"))},
        "HOME": str(tmp),
        "PYTHONPATH": (
            os.pathsep.join(filter(None, [str(REPO_ROOT), inherited])) if python is None else ""
        ),
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        "JUPYTER_DATA_DIR": str(tmp / "data"),
        **(extra_env or {}),
        **env,
    }
    log = tmp / "server.log"
    command = [
        str(python or sys.executable), "-m", app,
        f"--ServerApp.root_dir={root}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.open_browser=False",
        "--ServerApp.allow_root=True",
        f"--IdentityProvider.token={token}",
        *extra_args,
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*(wrapper or []), *command],
            cwd=REPO_ROOT if python is None else tmp,
            stdin=subprocess.DEVNULL,  # as under a hub or Binder: no terminal
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = JupyterProcess(f"http://127.0.0.1:{port}/", token, process, log)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"{app} exited with {process.returncode} before answering:\n{_log_tail(log)}"
                )
            try:
                server.request("GET", "api/status", timeout=5)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{app} did not answer within {start_timeout} s:\n{_log_tail(log)}"
                    ) from None
                time.sleep(0.02)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
