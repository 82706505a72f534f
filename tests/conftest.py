"""Shared fixtures: a real git smart-HTTP server on 127.0.0.1, a remote and a workspace clone."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_gitsync.app import EVENT_SCHEMA_ID, GitSync
from tests.gitserver import GitHTTPServer
from tests.helpers import SNAPSHOT_BRANCH, LocalSession, git
from tests.wheel import InstalledWheel, build_and_install

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def token() -> str:
    """A fresh token for this test, made at run time."""
    return secrets.token_hex(20)


@pytest.fixture
def git_server(tmp_path_factory: pytest.TempPathFactory, token: str) -> Iterator[GitHTTPServer]:
    """A git smart-HTTP server that wants `token` by HTTP Basic auth."""
    server = GitHTTPServer(tmp_path_factory.mktemp("remote"), token=token)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def remote(git_server: GitHTTPServer) -> str:
    """The name of a repository on `git_server` with one commit on main."""
    git_server.create_repo(
        "project",
        {"README.md": b"# Project\n", "analysis.ipynb": b'{"cells": []}\n'},
    )
    return "project"


@pytest.fixture
def remote_url(git_server: GitHTTPServer, remote: str) -> str:
    return git_server.repo_url(remote)


@pytest.fixture
def clone_into(git_server: GitHTTPServer, remote: str) -> Callable[[Path], Path]:
    """Clone the remote into a directory, as Binder or a user would (from the bare repo)."""

    def clone(target: Path) -> Path:
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "clone", "--quiet", str(git_server.repo_path(remote)), str(target)],
            check=True,
        )
        git(target, "config", "user.name", "Test User")
        git(target, "config", "user.email", "test@example.org")
        return target

    return clone


@pytest.fixture
def workspace(tmp_path: Path, clone_into: Callable[[Path], Path]) -> Path:
    return clone_into(tmp_path / "workspace")


@pytest.fixture
def earlier_session(
    tmp_path: Path, clone_into: Callable[[Path], Path], remote_url: str, token: str
) -> Path:
    """A session that edited, added and deleted files and synced them to SNAPSHOT_BRANCH."""
    workspace = clone_into(tmp_path / "earlier")
    (workspace / "analysis.ipynb").write_text('{"cells": ["edited"]}\n')
    (workspace / "README.md").unlink()
    (workspace / "data").mkdir()
    (workspace / "data" / "x.csv").write_bytes(b"a,b\n1,2\n")
    repo = LocalSession(workspace, SNAPSHOT_BRANCH)
    assert repo.snapshot(None) is not None
    repo.push(remote_url, lambda: token)
    return workspace


# -- the extension inside pytest-jupyter's server -------------------------------------------


@pytest.fixture
def extension(jp_serverapp: Any) -> GitSync:
    """The GitSync extension app of pytest-jupyter's server."""
    point = jp_serverapp.extension_manager.extensions["jupyter_gitsync"].extension_points
    app = point["jupyter_gitsync"].app
    assert isinstance(app, GitSync)
    return app


@pytest.fixture
def events(jp_serverapp: Any) -> list[dict[str, Any]]:
    """Every status event the server emits, as the frontend would receive it."""
    received: list[dict[str, Any]] = []

    async def listener(logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        received.append(dict(data))

    jp_serverapp.event_logger.add_listener(schema_id=EVENT_SCHEMA_ID, listener=listener)
    return received


@pytest.fixture(scope="session")
def installed_wheel(tmp_path_factory: pytest.TempPathFactory) -> InstalledWheel:
    """The release wheel installed into a fresh virtualenv (built once per run)."""
    return build_and_install(tmp_path_factory.mktemp("wheel"))
