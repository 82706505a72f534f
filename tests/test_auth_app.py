"""GitHub App installation tokens: the JWT, finding the installation, the token and its cache,
and a real push with an installation token."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from jupyter_gitsync.auth import Credentials
from jupyter_gitsync.auth.github import AuthError
from jupyter_gitsync.auth.github_app import GitHubAppProvider
from jupyter_gitsync.engine import EngineConfig, SyncEngine
from jupyter_gitsync.state import State
from tests.github_stub import GitHubStub
from tests.gitserver import GitHTTPServer
from tests.helpers import async_wait_until, ref_or_none, show

REPO = ("octo", "project")


def _pem(key: rsa.RSAPrivateKey) -> tuple[str, str]:
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@pytest.fixture(scope="module")
def app_key() -> tuple[str, str]:
    """A fresh RSA key pair for the App (private PEM, public PEM)."""
    return _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture
def github(app_key: tuple[str, str]) -> Iterator[GitHubStub]:
    stub = GitHubStub().start()
    stub.app_public_key = app_key[1]
    yield stub
    stub.stop()


class Clock:
    """Decides when a cached token is renewed; starts at the real time, moves when told."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def app_provider(
    github: GitHubStub,
    app_key: tuple[str, str],
    clock: Clock | None = None,
    repo: tuple[str, str] | None = REPO,
) -> GitHubAppProvider:
    return GitHubAppProvider(
        github.app_id, app_key[0], github.url, lambda: repo, clock=clock or Clock()
    )


def test_the_jwt_verifies_with_the_public_key_and_has_githubs_claims(
    github: GitHubStub, app_key: tuple[str, str]
) -> None:
    clock = Clock()
    provider = app_provider(github, app_key, clock)
    now = int(clock.now)
    token = provider.make_jwt(now)
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = jwt.decode(token, app_key[1], algorithms=["RS256"])
    assert claims == {"iat": now - 60, "exp": now + 540, "iss": github.app_id}
    assert claims["exp"] - claims["iat"] <= 600
    other_public = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))[1]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, other_public, algorithms=["RS256"])


def test_an_installation_token_for_the_repository_is_cached_until_shortly_before_expiry(
    github: GitHubStub, app_key: tuple[str, str]
) -> None:
    github.add_repo(*REPO)
    installation = github.install_app(*REPO)
    clock = Clock()
    provider = app_provider(github, app_key, clock)
    token = provider.token()
    assert token is not None and token.startswith("ghs_")
    assert provider.token() == token and provider.fetches == 1
    assert provider.permissions == {"contents": "write", "metadata": "read"}
    issued = github.tokens[token]
    assert issued.installation == installation and issued.repositories == ["project"]
    assert github.jwt_claims and all(c["iss"] == github.app_id for c in github.jwt_claims)

    clock.now += 3600 - 301  # more than five minutes left
    assert provider.token() == token and provider.fetches == 1
    clock.now += 2  # less than five minutes left: a new one
    renewed = provider.token()
    assert renewed is not None and renewed != token and provider.fetches == 2
    assert {token, renewed} <= set(provider.secrets())


def test_no_installation_or_no_github_remote_means_no_token(
    github: GitHubStub, app_key: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    github.add_repo(*REPO)
    with caplog.at_level(logging.WARNING):
        assert app_provider(github, app_key).token() is None
    assert "is not installed on octo/project" in caplog.text
    before = len(github.requests)
    assert app_provider(github, app_key, repo=None).token() is None
    assert len(github.requests) == before  # nothing asked: not a GitHub remote


def test_a_wrong_key_is_refused_by_github(github: GitHubStub, app_key: tuple[str, str]) -> None:
    github.add_repo(*REPO)
    github.install_app(*REPO)
    other_private = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))[0]
    provider = GitHubAppProvider(github.app_id, other_private, github.url, lambda: REPO)
    assert provider.token() is None


def test_a_refused_token_is_replaced_unless_it_is_fresh(
    github: GitHubStub, app_key: tuple[str, str]
) -> None:
    github.add_repo(*REPO)
    github.install_app(*REPO)
    clock = Clock()
    provider = app_provider(github, app_key, clock)
    credentials = Credentials([provider])
    first = credentials.token()
    credentials.refused()  # a token refused right after it was issued lacks permission
    assert credentials.token() == first and credentials.epoch == 0
    clock.now += 120
    credentials.refused()
    assert credentials.token() != first and credentials.epoch == 1


def test_the_key_file_must_be_readable(tmp_path: Path, app_key: tuple[str, str]) -> None:
    with pytest.raises(AuthError) as caught:
        GitHubAppProvider.from_key_file("1", tmp_path / "missing.pem", "http://x", lambda: None)
    assert caught.value.status == 400 and "cannot be read" in caught.value.message
    path = tmp_path / "app.pem"
    path.write_text(app_key[0])
    provider = GitHubAppProvider.from_key_file("1", path, "http://x", lambda: None)
    assert jwt.decode(provider.make_jwt(), app_key[1], algorithms=["RS256"])["iss"] == "1"


async def test_pushes_with_an_installation_token(
    github: GitHubStub,
    app_key: tuple[str, str],
    git_server: GitHTTPServer,
    remote: str,
    remote_url: str,
    workspace: Path,
    token: str,
) -> None:
    github.add_repo(*REPO)
    github.install_app(*REPO)
    github.next_installation_token = token  # what the git server accepts
    provider = GitHubAppProvider(github.app_id, app_key[0], github.url, lambda: REPO)
    config = EngineConfig(
        workspace=workspace,
        branch="gitsync/app",
        remote_url=remote_url,
        commit_delay_seconds=0.2,
        push_interval_seconds=0.0,
    )
    engine = SyncEngine(config, Credentials([provider]))
    await engine.start()
    (workspace / "by-app.txt").write_text(secrets.token_hex(4))
    bare = git_server.repo_path(remote)
    await async_wait_until(
        lambda: (
            (tip := ref_or_none(bare, "refs/heads/gitsync/app"))
            and show(bare, tip, "by-app.txt") is not None
            and engine.status.state == State.SYNCED
        ),
        what="the push",
    )
    assert provider.fetches == 1
    await engine.stop(5)
