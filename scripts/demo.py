"""`make demo`: a demo remote on the loopback git HTTP server, and JupyterLab syncing to it.

Everything lives under .demo/: the remote's bare repository (remote/demo.git) and the workspace
(a clone of it). The remote wants a token that is made anew each run and handed to JupyterLab
in its environment only, as a hub would hand over a user's token. Arguments after `--` go to
`jupyter lab`.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.gitserver import GitHTTPServer  # noqa: E402

BRANCH = "gitsync/demo"
WELCOME = {
    "cells": [
        {
            "cell_type": "markdown",
            "metadata": {},
            "source": [
                "# Welcome to the jupyter-gitsync demo\n",
                "\n",
                "Edit and save this notebook: a few seconds later the change is a commit on the\n",
                f"`{BRANCH}` branch of the demo remote. Watch the status bar.",
            ],
        }
    ],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=ROOT / ".demo", help="where the demo lives")
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", "8888")))
    parser.add_argument("lab_args", nargs="*", help="extra arguments for jupyter lab")
    args = parser.parse_args(argv)

    demo = args.dir.resolve()
    token = secrets.token_urlsafe(24)
    server = GitHTTPServer(demo / "remote", token=token).start()
    if not server.repo_path("demo").exists():
        welcome = json.dumps(WELCOME, indent=1).encode() + b"\n"
        readme = b"# Demo project\n\nSynced by jupyter-gitsync.\n"
        server.create_repo("demo", {"README.md": readme, "welcome.ipynb": welcome})
    workspace = demo / "workspace"
    if not workspace.exists():
        subprocess.run(
            ["git", "clone", "--quiet", str(server.repo_path("demo")), str(workspace)], check=True
        )

    remote_git_dir = server.repo_path("demo")
    print(
        f"\nDemo remote: {server.repo_url('demo')} (token required; made for this run)\n"
        f"Workspace:   {workspace}\n"
        f"Sync branch: {BRANCH}\n\n"
        f"Save something in JupyterLab, then look at the remote:\n"
        f"    git -C {remote_git_dir} log --stat {BRANCH}\n",
        flush=True,
    )
    env = {
        **os.environ,
        "GITSYNC_REMOTE_URL": server.repo_url("demo"),
        "GITSYNC_BRANCH": BRANCH,
        "GITSYNC_TOKEN": token,
        "GITSYNC_COMMIT_DELAY": os.environ.get("GITSYNC_COMMIT_DELAY", "1"),
        "GITSYNC_PUSH_INTERVAL": os.environ.get("GITSYNC_PUSH_INTERVAL", "2"),
    }
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={workspace}",
        f"--ServerApp.port={args.port}",
        "--ServerApp.ip=127.0.0.1",
        *args.lab_args,
    ]
    if os.geteuid() == 0 and not any("allow_root" in a or "allow-root" in a for a in command):
        # A container or a CI runner: jupyter_server refuses root unless told.
        print("Running as root (a container?): passing --allow-root to JupyterLab.\n", flush=True)
        command.append("--allow-root")
    lab = subprocess.Popen(command, env=env)
    # Ctrl-C reaches JupyterLab directly (same process group); SIGTERM is passed on.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: lab.send_signal(signal.SIGTERM))
    try:
        return lab.wait()
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
