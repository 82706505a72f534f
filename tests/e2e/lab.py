"""A real `jupyter lab` process for browser tests, started the way a hub or Binder starts it:
settings come from environment variables only (GITSYNC_*), the extension is enabled by a
config file, and the frontend is the one built in this checkout."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.jupyter_process import REPO_ROOT, JupyterProcess, jupyter_process

ROOT = REPO_ROOT
LABEXTENSION = ROOT / "jupyter_gitsync" / "labextension"

# Keep JupyterLab from asking about news or updates in a toast over the status bar.
_QUIET_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


@dataclass
class Lab(JupyterProcess):
    @property
    def lab_url(self) -> str:
        return f"{self.url}lab?token={self.token}"

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
def jupyter_lab(
    root: Path, tmp: Path, env: dict[str, str], python: Path | None = None
) -> Iterator[Lab]:
    """Start `jupyter lab` on a free loopback port with jupyter_gitsync and this checkout's
    frontend (or, with `python`, an environment where the wheel is installed: its own
    frontend); stop it (SIGTERM) afterwards."""
    # JupyterLab serves a federated extension from <path>/<package name>/, like the link
    # `jupyter labextension develop` makes in the environment.
    extensions = tmp / "labextensions"
    extensions.mkdir(parents=True, exist_ok=True)
    link = extensions / "jupyter-gitsync"
    if python is None and not link.exists():
        link.symlink_to(built_frontend(), target_is_directory=True)
    settings = tmp / "lab-settings"
    for name, values in _QUIET_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    with jupyter_process(
        root,
        tmp,
        env,
        app="jupyterlab",
        # The frontend of this checkout, whether or not it is installed into the environment.
        extra_args=[f"--LabApp.extra_labextensions_path={extensions}"],
        extra_env={
            "JUPYTERLAB_SETTINGS_DIR": str(settings),
            "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
        },
        python=python,
        start_timeout=90,
    ) as server:
        yield Lab(server.url, server.token, server.process, server.log)
