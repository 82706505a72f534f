"""The JupyterHub auth_state provider: read when a push needs it, cached, read again when it
expires or when the remote refuses it (real git server, real engine)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_gitsync.auth import Credentials
from jupyter_gitsync.auth.hub import HubAuthStateProvider
from jupyter_gitsync.engine import EngineConfig, SyncEngine
from jupyter_gitsync.state import State
from tests.github_stub import GitHubStub
from tests.gitserver import GitHTTPServer
from tests.helpers import async_wait_until, ref_or_none, show

BRANCH = "gitsync/hub"


@pytest.fixture
def github() -> Iterator[GitHubStub]:
    stub = GitHubStub().start()
    yield stub
    stub.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def hub_provider(github: GitHubStub, clock: Clock | None = None) -> HubAuthStateProvider:
    return HubAuthStateProvider(github.hub_api_url, github.hub_api_token, clock=clock or Clock())


def test_from_env_needs_both_variables(github: GitHubStub) -> None:
    env = {"JUPYTERHUB_API_URL": github.hub_api_url, "JUPYTERHUB_API_TOKEN": "t"}
    assert HubAuthStateProvider.from_env(env) is not None
    assert HubAuthStateProvider.from_env({"JUPYTERHUB_API_URL": github.hub_api_url}) is None
    assert HubAuthStateProvider.from_env({}) is None


def test_reads_auth_state_once_and_caches_it(github: GitHubStub) -> None:
    token = secrets.token_hex(20)
    github.set_auth_state(token, login="ada")
    provider = hub_provider(github)
    assert github.hub_reads == 0  # nothing is read before a push needs a token
    assert [provider.token() for _ in range(3)] == [token] * 3
    assert github.hub_reads == 1
    assert provider.login == "ada"
    assert set(provider.secrets()) == {token, github.hub_api_token}


def test_reads_again_when_the_token_expires(github: GitHubStub) -> None:
    clock = Clock()
    first, second = secrets.token_hex(20), secrets.token_hex(20)
    github.set_auth_state(first, token_response={"expires_in": 28800})
    provider = hub_provider(github, clock)
    assert provider.token() == first
    clock.now += 28800 - 120
    assert provider.token() == first and github.hub_reads == 1
    github.set_auth_state(second, expires_at=clock.now + 28800)
    clock.now += 61  # within a minute of expiry: read again
    assert provider.token() == second
    assert github.hub_reads == 2
    assert first in provider.secrets()  # the old token is still redacted


def test_a_refusal_reads_again_and_announces_only_a_new_token(github: GitHubStub) -> None:
    first, second = secrets.token_hex(20), secrets.token_hex(20)
    github.set_auth_state(first)
    provider = hub_provider(github)
    announced: list[str | None] = []
    credentials = Credentials([provider])
    credentials.subscribe(lambda: announced.append(provider.token()))
    assert credentials.token() == first
    credentials.refused()  # the hub still has the same token: nothing to retry with
    assert announced == [] and credentials.epoch == 0
    github.set_auth_state(second)
    credentials.refused()
    assert announced == [second] and credentials.epoch == 1
    assert github.hub_reads == 3


def test_without_auth_state_it_says_how_to_configure_the_hub(
    github: GitHubStub, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    github.set_auth_state(None)
    provider = hub_provider(github, clock)
    with caplog.at_level(logging.WARNING):
        assert provider.token() is None
        assert provider.token() is None  # not asked again right away
    assert github.hub_reads == 1
    assert "enable_auth_state" in caplog.text and "admin:auth_state!user" in caplog.text
    clock.now += 31
    github.set_auth_state("late-token")
    assert provider.token() == "late-token"


def test_a_wrong_hub_token_or_no_hub_is_no_token(
    github: GitHubStub, caplog: pytest.LogCaptureFixture
) -> None:
    github.set_auth_state(secrets.token_hex(20))
    wrong = HubAuthStateProvider(github.hub_api_url, "not-the-hub-token")
    with caplog.at_level(logging.WARNING):
        assert wrong.token() is None
    assert "HTTP 403" in caplog.text
    url = github.hub_api_url
    github.stop()
    assert HubAuthStateProvider(url, "x").token() is None
    assert "could not be reached" in caplog.text
    assert "not-the-hub-token" not in caplog.text


async def test_a_push_refused_with_401_reads_the_hub_again(
    github: GitHubStub,
    git_server: GitHTTPServer,
    remote: str,
    remote_url: str,
    workspace: Path,
    token: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    github.set_auth_state(token)
    provider = hub_provider(github)
    config = EngineConfig(
        workspace=workspace,
        branch=BRANCH,
        remote_url=remote_url,
        commit_delay_seconds=0.2,
        push_interval_seconds=0.0,
        retry_initial_seconds=0.2,
        retry_max_seconds=1.0,
    )
    engine = SyncEngine(config, Credentials([provider]))
    await engine.start()
    await async_wait_until(lambda: engine.status.state == State.SYNCED, what="first push")
    assert github.hub_reads == 1

    # The hub refreshed the token; the old one is no longer accepted.
    rotated = secrets.token_hex(20)
    git_server.token = rotated
    github.set_auth_state(rotated)
    (workspace / "after-rotation.txt").write_text("still saved")
    bare = git_server.repo_path(remote)
    await async_wait_until(
        lambda: (
            (tip := ref_or_none(bare, f"refs/heads/{BRANCH}"))
            and show(bare, tip, "after-rotation.txt") == b"still saved"
            and engine.status.state == State.SYNCED
        ),
        what="the push with the re-read token",
    )
    assert github.hub_reads == 2  # once at the first push, once after the refusal
    assert provider.token() == rotated
    assert git_server.count(401, with_credentials=True) >= 1
    await engine.stop(5)
    for secret in (token, rotated, github.hub_api_token):
        assert secret not in caplog.text
        assert secret not in str(engine.status_json())
