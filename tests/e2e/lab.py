"""A real `jupyter lab` process for browser tests, started the way a hub or Binder starts it:
settings come from environment variables only (GITSYNC_*), the extension is enabled by a
config file, and the frontend is the one built in this checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers import wait_until
from tests.test_server_process import free_port

ROOT = Path(__file__).resolve().parents[2]
LABEXTENSION = ROOT / "jupyter_gitsync" / "labextension"

# Keep JupyterLab from asking about news or updates in a toast over the status bar.
_QUIET_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


@dataclass
class Lab:
    url: str  # base URL, ending with /
    token: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def lab_url(self) -> str:
        return f"{self.url}lab?token={self.token}"

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

    def status(self) -> dict[str, Any]:
        return self.request("GET", "gitsync/status")  # type: ignore[no-any-return]

    def save_notebook(self, name: str, source: str) -> None:
        notebook = {
            "cells": [
                {"cell_type": "code", "metadata": {}, "source": source, "outputs": [],
                 "execution_count": None}
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }  # fmt: skip
        self.request("PUT", f"api/contents/{name}", {"type": "notebook", "content": notebook})


def built_frontend() -> Path:
    """The labextension built from labextension/src (by `make setup` or `jlpm build`)."""
    if not (LABEXTENSION / "package.json").exists():
        raise AssertionError(
            f"The frontend is not built ({LABEXTENSION} is missing): run `make setup`"
            " or `jlpm build` first."
        )
    return LABEXTENSION


@contextmanager
def jupyter_lab(root: Path, tmp: Path, env: dict[str, str]) -> Iterator[Lab]:
    """Start `jupyter lab` on a free loopback port with jupyter_gitsync and this checkout's
    frontend; stop it (SIGTERM) afterwards."""
    # JupyterLab serves a federated extension from <path>/<package name>/, like the link
    # `jupyter labextension develop` makes in the environment.
    extensions = tmp / "labextensions"
    extensions.mkdir(parents=True, exist_ok=True)
    link = extensions / "jupyter-gitsync"
    if not link.exists():
        link.symlink_to(built_frontend(), target_is_directory=True)
    config = tmp / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"jupyter_gitsync": True}}})
    )
    settings = tmp / "lab-settings"
    for name, values in _QUIET_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port = free_port()
    token = os.urandom(16).hex()
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GITSYNC_", "GITHUB_"))},
        "HOME": str(tmp),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        "JUPYTER_DATA_DIR": str(tmp / "data"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
        **env,
    }
    log = tmp / "lab.log"
    command = [
        sys.executable, "-m", "jupyterlab",
        f"--ServerApp.root_dir={root}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.open_browser=False",
        "--ServerApp.allow_root=True",
        f"--IdentityProvider.token={token}",
        # The frontend of this checkout, whether or not it is installed into the environment.
        f"--LabApp.extra_labextensions_path={extensions}",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT
        )
    lab = Lab(f"http://127.0.0.1:{port}/", token, process, log)

    def up() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            lab.request("GET", "api/status")
        except (urllib.error.URLError, ConnectionError):
            return False
        return True

    try:
        wait_until(up, timeout=90, what="jupyter lab to answer")
        yield lab
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
