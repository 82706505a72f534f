"""Signing in through the REST API of a real Jupyter server (pytest-jupyter), with the real git
server as the remote and the local GitHub stand-in for OAuth and the REST API."""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from jupyter_gitsync.app import GitSync
from tests.github_stub import GitHubStub
from tests.gitserver import GitHTTPServer
from tests.helpers import LocalSession, async_wait_until, git, ref_or_none, show
from tests.helpers import start_extensions as start

BRANCH = "gitsync/tester"
_ENV = (
    "GITSYNC_TOKEN",
    "GITHUB_TOKEN",
    "JUPYTERHUB_API_URL",
    "JUPYTERHUB_API_TOKEN",
    "GITSYNC_CLIENT_ID",
    "GITSYNC_GITHUB_URL",
    "GITSYNC_GITHUB_API_URL",
    "GITSYNC_GITHUB_APP_ID",
    "GITSYNC_GITHUB_APP_PRIVATE_KEY_PATH",
)


@pytest.fixture
def github(git_server: GitHTTPServer) -> Iterator[GitHubStub]:
    stub = GitHubStub().start()
    stub.git = git_server  # <owner>/<repo>.git on the stub is served by the real git server
    stub.interval = 0  # poll at once: the stub is local (GitHub itself says 5 s)
    yield stub
    stub.stop()


@pytest.fixture
def override() -> dict[str, str | None]:
    """GitSync settings a test replaces; `{github}` is the stub's URL; None unsets one."""
    return {}


@pytest.fixture
def env_token() -> bool:
    """Whether the server gets the test's token as GITSYNC_TOKEN; by default it has no token
    and the user signs in from the UI."""
    return False


@pytest.fixture
def jp_root_dir(workspace: Path) -> Path:
    return workspace


@pytest.fixture
def jp_server_config(
    remote_url: str,
    github: GitHubStub,
    override: dict[str, str | None],
    env_token: bool,
    token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    if env_token:
        monkeypatch.setenv("GITSYNC_TOKEN", token)
    settings: dict[str, Any] = {
        "remote_url": remote_url,
        "branch": BRANCH,
        "commit_delay_seconds": 0.2,
        "push_interval_seconds": 0.0,
        "retry_initial_seconds": 0.2,
        "retry_max_seconds": 1.0,
        "client_id": github.client_id,
        "github_url": github.url,
        "github_api_url": github.url,
    }
    settings.update({k: v.format(github=github.url) for k, v in override.items() if v is not None})
    for unset in [k for k, v in override.items() if v is None]:
        settings.pop(unset)  # None: leave the setting at its default
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_gitsync": True},
            "allow_unauthenticated_access": False,
        },
        "GitSync": settings,
    }


class Api:
    """jp_fetch for our routes; keeps every answer body for the hygiene check."""

    def __init__(self, jp_fetch: Any) -> None:
        self.fetch = jp_fetch
        self.answers: list[str] = []

    async def call(self, method: str, *path: str) -> tuple[int, dict[str, Any]]:
        body = "" if method == "POST" else None
        try:
            response = await self.fetch("gitsync", *path, method=method, body=body)
        except HTTPClientError as exc:
            assert exc.response is not None
            text = exc.response.body.decode()
            self.answers.append(text)
            return exc.code, json.loads(text)
        text = response.body.decode()
        self.answers.append(text)
        return response.code, json.loads(text)

    async def get(self, *path: str) -> dict[str, Any]:
        code, body = await self.call("GET", *path)
        assert code == 200, body
        return body

    async def state_is(self, *states: str) -> dict[str, Any] | None:
        current = await self.get("status")
        return current if current["state"] in states else None


def files_holding(root: Path, secret: str) -> list[Path]:
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and secret.encode() in path.read_bytes()
    ]


