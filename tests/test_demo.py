"""`make demo` does what the README promises: a saved notebook reaches the demo remote."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tests.helpers import ref_or_none, show, wait_until
from tests.test_server_process import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_the_demo_syncs_a_saved_notebook(tmp_path: Path) -> None:
    """Run as the test runs: as root in a container or on CI, where jupyter_server refuses to
    start unless told, which the demo does by itself."""
    port = free_port()
    lab_token = os.urandom(16).hex()
    env = {**os.environ, "HOME": str(tmp_path), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
    env.pop("GITSYNC_TOKEN", None)
    log = (tmp_path / "demo.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "scripts" / "demo.py"),
            "--dir",
            str(tmp_path / "demo"),
            "--port",
            str(port),
            "--",
            "--no-browser",
            f"--IdentityProvider.token={lab_token}",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/"
    headers = {"Authorization": f"token {lab_token}"}

    def call(method: str, path: str, body: object = None) -> object:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(base + path, data, headers, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def lab_up() -> bool:
        assert process.poll() is None, (tmp_path / "demo.log").read_text()
        try:
            return call("GET", "gitsync/status") is not None
        except (urllib.error.URLError, ConnectionError):
            return False

    remote = tmp_path / "demo" / "remote" / "demo.git"
    try:
        wait_until(lab_up, timeout=90, what="JupyterLab to start")
        notebook = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        call("PUT", "api/contents/mine.ipynb", {"type": "notebook", "content": notebook})
        tip = wait_until(
            lambda: (
                ref_or_none(remote, "refs/heads/gitsync/demo")
                if show(remote, "refs/heads/gitsync/demo", "mine.ipynb")
                else None
            ),
            what="the notebook on the demo remote",
        )
        assert json.loads(show(remote, tip, "mine.ipynb") or b"{}")["nbformat"] == 4
        if os.geteuid() == 0:  # a container or CI runner: the demo says what it passed
            assert "passing --allow-root" in (tmp_path / "demo.log").read_text()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        log.close()
