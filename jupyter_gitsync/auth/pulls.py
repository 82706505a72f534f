"""Pull requests on GitHub: open one for a branch the engine published (`POST
/repos/{owner}/{repo}/pulls`), or find the one already open for it.

The pull request goes to the repository the branch was pushed to, or, when that is a fork, to
the repository it was forked from (its `parent`), with the head `owner:branch`. Its base is the
branch the user's work was on, else that repository's default branch.

Async, on the Jupyter event loop, through `github.api_request` (its own timeouts; never follows
a redirect). The token goes in the Authorization header only; messages are built from GitHub's
answers and never hold it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from ..errors import (
    AuthRequired,
    GitSyncError,
    PermissionDenied,
    RemoteNotFound,
    RemoteUnavailable,
)
from .github import AuthError, Response, api_request, github_message

_NAME = re.compile(r"[A-Za-z0-9_.-]+")
ALREADY_EXISTS = "A pull request already exists"


@dataclass(frozen=True)
class PullRequest:
    """An open pull request: its page, where it is (owner/name), and its base branch;
    `existed` when it was open already (publishing again updates it)."""

    url: str
    repository: str
    base: str
    existed: bool


async def open_pull_request(
    api_url: str,
    token: str,
    pushed_to: tuple[str, str],
    branch: str,
    title: str,
    body: str,
    base: str | None,
) -> PullRequest:
    """Open a pull request for `branch` of the repository `pushed_to` (owner, name), or find
    the one already open; raise a GitSyncError in plain words when GitHub will not."""
    authorization = f"Bearer {token}"
    owner, name = pushed_to
    answer = await _request("GET", f"{api_url}/repos/{owner}/{name}", authorization)
    if answer.status != 200:
        raise _refusal(answer, f"{owner}/{name}")
    target, default = _target(answer.body, pushed_to)
    into = base or default
    repository = "/".join(target)
    if not into:
        raise GitSyncError(f"GitHub did not say which branch of {repository} to merge into.")
    head = branch if target == pushed_to else f"{owner}:{branch}"
    pulls = f"{api_url}/repos/{repository}/pulls"
    fields = {"title": title.strip(), "body": body, "head": head, "base": into}
    answer = await _request("POST", pulls, authorization, fields)
    if answer.status == 201 and _html_url(answer.body):
        return PullRequest(_html_url(answer.body), repository, into, existed=False)
    if answer.status == 422 and ALREADY_EXISTS in _errors(answer):
        query = urlencode({"head": f"{owner}:{branch}", "state": "open"})
        listed = await _request("GET", f"{pulls}?{query}", authorization)
        if listed.status != 200:
            raise _refusal(listed, repository)
        for pull in listed.body if isinstance(listed.body, list) else []:
            if _html_url(pull):
                return PullRequest(_html_url(pull), repository, into, existed=True)
        raise GitSyncError(f"GitHub says a pull request for {head} exists but does not list it.")
    raise _refusal(answer, repository, head=head, base=into)


async def _request(method: str, url: str, authorization: str, json_body: Any = None) -> Response:
    try:
        return await api_request(method, url, authorization=authorization, json_body=json_body)
    except AuthError as exc:  # unreachable: its text names the host, never the token
        raise RemoteUnavailable(exc.message) from None


def _target(repository: Any, pushed_to: tuple[str, str]) -> tuple[tuple[str, str], str | None]:
    """Where the pull request goes (a fork's parent, else the repository itself) and that
    repository's default branch, from GET /repos/{o}/{r}'s answer."""
    body = repository if isinstance(repository, dict) else {}
    parent = body.get("parent") if body.get("fork") is True else None
    if isinstance(parent, dict):
        full_name = str(parent.get("full_name") or "")
        owner, _, name = full_name.partition("/")
        if _NAME.fullmatch(owner) and _NAME.fullmatch(name):
            return (owner, name), _branch_name(parent.get("default_branch"))
    return pushed_to, _branch_name(body.get("default_branch"))


def _branch_name(value: Any) -> str | None:
    return value if isinstance(value, str) and value and "\n" not in value else None


def _html_url(pull: Any) -> str:
    url = pull.get("html_url") if isinstance(pull, dict) else None
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) else ""


def _errors(answer: Response) -> str:
    """The messages of a 422's `errors` list, joined."""
    body = answer.body if isinstance(answer.body, dict) else {}
    found = body.get("errors")
    messages = [str(item.get("message") or "") for item in found or [] if isinstance(item, dict)]
    return " ".join(m for m in messages if m)


def _invalid_fields(answer: Response) -> list[str]:
    body = answer.body if isinstance(answer.body, dict) else {}
    return [
        str(item.get("field"))
        for item in body.get("errors") or []
        if isinstance(item, dict) and item.get("code") == "invalid"
    ]


def _refusal(
    answer: Response, repository: str, head: str | None = None, base: str | None = None
) -> GitSyncError:
    """GitHub's refusal in plain words, as the failure the user should hear about."""
    said = github_message(answer)
    detail = f" ({said})" if said else ""
    status = answer.status
    if status == 401:
        return AuthRequired(f"GitHub refused the token{detail}. Sign in to GitHub again.")
    if status == 403:
        return PermissionDenied(
            f"GitHub does not let this account open pull requests in {repository}{detail}."
        )
    if status == 404:
        return RemoteNotFound(f"GitHub has no repository {repository} this account may see.")
    if status == 422:
        invalid = _invalid_fields(answer)
        if "base" in invalid:
            return GitSyncError(f"{repository} has no branch {base} to merge into.")
        if "head" in invalid:
            return GitSyncError(f"GitHub does not find the branch {head} to open it from.")
        return GitSyncError(f"GitHub refused the pull request: {_errors(answer) or said}.")
    return RemoteUnavailable(f"GitHub answered HTTP {status}{detail}; try again later.")