async def test_sign_in_from_the_ui_pushes_every_snapshot_made_meanwhile(
    jp_serverapp: Any,
    jp_fetch: Any,
    extension: GitSync,
    events: list[dict[str, Any]],
    workspace: Path,
    git_server: GitHTTPServer,
    remote: str,
    token: str,
    github: GitHubStub,
    jp_logging_stream: Any,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    api = Api(jp_fetch)
    logins: list[str] = []
    extension.auth.on_login.append(logins.append)
    base = git(workspace, "rev-parse", "HEAD")
    await start(jp_serverapp)

    # No token anywhere: snapshots are kept locally, one after the other.
    (workspace / "first.txt").write_text("first")
    first = await async_wait_until(lambda: _more(api, None), what="a local snapshot")
    assert first["error"]["kind"] == "no-token"
    (workspace / "second.txt").write_text("second")
    later = await async_wait_until(lambda: _more(api, first), what="another snapshot")
    assert later["state"] == "auth-required"
    assert ref_or_none(git_server.repo_path(remote), f"refs/heads/{BRANCH}") is None

    nobody = await api.get("auth")
    assert nobody["signed_in"] is False and nobody["provider"] is None
    assert nobody["sign_in_available"] is True and nobody["device_flow"] is None

    # The user signs in with the device flow.
    code, started = await api.call("POST", "auth", "device")
    assert code == 200
    assert {"user_code", "verification_uri", "expires_in", "interval"} <= set(started)
    assert started["verification_uri"] == f"{github.url}/login/device"
    pending = await api.get("auth")
    assert pending["device_flow"]["state"] == "pending"
    assert pending["device_flow"]["user_code"] == started["user_code"]
    github.approve(started["user_code"], login="ada", token=token)

    synced = await async_wait_until(lambda: api.state_is("synced"), what="the push")
    bare = git_server.repo_path(remote)
    tip = ref_or_none(bare, f"refs/heads/{BRANCH}")
    assert tip == synced["head"] == synced["remote_head"] and synced["unpushed_commits"] == 0
    assert show(bare, tip, "first.txt") == b"first" and show(bare, tip, "second.txt") == b"second"
    pushed = git(bare, "rev-list", "--first-parent", tip, f"^{base}").splitlines()
    assert len(pushed) >= 2  # every snapshot made while signed out, not a squash

    signed_in = await api.get("auth")
    assert signed_in["signed_in"] is True and signed_in["provider"] == "device"
    assert signed_in["login"] == "ada" and signed_in["scopes"] == ["repo"]
    assert signed_in["device_flow"] is None
    assert signed_in["repository"] is None and signed_in["can_push"] is None  # not GitHub
    assert logins == ["ada"] and extension.auth.login == "ada"

    # Sign out: the token is forgotten.
    code, signed_out = await api.call("DELETE", "auth")
    assert code == 200 and signed_out["signed_in"] is False
    assert extension.credentials.token() is None

    # The token is nowhere: logs, events, API answers, .git, the workspace, the remote.
    secrets_ = [token, github.latest_code().device_code]
    logs = jp_logging_stream.getvalue() + caplog.text
    for secret in secrets_:
        assert secret not in logs
        assert secret not in json.dumps(events)
        assert all(secret not in answer for answer in api.answers)
        assert files_holding(tmp_path, secret) == []
        assert files_holding(git_server.root, secret) == []
    assert token not in git(workspace, "config", "--list")
    assert token not in git(workspace, "remote", "-v")


async def _more(api: Api, before: dict[str, Any] | None) -> dict[str, Any] | None:
    """The status once it is auth-required with more local snapshots than `before` had."""
    current = await api.get("status")
    floor = 0 if before is None else before["unpushed_commits"]
    if current["state"] == "auth-required" and current["unpushed_commits"] > floor:
        return current
    return None


@pytest.mark.parametrize(("act", "state"), [("deny", "denied"), ("expire", "expired")])
async def test_a_denied_or_expired_sign_in_is_shown(
    jp_serverapp: Any, jp_fetch: Any, github: GitHubStub, act: str, state: str
) -> None:
    api = Api(jp_fetch)
    await start(jp_serverapp)
    _, started = await api.call("POST", "auth", "device")
    getattr(github, act)(started["user_code"])
    shown = await async_wait_until(lambda: _flow_state(api, state), what=f"the {state} sign-in")
    assert shown["signed_in"] is False
    assert shown["device_flow"]["user_code"] == started["user_code"]
    assert shown["device_flow"]["verification_uri"] == started["verification_uri"]
    # a new attempt gets a new code
    _, again = await api.call("POST", "auth", "device")
    assert again["user_code"] != started["user_code"] and again["state"] == "pending"


async def _flow_state(api: Api, state: str) -> dict[str, Any] | None:
    answer = await api.get("auth")
    flow = answer["device_flow"]
    return answer if flow is not None and flow["state"] == state else None


@pytest.mark.parametrize("override", [{"client_id": ""}])
async def test_without_a_client_id_sign_in_says_how_to_set_it(
    jp_serverapp: Any, jp_fetch: Any, github: GitHubStub
) -> None:
    api = Api(jp_fetch)
    await start(jp_serverapp)
    code, answer = await api.call("POST", "auth", "device")
    assert code == 400
    assert "GITSYNC_CLIENT_ID" in answer["message"] and "c.GitSync.client_id" in answer["message"]
    assert (await api.get("auth"))["sign_in_available"] is False
    assert github.requests == []


@pytest.mark.parametrize("override", [{"remote_url": "{github}/octo/project.git"}])
@pytest.mark.parametrize("env_token", [True])
async def test_permission_check_and_fork_on_a_github_remote(
    jp_serverapp: Any,
    jp_fetch: Any,
    extension: GitSync,
    github: GitHubStub,
    git_server: GitHTTPServer,
    token: str,
    tmp_path: Path,
) -> None:
    """The user may not push upstream; their fork already holds a sync branch from an
    earlier session. After forking, that branch's files are merged into the workspace
    before anything is pushed to it."""
    github.add_user_token("ada", token=token)  # GITSYNC_TOKEN is ada's token on GitHub
    github.add_repo("octo", "project")
    earlier = tmp_path / "earlier"
    subprocess.run(
        ["git", "clone", "-q", str(git_server.repo_path("octo/project")), str(earlier)], check=True
    )
    (earlier / "from-the-fork.txt").write_text("an earlier session's work\n")
    git_server.fork_repo("octo/project", "ada/project")
    session = LocalSession(earlier, BRANCH)
    session.snapshot(None)
    session.push(git_server.repo_url("ada/project"), lambda: token)
    session.close()
    api = Api(jp_fetch)
    forks: list[str] = []
    extension.auth.on_fork.append(forks.append)
    await start(jp_serverapp)
    described = await api.get("auth")
    assert described["provider"] == "env" and described["login"] == "ada"
    assert described["repository"] == "octo/project" and described["can_push"] is False
    # Before the first push the engine asks, and says so in plain words.
    workspace = extension.engine.config.workspace
    (workspace / "work.txt").write_text("mine")
    refused = await async_wait_until(lambda: _error_kind(api, "permission"), what="the check")
    assert refused["state"] == "auth-required"
    assert "cannot push to octo/project" in refused["error"]["message"]
    assert "Fork it to your GitHub account" in refused["error"]["message"]
    code, fork = await api.call("POST", "auth", "fork")
    assert code == 202
    assert fork["clone_url"] == f"{github.url}/ada/project.git"
    assert forks == [fork["clone_url"]]
    # the engine now syncs to the fork, having taken in what the fork already had
    fork_tip = git_server.repo_path("ada/project")
    await async_wait_until(
        lambda: show(fork_tip, f"refs/heads/{BRANCH}", "work.txt"), what="work pushed to the fork"
    )
    assert show(fork_tip, f"refs/heads/{BRANCH}", "from-the-fork.txt") is not None
    assert (workspace / "from-the-fork.txt").read_text() == "an earlier session's work\n"
    moved = await async_wait_until(lambda: _remote_is(api, fork["clone_url"]), what="the switch")
    assert moved["error"] is None or moved["error"]["kind"] != "permission"
    assert show(git_server.repo_path("octo/project"), f"refs/heads/{BRANCH}", "work.txt") is None
    assert all(token not in answer for answer in api.answers)


async def _synced_with(api: Api, bare: Path, path: str) -> dict[str, Any] | None:
    current = await api.get("status")
    on_tip = show(bare, f"refs/heads/{current['branch']}", path) is not None
    return current if current["state"] == "synced" and on_tip else None


async def _error_kind(api: Api, kind: str) -> dict[str, Any] | None:
    current = await api.get("status")
    return current if (current["error"] or {}).get("kind") == kind else None


async def _remote_is(api: Api, url: str) -> dict[str, Any] | None:
    current = await api.get("status")
    return current if current["remote_url"] == url else None


@pytest.mark.parametrize("override", [{"branch": None}])
async def test_signing_in_moves_syncing_to_the_users_own_branch(
    jp_serverapp: Any,
    jp_fetch: Any,
    workspace: Path,
    git_server: GitHTTPServer,
    remote: str,
    token: str,
    github: GitHubStub,
    earlier_session: Path,
) -> None:
    """gitsync/ada holds an earlier session's work: it is merged into this workspace before
    anything is pushed there, and the snapshot made before signing in goes on top."""
    bare = git_server.repo_path(remote)
    earlier_tip = git(bare, "rev-parse", "refs/heads/gitsync/ada")
    api = Api(jp_fetch)
    await start(jp_serverapp)
    (workspace / "before-sign-in.txt").write_text("kept")
    await async_wait_until(lambda: _more(api, None), what="a local snapshot")
    assert (await api.get("status"))["branch"] != "gitsync/ada"
    _, started = await api.call("POST", "auth", "device")
    github.approve(started["user_code"], login="ada", token=token)
    synced = await async_wait_until(
        lambda: _synced_with(api, bare, "before-sign-in.txt"), what="the push"
    )
    assert synced["branch"] == "gitsync/ada"
    assert show(bare, "refs/heads/gitsync/ada", "before-sign-in.txt") == b"kept"
    assert show(bare, "refs/heads/gitsync/ada", "data/x.csv") == b"a,b\n1,2\n"
    assert (workspace / "data" / "x.csv").read_bytes() == b"a,b\n1,2\n"
    ancestry = git(bare, "rev-list", "refs/heads/gitsync/ada").split()
    assert earlier_tip in ancestry  # continued, never rewound
    # the snapshots made before the login was known were never pushed under another name
    branches = git(bare, "for-each-ref", "--format=%(refname)", "refs/heads/")
    assert branches.split() == ["refs/heads/gitsync/ada", "refs/heads/main"]


async def test_fork_of_a_remote_that_is_not_on_github_is_a_400(
    jp_serverapp: Any, jp_fetch: Any
) -> None:
    api = Api(jp_fetch)
    await start(jp_serverapp)
    code, answer = await api.call("POST", "auth", "fork")
    assert code == 400 and "cannot be forked" in answer["message"]


async def test_auth_endpoints_need_authentication(jp_serverapp: Any, jp_fetch: Any) -> None:
    await start(jp_serverapp)
    for method, path in (
        ("GET", ("auth",)),
        ("DELETE", ("auth",)),
        ("POST", ("auth", "device")),
        ("POST", ("auth", "fork")),
    ):
        with pytest.raises(HTTPClientError) as caught:
            await jp_fetch(
                "gitsync",
                *path,
                method=method,
                body="" if method == "POST" else None,
                headers={"Authorization": ""},
            )
        assert caught.value.code == 403
