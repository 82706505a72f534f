"""The stand-in for GitHub's OAuth web flow answers as GitHub documents it ("Authorizing OAuth
apps" and its troubleshooting pages), wrong requests included: the hub tests rely on it."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.github_stub import GitHubStub

CALLBACK = "http://127.0.0.1:8000/hub/oauth_callback"


@pytest.fixture
def github() -> Iterator[GitHubStub]:
    stub = GitHubStub().start()
    stub.oauth_callback_url = CALLBACK
    stub.browser_login = "ada"
    yield stub
    stub.stop()


def authorize(github: GitHubStub, **params: str) -> dict[str, list[str]]:
    """GET /login/oauth/authorize; the query of the redirect back to the app."""
    response = requests.get(
        f"{github.url}/login/oauth/authorize",
        params={"client_id": github.client_id, **params},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["Location"])
    return {"to": [location._replace(query="").geturl()], **parse_qs(location.query)}


def exchange(github: GitHubStub, json: bool = True, **form: str) -> requests.Response:
    fields = {"client_id": github.client_id, "client_secret": github.client_secret, **form}
    headers = {"Accept": "application/json"} if json else {}
    return requests.post(
        f"{github.url}/login/oauth/access_token", data=fields, headers=headers, timeout=10
    )


def test_a_code_and_the_state_come_back_and_buy_one_token(github: GitHubStub) -> None:
    state = secrets.token_urlsafe(16)
    back = authorize(github, redirect_uri=CALLBACK, scope="repo read:org", state=state)
    assert back["to"] == [CALLBACK] and back["state"] == [state]
    code = back["code"][0]
    answer = exchange(github, code=code, redirect_uri=CALLBACK).json()
    assert answer["token_type"] == "bearer" and answer["scope"] == "repo,read:org"
    user = requests.get(
        f"{github.url}/user",
        headers={"Authorization": f"Bearer {answer['access_token']}"},
        timeout=10,
    )
    assert user.json()["login"] == "ada"
    assert user.headers["X-OAuth-Scopes"] == "repo, read:org"
    assert github.web_tokens("ada") == [answer["access_token"]]
    again = exchange(github, code=code, redirect_uri=CALLBACK).json()  # a code is good once
    assert again["error"] == "bad_verification_code"


def test_without_accept_json_the_answer_is_form_encoded(github: GitHubStub) -> None:
    code = authorize(github)["code"][0]  # no redirect_uri: the registered callback
    response = exchange(github, json=False, code=code)
    assert response.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    fields = parse_qs(response.text)
    assert fields["token_type"] == ["bearer"] and fields["access_token"][0].startswith("gho_")


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:8000/elsewhere",
        "http://127.0.0.1:8000/",
        "http://example.org/hub/oauth_callback",
    ],
)
def test_a_redirect_uri_the_app_did_not_register_goes_back_as_an_error(
    github: GitHubStub, redirect_uri: str
) -> None:
    back = authorize(github, redirect_uri=redirect_uri, state="s")
    assert back["to"] == [CALLBACK]  # the registered URL, never the one asked for
    assert back["error"] == ["redirect_uri_mismatch"] and back["state"] == ["s"]
    assert "code" not in back


def test_sub_paths_and_loopback_ports_are_allowed(github: GitHubStub) -> None:
    for allowed in (f"{CALLBACK}/more", "http://127.0.0.1:9999/hub/oauth_callback"):
        assert "code" in authorize(github, redirect_uri=allowed)


def test_pkce_needs_the_verifier_of_the_challenge(github: GitHubStub) -> None:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    pkce = {"code_challenge": challenge, "code_challenge_method": "S256"}
    code = authorize(github, **pkce)["code"][0]
    assert exchange(github, code=code, code_verifier="wrong").json()["error"] == (
        "bad_verification_code"
    )
    code = authorize(github, **pkce)["code"][0]
    assert "access_token" in exchange(github, code=code, code_verifier=verifier).json()


def test_wrong_credentials_and_a_user_who_cancels(github: GitHubStub) -> None:
    code = authorize(github)["code"][0]
    wrong = exchange(github, code=code, client_secret="not-the-secret").json()
    assert wrong["error"] == "incorrect_client_credentials"
    github.browser_login = None
    back = authorize(github, state="s")
    assert back["error"] == ["access_denied"] and back["state"] == ["s"]
