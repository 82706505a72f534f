"""An anonymous Binder launch, as mybinder.org makes it: a random JUPYTERHUB_USER
(`<owner>-<repo>-<8 random characters>`), BINDER_* variables, and no token. Against a real
Jupyter server (pytest-jupyter), the real git server behind the GitHub stand-in's
`<owner>/<repo>.git`, and the stand-in's device flow.

What the user must be told is true: until they sign in, the work is kept only in this container;
the random user name never becomes a branch; once signed in, nothing says sign-in is required or
that a token was refused, and the work goes to gitsync/<login>."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.github_stub import GitHubStub
from tests.gitserver import GitHTTPServer
from tests.helpers import LocalSession, async_wait_until, git, ref_or_none, show
from tests.helpers import start_extensions as start
from tests.test_auth_api import _ENV, Api

OWNER, REPO = "ada", "thesis"


def binder_user() -> str:
    return f"{OWNER}-{REPO}-{secrets.token_hex(4)}"


@pytest.fixture
def pushers() -> set[str]:
    """Who may push to ada/thesis."""
    return {"octocat"}


@pytest.fixture
def github(git_server: GitHTTPServer, pushers: set[str]) -> Iterator[GitHubStub]:
    stub = GitHubStub().start()
    stub.git = git_server  # ada/thesis.git on the stand-in is the real git server
    stub.interval = 0
    stub.add_repo(OWNER, REPO, pushers=pushers)
    yield stub
    stub.stop()


@pytest.fixture
def launch_user() -> str:
    return binder_user()


@pytest.fixture
def jp_root_dir(tmp_path: Path, github: GitHubStub, git_server: GitHTTPServer) -> Path:
    """A Binder launch: a fresh clone of the repository at its default branch."""
    workspace = tmp_path / "workspace"
    git(tmp_path, "clone", "--quiet", str(git_server.repo_path(f"{OWNER}/{REPO}")), str(workspace))
    git(workspace, "remote", "set-url", "origin", f"{github.url}/{OWNER}/{REPO}.git")
    return workspace


@pytest.fixture
def env_token() -> bool:
    """Whether the server gets a token in GITSYNC_TOKEN (one the git server takes and GitHub
    does not know); by default nobody gave one."""
    return False


@pytest.fixture
def jp_server_config(
    github: GitHubStub,
    git_server: GitHTTPServer,
    launch_user: str,
    env_token: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    for name in (*_ENV, "GITSYNC_BRANCH"):
        monkeypatch.delenv(name, raising=False)
    if env_token:
        assert git_server.token is not None
        monkeypatch.setenv("GITSYNC_TOKEN", git_server.token)
    monkeypatch.setenv("JUPYTERHUB_USER", launch_user)
    monkeypatch.setenv("BINDER_LAUNCH_HOST", "https://mybinder.org/")
    monkeypatch.setenv("BINDER_REPO_URL", f"https://github.com/{OWNER}/{REPO}")
    monkeypatch.setenv("BINDER_REF_URL", f"https://github.com/{OWNER}/{REPO}/tree/main")
    settings = {
        "commit_delay_seconds": 0.2,
        "push_interval_seconds": 0.0,
        "retry_initial_seconds": 0.2,
        "retry_max_seconds": 1.0,
        "client_id": github.client_id,
        "github_url": github.url,
        "github_api_url": github.url,
    }
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_gitsync": True},
            "allow_unauthenticated_access": False,
        },
        "GitSync": settings,
    }


async def test_before_sign_in_binder_says_why_and_never_uses_the_random_user(
    jp_serverapp: Any, jp_fetch: Any, jp_root_dir: Path, launch_user: str
) -> None:
    api = Api(jp_fetch)
    await start(jp_serverapp)
    (jp_root_dir / "draft.txt").write_text("kept here until sign-in")
    status = await async_wait_until(
        lambda: _snapshotted(api), what="a local snapshot before sign-in"
    )
    assert status["state"] == "auth-required"
    assert status["error"]["kind"] == "no-token"
    message = status["error"]["message"]
    assert "Sign in to GitHub to keep your work" in message
    assert "saved only in this Binder session" in message
    assert "refused" not in message
    assert launch_user not in json.dumps(status)  # never a branch, never shown
    assert launch_user.rsplit("-", 1)[1] not in status["branch"]


async def test_signing_in_on_binder_never_goes_back_to_sign_in_required(
    jp_serverapp: Any,
    jp_fetch: Any,
    events: list[dict[str, Any]],
    jp_root_dir: Path,
    git_server: GitHTTPServer,
    github: GitHubStub,
    launch_user: str,
    tmp_path: Path,
) -> None:
    """The last launch's work is on gitsync/octocat; this launch edits before signing in;
    after sign-in both are in the workspace and on the tip."""
    assert git_server.token is not None
    bare = git_server.repo_path(f"{OWNER}/{REPO}")
    last_launch = tmp_path / "last-launch"
    git(tmp_path, "clone", "--quiet", str(bare), str(last_launch))
    earlier = LocalSession(last_launch, "gitsync/octocat")
    (last_launch / "yesterday.txt").write_text("from the last launch")
    earlier.snapshot(None)
    earlier.push(git_server.repo_url(f"{OWNER}/{REPO}"), lambda: git_server.token)
    earlier.close()
    api = Api(jp_fetch)
    await start(jp_serverapp)
    (jp_root_dir / "draft.txt").write_text("written before sign-in")
    await async_wait_until(lambda: _snapshotted(api), what="a local snapshot")
    _, started = await api.call("POST", "auth", "device")
    assert git_server.token is not None
    github.add_user_token("octocat", git_server.token)
    seen_before = len(events)
    github.approve(started["user_code"], login="octocat", token=git_server.token)
    synced = await async_wait_until(lambda: api.state_is("synced"), what="synced after sign-in")
    assert synced["branch"] == "gitsync/octocat"
    assert show(bare, "refs/heads/gitsync/octocat", "draft.txt") == b"written before sign-in"
    assert show(bare, "refs/heads/gitsync/octocat", "yesterday.txt") == b"from the last launch"
    assert (jp_root_dir / "yesterday.txt").read_text() == "from the last launch"
    after = events[seen_before:]
    states = [e["state"] for e in after]
    # once the token is in use, nothing says sign-in is required, or that a token was refused
    in_use = next(i for i, e in enumerate(after) if e["state"] == "restoring")
    assert "auth-required" not in states[in_use:], states
    assert not [e for e in after if "refused" in json.dumps(e.get("error"))], states
    branches = git(bare, "for-each-ref", "--format=%(refname)", "refs/heads/").split()
    assert not [b for b in branches if launch_user in b or launch_user.rsplit("-", 1)[1] in b]
    assert ref_or_none(bare, "refs/heads/gitsync/octocat") == synced["head"]


@pytest.mark.parametrize("env_token", [True])
async def test_a_token_that_names_nobody_leaves_the_branch_unnamed(
    jp_serverapp: Any, jp_fetch: Any, jp_root_dir: Path, git_server: GitHTTPServer
) -> None:
    """A token GitHub does not know (an admin's token for another host, an App token): no
    login names the branch, so nothing is pushed, and the status says how to fix that."""
    api = Api(jp_fetch)
    await start(jp_serverapp)
    (jp_root_dir / "draft.txt").write_text("kept here")
    status = await async_wait_until(lambda: _snapshotted(api), what="a local snapshot")
    assert status["error"]["kind"] == "no-login"
    assert "GITSYNC_BRANCH" in status["error"]["message"]
    assert "refused" not in status["error"]["message"]
    assert status["branch"] == ""
    bare = git_server.repo_path(f"{OWNER}/{REPO}")
    branches = git(bare, "for-each-ref", "--format=%(refname)", "refs/heads/").split()
    assert branches == ["refs/heads/main"]  # nothing pushed under any name


async def _snapshotted(api: Api) -> dict[str, Any] | None:
    status = await api.get("status")
    return status if status["head"] and status["state"] == "auth-required" else None


@pytest.mark.parametrize("pushers", [set()])
async def test_a_relaunch_finds_the_users_fork_by_itself_after_sign_in(
    jp_serverapp: Any,
    jp_fetch: Any,
    jp_root_dir: Path,
    git_server: GitHTTPServer,
    github: GitHubStub,
    tmp_path: Path,
) -> None:
    """octocat may not push to ada/thesis; an earlier launch forked it and synced there. This
    launch signs in: the fork is found (GET /repos/octocat/thesis), its snapshot taken in,
    and the work goes there; nothing is pushed to ada/thesis, and no fork is made again."""
    assert git_server.token is not None
    github.add_user_token("octocat", git_server.token)
    github.add_fork(f"{OWNER}/{REPO}", "octocat")
    fork_bare = git_server.repo_path("octocat/thesis")
    last_launch = tmp_path / "last-launch"
    git(tmp_path, "clone", "--quiet", str(fork_bare), str(last_launch))
    earlier = LocalSession(last_launch, "gitsync/octocat")
    (last_launch / "yesterday.txt").write_text("synced to the fork")
    earlier.snapshot(None)
    earlier.push(git_server.repo_url("octocat/thesis"), lambda: git_server.token)
    earlier.close()
    forks_before = list(github.forks)

    api = Api(jp_fetch)
    await start(jp_serverapp)
    (jp_root_dir / "today.txt").write_text("this launch")
    await async_wait_until(lambda: _snapshotted(api), what="a local snapshot")
    _, started = await api.call("POST", "auth", "device")
    github.approve(started["user_code"], login="octocat", token=git_server.token)
    synced = await async_wait_until(lambda: api.state_is("synced"), what="synced to the fork")
    assert synced["remote_url"] == f"{github.url}/octocat/thesis.git"
    assert synced["branch"] == "gitsync/octocat"
    tip = "refs/heads/gitsync/octocat"
    assert show(fork_bare, tip, "yesterday.txt") == b"synced to the fork"
    assert show(fork_bare, tip, "today.txt") == b"this launch"
    assert (jp_root_dir / "yesterday.txt").read_text() == "synced to the fork"
    upstream = git_server.repo_path(f"{OWNER}/{REPO}")
    assert git(upstream, "for-each-ref", "--format=%(refname)", "refs/heads/").split() == [
        "refs/heads/main"
    ]
    assert github.forks == forks_before  # found, not made again
