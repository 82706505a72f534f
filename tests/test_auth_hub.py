"""The JupyterHub auth_state provider against a real JupyterHub (the README's config): read from
the user's model when a push needs it, cached, read again when it expires, when the remote
refuses it and before the refused token's next use; and when the hub shows no token, a warning
that says what is missing."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_gitsync.auth import Credentials
from jupyter_gitsync.auth.hub import HubAuthStateProvider
from jupyter_gitsync.engine import EngineConfig, SyncEngine
from jupyter_gitsync.state import State
from tests.github_stub import GitHubStub
from tests.gitserver import GitHTTPServer
from tests.helpers import async_wait_until, ref_or_none, show
from tests.jupyter_process import free_port
from tests.jupyterhub_process import Hub, jupyterhub_process

pytestmark = pytest.mark.hub

BRANCH = "gitsync/hub"
# What the README's 'server' role gives a server's token (the hub adds the server's name to
# access:servers!server when it spawns one; a token made through the API names the user).
SERVER_SCOPES = ["users:activity!user", "access:servers!user", "admin:auth_state!user"]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    github = GitHubStub().start()
    try:
        with jupyterhub_process(tmp_path_factory.mktemp("hub"), github) as running:
            yield running
    finally:
        github.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def auth_state(token: str, login: str = "ada", **extra: Any) -> dict[str, Any]:
    """What GitHubOAuthenticator keeps after a login."""
    return {
        "access_token": token,
        "token_response": {"access_token": token, "token_type": "bearer", "scope": "repo"},
        "github_user": {"login": login},
        **extra,
    }


def new_user(hub: Hub, name: str | None = None) -> str:
    name = name or f"user{secrets.token_hex(4)}"
    hub.create_user(name)
    return name


def provider_for(
    hub: Hub, user: str, scopes: list[str] | None = None, clock: Clock | None = None
) -> HubAuthStateProvider:
    """The provider as a server of `user` builds it: its own token, with the server's scopes."""
    token = hub.new_token(user, scopes or SERVER_SCOPES)
    return HubAuthStateProvider(hub.api_url, token, user, clock=clock or Clock())


def test_from_env_needs_the_three_variables_the_hub_sets() -> None:
    env = {
        "JUPYTERHUB_API_URL": "http://127.0.0.1:1/hub/api",
        "JUPYTERHUB_API_TOKEN": "t",
        "JUPYTERHUB_USER": "ada",
    }
    provider = HubAuthStateProvider.from_env(env)
    assert provider is not None
    assert provider.user_url == "http://127.0.0.1:1/hub/api/users/ada"
    for missing in env:
        assert HubAuthStateProvider.from_env({k: v for k, v in env.items() if k != missing}) is None
    assert provider.reads == 0  # nothing is read before a push needs a token


def test_the_hubs_who_am_i_never_shows_auth_state(hub: Hub) -> None:
    """Why the user's model is read: GET /user leaves auth_state out even for a token that may
    read it (JupyterHub 6)."""
    user = new_user(hub)
    token = secrets.token_hex(20)
    hub.set_auth_state(user, auth_state(token))
    server_token = hub.new_token(user, SERVER_SCOPES)
    me = hub.api("GET", "user", token=server_token).json()
    assert me["name"] == user and not me.get("auth_state")
    model = hub.api("GET", f"users/{user}", token=server_token).json()
    assert model["auth_state"]["access_token"] == token


def test_reads_auth_state_once_and_caches_it(hub: Hub) -> None:
    user = new_user(hub, f"ada.lovelace+{secrets.token_hex(2)}@example.org")  # quoted in URLs
    token = secrets.token_hex(20)
    hub.set_auth_state(user, auth_state(token, login="ada"))
    provider = provider_for(hub, user)
    assert [provider.token() for _ in range(3)] == [token] * 3
    assert provider.reads == 1
    assert provider.login == "ada"
    assert set(provider.secrets()) == {token, provider._api_token}


