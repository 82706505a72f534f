"""The stand-in for GitHub's OAuth web flow answers as GitHub documents it ("Authorizing OAuth
apps" and its troubleshooting pages), wrong requests included: the hub tests rely on it."""

from __future__ import annotations

import base64
import hashlib
import secrets
import subprocess
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.github_stub import GitHubStub
from tests.gitserver import GitHTTPServer
from tests.helpers import git

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


# -- pull requests ("Create a pull request", "List pull requests") ---------------------------------


@pytest.fixture
def hosted(git_server: GitHTTPServer) -> Iterator[GitHubStub]:
    """The stand-in with its repositories in the real git server: octo/project, where ada may
    push, with a branch `feature`."""
    stub = GitHubStub().start()
    stub.git = git_server
    stub.add_repo("octo", "project", pushers={"ada"})
    bare = git_server.repo_path("octo/project")
    subprocess.run(["git", "--git-dir", str(bare), "branch", "feature", "main"], check=True)
    yield stub
    stub.stop()


def open_pull(stub: GitHubStub, token: str, repo: str = "octo/project", **fields: Any) -> Any:
    return requests.post(
        f"{stub.url}/repos/{repo}/pulls",
        json=fields,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"},
        timeout=10,
    )


def list_pulls(stub: GitHubStub, repo: str = "octo/project", **query: str) -> Any:
    response = requests.get(f"{stub.url}/repos/{repo}/pulls", params=query, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_pull_request_opens_once_per_head(hosted: GitHubStub, git_server: GitHTTPServer) -> None:
    ada = hosted.add_user_token("ada")
    wanted = {"title": "Faster loader", "body": "It reads less.", "head": "feature", "base": "main"}
    created = open_pull(hosted, ada, **wanted)
    assert created.status_code == 201, created.text
    pull = created.json()
    assert pull["number"] == 1 and pull["state"] == "open"
    assert pull["html_url"] == f"{hosted.url}/octo/project/pull/1"
    assert created.headers["Location"] == pull["url"]
    assert (pull["title"], pull["body"]) == ("Faster loader", "It reads less.")
    sha = git(git_server.repo_path("octo/project"), "rev-parse", "refs/heads/feature")
    assert pull["head"]["ref"] == "feature" and pull["head"]["label"] == "octo:feature"
    assert pull["head"]["sha"] == sha and pull["head"]["repo"]["full_name"] == "octo/project"
    assert pull["base"]["ref"] == "main" and pull["user"]["login"] == "ada"

    again = open_pull(hosted, ada, **wanted)
    assert again.status_code == 422
    refusal = again.json()
    assert refusal["message"] == "Validation Failed"
    assert refusal["errors"] == [
        {
            "resource": "PullRequest",
            "code": "custom",
            "message": "A pull request already exists for octo:feature.",
        }
    ]
    assert [p["number"] for p in list_pulls(hosted, head="octo:feature", state="open")] == [1]
    assert list_pulls(hosted, head="octo:other") == []
    assert list_pulls(hosted, head="octo:feature", state="closed") == []
    assert len(hosted.pulls) == 1


def test_a_pull_request_from_a_fork_names_its_owner(
    hosted: GitHubStub, git_server: GitHTTPServer
) -> None:
    eve = hosted.add_user_token("eve")
    hosted.add_fork("octo/project", "eve")
    missing = open_pull(hosted, eve, title="t", head="eve:mine", base="main")
    assert missing.status_code == 422
    assert missing.json()["errors"] == [
        {"resource": "PullRequest", "field": "head", "code": "invalid"}
    ]
    fork = git_server.repo_path("eve/project")
    subprocess.run(["git", "--git-dir", str(fork), "branch", "mine", "main"], check=True)
    created = open_pull(hosted, eve, title="t", head="eve:mine", base="main")
    assert created.status_code == 201, created.text
    assert created.json()["head"]["repo"]["full_name"] == "eve/project"
    assert created.json()["head"]["label"] == "eve:mine"
    listed = list_pulls(hosted, head="eve:mine", state="all")
    assert [p["html_url"] for p in listed] == [created.json()["html_url"]]


def test_pull_request_refusals_follow_the_documented_shapes(hosted: GitHubStub) -> None:
    ada, eve = hosted.add_user_token("ada"), hosted.add_user_token("eve")
    no_base = open_pull(hosted, ada, title="t", head="feature", base="nowhere")
    assert no_base.status_code == 422
    assert no_base.json()["errors"] == [
        {"resource": "PullRequest", "field": "base", "code": "invalid"}
    ]
    neither = open_pull(hosted, ada, title="t", head="gone", base="nowhere")
    assert {e["field"] for e in neither.json()["errors"]} == {"head", "base"}
    untitled = open_pull(hosted, ada, head="feature", base="main")
    assert untitled.status_code == 422 and '"title" wasn\'t supplied' in untitled.json()["message"]
    bad = open_pull(hosted, "gho_" + "0" * 36, title="t", head="feature", base="main")
    assert bad.status_code == 401 and bad.json()["message"] == "Bad credentials"
    refused = open_pull(hosted, eve, title="t", head="feature", base="main")
    assert refused.status_code == 403
    unknown = open_pull(hosted, ada, repo="octo/absent", title="t", head="feature", base="main")
    assert unknown.status_code == 404
    hosted.fail["POST /repos/octo/project/pulls"] = 500
    assert open_pull(hosted, ada, title="t", head="feature", base="main").status_code == 500
    assert hosted.pulls == []
    listed = requests.get(
        f"{hosted.url}/repos/octo/project/pulls",
        headers={"Authorization": "Bearer not-a-token"},
        timeout=10,
    )
    assert listed.status_code == 401
