"""Remote URLs to repositories, GitHub (Enterprise) settings, the provider order, and what the
AuthService asks GitHub: who is signed in, may they push, fork."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_gitsync.app import GitSync
from jupyter_gitsync.auth import Credentials, EnvTokenProvider
from jupyter_gitsync.auth.github import AuthError, GitHubSettings, default_api_url, parse_repo
from jupyter_gitsync.auth.hub import HubAuthStateProvider
from jupyter_gitsync.auth.service import AuthService
from tests.github_stub import GitHubStub, new_token
from tests.jupyter_process import free_port


@pytest.fixture
def github() -> Iterator[GitHubStub]:
    stub = GitHubStub().start()
    yield stub
    stub.stop()


@pytest.mark.parametrize(
    ("url", "web", "expected"),
    [
        ("https://github.com/octo/project", "https://github.com", ("octo", "project")),
        ("https://github.com/octo/project.git", "https://github.com", ("octo", "project")),
        ("https://github.com/octo/project/", "https://github.com", ("octo", "project")),
        ("https://x-access-token@github.com/o/r.git", "https://github.com", ("o", "r")),
        ("git@github.com:octo/project.git", "https://github.com", ("octo", "project")),
        ("ssh://git@github.com/octo/project.git", "https://github.com", ("octo", "project")),
        ("https://ghe.example.org/team/nb.git", "https://ghe.example.org", ("team", "nb")),
        ("git@ghe.example.org:team/nb.git", "https://ghe.example.org", ("team", "nb")),
        ("http://127.0.0.1:8123/o/r.git", "http://127.0.0.1:8123", ("o", "r")),
        ("http://127.0.0.1:9999/o/r.git", "http://127.0.0.1:8123", None),
        ("https://gitlab.com/octo/project.git", "https://github.com", None),
        ("https://ghe.example.org/team/nb.git", "https://github.com", None),
        ("https://github.com/octo", "https://github.com", None),
        ("https://github.com/octo/project/tree/main", "https://github.com", None),
        ("/srv/git/project.git", "https://github.com", None),
        ("", "https://github.com", None),
        (None, "https://github.com", None),
    ],
)
def test_parse_repo(url: str | None, web: str, expected: tuple[str, str] | None) -> None:
    assert parse_repo(url, web) == expected


def test_enterprise_api_url_defaults() -> None:
    assert default_api_url("https://github.com") == "https://api.github.com"
    assert default_api_url("https://ghe.example.org/") == "https://ghe.example.org/api/v3"


def test_github_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GITSYNC_GITHUB_URL", "GITSYNC_GITHUB_API_URL", "GITSYNC_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    app = GitSync()
    assert (app.github_url, app.github_api_url) == ("https://github.com", "https://api.github.com")
    assert app.client_id == "" and app.github_app_id == ""
    monkeypatch.setenv("GITSYNC_GITHUB_URL", "https://ghe.example.org")
    monkeypatch.setenv("GITSYNC_CLIENT_ID", "Iv1.abc")
    monkeypatch.setenv("GITSYNC_GITHUB_APP_ID", "42")
    monkeypatch.setenv("GITSYNC_GITHUB_APP_PRIVATE_KEY_PATH", "/etc/gitsync/app.pem")
    app = GitSync()
    assert app.github_api_url == "https://ghe.example.org/api/v3"
    assert app.client_id == "Iv1.abc"
    assert (app.github_app_id, app.github_app_private_key_path) == ("42", "/etc/gitsync/app.pem")
    monkeypatch.setenv("GITSYNC_GITHUB_API_URL", "https://api.ghe.example.org")
    assert GitSync().github_api_url == "https://api.ghe.example.org"


def test_providers_are_asked_in_the_documented_order(github: GitHubStub, tmp_path: Path) -> None:
    key = tmp_path / "app.pem"
    key.write_text("not used before a push")
    env = {
        "GITHUB_TOKEN": "from-env",
        "JUPYTERHUB_API_URL": f"http://127.0.0.1:{free_port()}/hub/api",
        "JUPYTERHUB_API_TOKEN": "the-servers-hub-token",
        "JUPYTERHUB_USER": "ada",
    }
    auth = AuthService.from_settings(
        github=GitHubSettings(github.url, github.url),
        remote_url=None,
        client_id=github.client_id,
        github_app_id=github.app_id,
        github_app_private_key_path=str(key),
        environ=env,
    )
    names = [getattr(p, "name", None) for p in auth.credentials.providers]
    assert names == ["device", "env", "jupyterhub", "github-app"]
    assert auth.credentials.token() == "from-env"  # nobody signed in from the UI
    hub = auth.credentials.providers[2]
    assert isinstance(hub, HubAuthStateProvider)
    assert hub.reads == 0  # the hub is not asked while an earlier provider has one
    minimal = AuthService.from_settings(
        github=GitHubSettings(github.url, github.url), remote_url=None, environ={}
    )
    assert [getattr(p, "name", None) for p in minimal.credentials.providers] == ["device", "env"]


def test_secrets_cover_every_provider_without_blocking(github: GitHubStub) -> None:
    env = {
        "GITSYNC_TOKEN": "explicit-token",
        "JUPYTERHUB_API_URL": f"http://127.0.0.1:{free_port()}/hub/api",  # no hub there
        "JUPYTERHUB_API_TOKEN": "the-servers-hub-token",
        "JUPYTERHUB_USER": "ada",
    }
    auth = AuthService.from_settings(
        github=GitHubSettings(github.url, github.url), remote_url=None, environ=env
    )
    hub = auth.credentials.providers[2]
    assert isinstance(hub, HubAuthStateProvider)
    assert hub.token() is None  # as the engine's git thread would ask
    reads = hub.reads
    held = auth.credentials.secrets()
    assert {"explicit-token", "the-servers-hub-token"} <= set(held)
    assert hub.reads == reads  # secrets() never goes to the network


def service(
    github: GitHubStub, token: str | None, remote: str | None
) -> tuple[AuthService, list[str]]:
    environ = {} if token is None else {"GITSYNC_TOKEN": token}
    auth = AuthService.from_settings(
        github=GitHubSettings(github.url, github.url),
        remote_url=remote,
        client_id=github.client_id,
        environ=environ,
    )
    logins: list[str] = []
    auth.on_login.append(logins.append)
    return auth, logins


async def test_identify_tells_login_and_scopes_once(github: GitHubStub) -> None:
    token = github.add_user_token("ada", scopes="repo, read:org")
    auth, logins = service(github, token, f"{github.url}/octo/project.git")
    identity = await auth.identify()
    assert identity is not None
    assert (identity.provider, identity.login) == ("env", "ada")
    assert identity.scopes == ["repo", "read:org"]
    await auth.identify()
    assert logins == ["ada"] and auth.login == "ada"
    assert len([r for r in github.requests if r[1] == "/user"]) == 1  # cached per token


async def test_a_token_for_another_host_is_never_sent_to_github(github: GitHubStub) -> None:
    auth, logins = service(github, "token-for-another-host", "https://git.example.org/o/r.git")
    identity = await auth.identify()
    assert identity is not None and identity.login is None
    assert await auth.can_push() is None  # not a GitHub remote: the check is skipped
    assert github.requests == [] and logins == []


async def test_can_push_asks_github_for_the_repository(github: GitHubStub) -> None:
    token = github.add_user_token("ada")
    github.add_repo("octo", "project", pushers={"grace"})
    github.add_repo("ada", "thesis")
    auth, _ = service(github, token, f"{github.url}/octo/project.git")
    assert await auth.can_push() is False
    own, _ = service(github, token, "git@127.0.0.1:ada/thesis.git")
    assert await own.can_push() is True
    hidden, _ = service(github, token, f"{github.url}/octo/private.git")
    assert await hidden.can_push() is False  # GitHub answers 404 for what you cannot see
    nobody, _ = service(github, None, f"{github.url}/octo/project.git")
    assert await nobody.can_push() is None
    revoked = github.add_user_token("ada")
    github.revoke(revoked)
    refused, _ = service(github, revoked, f"{github.url}/octo/project.git")
    with pytest.raises(AuthError) as caught:
        await refused.can_push()
    assert "Bad credentials" in caught.value.message and revoked not in caught.value.message


async def test_fork_into_the_users_account(github: GitHubStub) -> None:
    token = github.add_user_token("ada")
    github.add_repo("octo", "project")
    auth, _ = service(github, token, f"{github.url}/octo/project.git")
    forks: list[str] = []
    auth.on_fork.append(forks.append)
    fork = await auth.fork()
    assert fork["clone_url"] == f"{github.url}/ada/project.git"
    assert fork["full_name"] == "ada/project"
    assert forks == [fork["clone_url"]] and github.forks == ["ada/project"]
    assert token not in str(fork)


async def test_fork_needs_a_github_remote_and_a_user(github: GitHubStub) -> None:
    token = github.add_user_token("ada")
    elsewhere, _ = service(github, token, "https://git.example.org/o/r.git")
    with pytest.raises(AuthError) as caught:
        await elsewhere.fork()
    assert caught.value.status == 400
    anonymous, _ = service(github, None, f"{github.url}/octo/project.git")
    with pytest.raises(AuthError) as caught:
        await anonymous.fork()
    assert caught.value.status == 409 and "Sign in" in caught.value.message
    missing, _ = service(github, token, f"{github.url}/octo/gone.git")
    with pytest.raises(AuthError) as caught:
        await missing.fork()
    assert caught.value.status == 404


async def test_describe_never_holds_a_token(github: GitHubStub) -> None:
    token = new_token("gho")
    github.add_user_token("ada", token=token)
    github.add_repo("octo", "project", pushers={"ada"})
    auth, _ = service(github, token, f"{github.url}/octo/project.git")
    answer = await auth.describe()
    assert answer["signed_in"] is True and answer["provider"] == "env"
    assert answer["login"] == "ada" and answer["scopes"] == ["repo"]
    assert answer["repository"] == "octo/project" and answer["can_push"] is True
    assert answer["device_flow"] is None and answer["sign_in_available"] is True
    assert token not in str(answer)


def test_credentials_keep_working_with_plain_providers() -> None:
    """Providers without name, bind or secrets (as in the engine's tests) still work."""

    class Plain:
        def token(self) -> str | None:
            return "plain"

    credentials = Credentials([EnvTokenProvider({}), Plain()])
    assert credentials.token() == "plain"
    assert credentials.secrets() == ["plain"]
    credentials.refused()