def test_reads_again_when_the_token_expires(hub: Hub) -> None:
    user, clock = new_user(hub), Clock()
    first, second = secrets.token_hex(20), secrets.token_hex(20)
    state = auth_state(first)
    state["token_response"]["expires_in"] = 28800
    hub.set_auth_state(user, state)
    provider = provider_for(hub, user, clock=clock)
    assert provider.token() == first
    clock.now += 28800 - 120
    assert provider.token() == first and provider.reads == 1
    hub.set_auth_state(user, auth_state(second, expires_at=clock.now + 28800))
    clock.now += 61  # within a minute of expiry: read again
    assert provider.token() == second
    assert provider.reads == 2
    assert first in provider.secrets()  # the old token is still redacted


def test_a_refusal_reads_again_and_announces_only_a_new_token(hub: Hub) -> None:
    user = new_user(hub)
    first, second = secrets.token_hex(20), secrets.token_hex(20)
    hub.set_auth_state(user, auth_state(first))
    provider = provider_for(hub, user)
    announced: list[str | None] = []
    credentials = Credentials([provider])
    credentials.subscribe(lambda: announced.append(provider.token()))
    assert credentials.token() == first
    credentials.refused()  # the hub still has the same token: nothing to retry with
    assert announced == [] and credentials.epoch == 0
    hub.set_auth_state(user, auth_state(second))
    credentials.refused()
    assert announced == [second] and credentials.epoch == 1
    assert provider.reads == 3


def test_a_refused_token_is_read_again_before_its_next_use(hub: Hub) -> None:
    """The user logs in to the hub again some time after the refusal: the next attempt (the
    engine's re-check, or Sync now) reads the hub first, uses the new token and announces it;
    a token that was not refused is not read again."""
    user = new_user(hub)
    first, second = secrets.token_hex(20), secrets.token_hex(20)
    hub.set_auth_state(user, auth_state(first))
    provider = provider_for(hub, user)
    credentials = Credentials([provider])
    assert credentials.token() == first
    credentials.refused()  # read at once: still the refused token
    reads = provider.reads
    assert credentials.token() == first and provider.reads == reads + 1  # read before use
    assert credentials.token() == first and provider.reads == reads + 1  # then cached again
    credentials.refused()
    hub.set_auth_state(user, auth_state(second))  # the new login, after the refusal
    assert credentials.token() == second
    assert credentials.epoch == 1  # announced: the engine pushes at once
    assert credentials.token() == second and provider.reads == reads + 3


def test_without_the_scope_the_warning_names_it_for_both_roles(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    """A token without admin:auth_state!user (what a server gets when either role lacks it)."""
    user = new_user(hub)
    hub.set_auth_state(user, auth_state(secrets.token_hex(20)))
    clock = Clock()
    provider = provider_for(hub, user, ["users:activity!user", "access:servers!user"], clock)
    with caplog.at_level(logging.WARNING):
        assert provider.token() is None
        assert provider.token() is None  # not asked again right away
        clock.now += 31
        assert provider.token() is None  # asked again, not warned again
    assert provider.reads == 2
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("jupyter_gitsync")]
    assert len(warnings) == 1
    assert "admin:auth_state!user" in warnings[0] and "'user' and the 'server' role" in warnings[0]
    assert "enable_auth_state" not in warnings[0]


def test_without_auth_state_the_warning_says_how_to_keep_it(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    """The token may read auth_state, but the hub keeps none for this user (auth_state not
    enabled, or a login from before it was): a later login is picked up."""
    user, clock = new_user(hub), Clock()
    provider = provider_for(hub, user, clock=clock)
    with caplog.at_level(logging.WARNING):
        assert provider.token() is None
    assert "enable_auth_state" in caplog.text and "log in again" in caplog.text
    assert "admin:auth_state!user" not in caplog.text
    late = secrets.token_hex(20)
    hub.set_auth_state(user, auth_state(late))
    clock.now += 31
    assert provider.token() == late


def test_a_wrong_hub_token_or_no_hub_is_no_token(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    user = new_user(hub)
    hub.set_auth_state(user, auth_state(secrets.token_hex(20)))
    wrong = HubAuthStateProvider(hub.api_url, "not-the-servers-token", user)
    with caplog.at_level(logging.WARNING):
        assert wrong.token() is None
    assert "HTTP 403" in caplog.text
    gone = HubAuthStateProvider(f"http://127.0.0.1:{free_port()}/hub/api", "x", user)
    with caplog.at_level(logging.WARNING):
        assert gone.token() is None
    assert "could not be reached" in caplog.text
    assert "not-the-servers-token" not in caplog.text


async def _engine(
    workspace: Path, remote_url: str, provider: HubAuthStateProvider, recheck_seconds: float
) -> SyncEngine:
    config = EngineConfig(
        workspace=workspace,
        branch=BRANCH,
        remote_url=remote_url,
        commit_delay_seconds=0.2,
        push_interval_seconds=0.0,
        retry_initial_seconds=0.2,
        retry_max_seconds=1.0,
        auth_recheck_seconds=recheck_seconds,
    )
    engine = SyncEngine(config, Credentials([provider]))
    await engine.start()
    return engine


async def test_a_push_refused_with_401_reads_the_hub_again(
    hub: Hub,
    git_server: GitHTTPServer,
    remote: str,
    remote_url: str,
    workspace: Path,
    token: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    user = new_user(hub)
    hub.set_auth_state(user, auth_state(token))
    provider = provider_for(hub, user)
    engine = await _engine(workspace, remote_url, provider, recheck_seconds=3600)
    await async_wait_until(lambda: engine.status.state == State.SYNCED, what="first push")
    assert provider.reads == 1

    # The hub refreshed the token; the old one is no longer accepted.
    rotated = secrets.token_hex(20)
    git_server.token = rotated
    hub.set_auth_state(user, auth_state(rotated))
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
    assert provider.reads == 2  # once at the first push, once after the refusal
    assert provider.token() == rotated
    assert git_server.count(401, with_credentials=True) >= 1
    await engine.stop(5)
    for secret in (token, rotated, provider._api_token):
        assert secret not in caplog.text
        assert secret not in str(engine.status_json())


async def test_sync_now_after_a_new_hub_login_pushes_at_once(
    hub: Hub,
    git_server: GitHTTPServer,
    remote: str,
    remote_url: str,
    workspace: Path,
    token: str,
) -> None:
    """Refused, then the user logs in to the hub again: with a re-check an hour away, Sync now
    reads the hub and pushes what waited."""
    user = new_user(hub)
    hub.set_auth_state(user, auth_state(token))
    provider = provider_for(hub, user)
    engine = await _engine(workspace, remote_url, provider, recheck_seconds=3600)
    try:
        await async_wait_until(lambda: engine.status.state == State.SYNCED, what="first push")
        git_server.token = secrets.token_hex(20)  # the token was revoked
        (workspace / "waiting.txt").write_text("kept while refused")
        await async_wait_until(
            lambda: engine.status.state == State.AUTH_REQUIRED, what="auth-required"
        )
        new_login = secrets.token_hex(20)
        git_server.token = new_login
        hub.set_auth_state(user, auth_state(new_login))
        status = await engine.sync_now()
        assert status["state"] == "synced", status
        bare = git_server.repo_path(remote)
        assert show(bare, f"refs/heads/{BRANCH}", "waiting.txt") == b"kept while refused"
    finally:
        await engine.stop(5)


async def test_a_restore_refused_at_start_picks_up_a_new_login_by_itself(
    hub: Hub,
    git_server: GitHTTPServer,
    remote: str,
    remote_url: str,
    workspace: Path,
) -> None:
    """The server starts with a token the remote no longer takes (revoked since the last
    login): nothing can be restored or pushed. The user logs in to the hub again; the next
    re-check reads the hub and everything goes through, with nobody pressing anything."""
    user = new_user(hub)
    hub.set_auth_state(user, auth_state(secrets.token_hex(20)))  # refused by the remote
    provider = provider_for(hub, user)
    (workspace / "early.txt").write_text("saved before the new login")
    engine = await _engine(workspace, remote_url, provider, recheck_seconds=0.5)
    try:
        await async_wait_until(
            lambda: engine.status.state == State.AUTH_REQUIRED, what="auth-required at start"
        )
        new_login = secrets.token_hex(20)
        hub.set_auth_state(user, auth_state(new_login))
        git_server.token = new_login
        bare = git_server.repo_path(remote)
        await async_wait_until(
            lambda: (
                show(bare, f"refs/heads/{BRANCH}", "early.txt") == b"saved before the new login"
                and engine.status.state == State.SYNCED
            ),
            what="restore and push after the new login",
        )
    finally:
        await engine.stop(5)
