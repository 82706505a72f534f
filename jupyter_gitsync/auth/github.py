"""Talking to GitHub (or GitHub Enterprise): where it is, which repository a remote URL names,
and small HTTP helpers that never put a token anywhere but the Authorization header.

Two flavours of request: `api_request` is async (tornado's AsyncHTTPClient, for the Jupyter
event loop) and `blocking_request` is plain urllib (for providers that run on the git thread).
Neither follows redirects, so a token is never replayed to another host.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

DEFAULT_GITHUB_URL = "https://github.com"
DEFAULT_GITHUB_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
USER_AGENT = "jupyter-gitsync"
TIMEOUT_SECONDS = 20.0

_SCP_REMOTE = re.compile(r"^(?:[^@/:]+@)?(?P<host>[^/:]+):(?P<path>[^/].*)$")


class AuthError(Exception):
    """A failure to tell the user in plain words (never with a token); `status` is the HTTP
    status our API answers with."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class GitHubSettings:
    """Where GitHub is: the web host (OAuth endpoints, clone URLs) and the REST API."""

    web_url: str = DEFAULT_GITHUB_URL
    api_url: str = DEFAULT_GITHUB_API_URL

    def __post_init__(self) -> None:
        object.__setattr__(self, "web_url", self.web_url.rstrip("/"))
        object.__setattr__(self, "api_url", self.api_url.rstrip("/"))


def default_api_url(web_url: str) -> str:
    """github.com's API lives on api.github.com; GitHub Enterprise Server's on <host>/api/v3."""
    web_url = web_url.rstrip("/")
    if web_url == DEFAULT_GITHUB_URL:
        return DEFAULT_GITHUB_API_URL
    return f"{web_url}/api/v3"


def parse_repo(remote_url: str | None, web_url: str = DEFAULT_GITHUB_URL) -> tuple[str, str] | None:
    """(owner, name) when `remote_url` is a repository on the GitHub at `web_url`, else None.

    Understands https://host/o/r(.git), ssh://git@host/o/r.git and git@host:o/r.git.
    """
    if not remote_url:
        return None
    web = urlsplit(web_url)
    if not web.hostname:
        return None
    parts = urlsplit(remote_url)
    if parts.scheme in ("http", "https"):
        if parts.hostname != web.hostname or (parts.port or None) != (web.port or None):
            return None
        path = parts.path
    elif parts.scheme == "ssh":
        if parts.hostname != web.hostname:
            return None
        path = parts.path
    elif not parts.scheme or "://" not in remote_url:
        match = _SCP_REMOTE.match(remote_url)
        if match is None or match.group("host").lower() != web.hostname:
            return None
        path = match.group("path")
    else:
        return None
    segments = [s for s in path.strip("/").split("/") if s]
    if len(segments) != 2:
        return None
    owner, name = segments
    name = name[:-4] if name.endswith(".git") else name
    return (owner, name) if owner and name else None


def _json(body: bytes | None) -> Any:
    if not body:
        return {}
    try:
        return json.loads(body)
    except ValueError:
        return {}


def api_headers(authorization: str | None) -> dict[str, str]:
    """The headers GitHub's REST API documents; `authorization` is e.g. 'Bearer <token>'."""
    headers = {
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": API_VERSION,
        "User-Agent": USER_AGENT,
    }
    if authorization:
        headers["Authorization"] = authorization
    return headers


@dataclass
class Response:
    """A JSON answer: status, headers (names lower-cased) and the decoded body ({} if none)."""

    status: int
    headers: dict[str, str]
    body: Any


async def api_request(
    method: str,
    url: str,
    *,
    authorization: str | None = None,
    json_body: Any = None,
    form: dict[str, str] | None = None,
    what: str = "GitHub",
) -> Response:
    """One request on the event loop. Raises AuthError (502) when `what` cannot be reached."""
    headers = api_headers(authorization)
    body: str | None = None
    if form is not None:
        headers["Accept"] = "application/json"
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        body = urlencode(form)
    elif json_body is not None:
        headers["Content-Type"] = "application/json"
        body = json.dumps(json_body)
    elif method in ("POST", "PUT", "PATCH"):
        body = ""
    request = HTTPRequest(
        url,
        method=method,
        headers=headers,
        body=body,
        follow_redirects=False,
        request_timeout=TIMEOUT_SECONDS,
        connect_timeout=TIMEOUT_SECONDS,
    )
    try:
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
    except Exception as exc:  # connection refused, DNS, timeout: the text holds no token
        raise AuthError(f"{what} could not be reached at {_origin(url)} ({exc}).") from None
    if response.code == 599:
        reason = response.error or "no answer"
        raise AuthError(f"{what} could not be reached at {_origin(url)} ({reason}).")
    return Response(
        response.code,
        {k.lower(): v for k, v in response.headers.get_all()},
        _json(response.body),
    )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib would copy the Authorization header to wherever it is sent


_OPENER = urllib.request.build_opener(_NoRedirect)


def blocking_request(
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    json_body: Any = None,
    what: str = "GitHub",
    timeout: float = TIMEOUT_SECONDS,
) -> Response:
    """The same for the git thread, where blocking is fine. Raises AuthError when unreachable."""
    data = None if json_body is None else json.dumps(json_body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return Response(
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                _json(response.read()),
            )
    except urllib.error.HTTPError as exc:
        with exc:
            return Response(
                exc.code, {k.lower(): v for k, v in exc.headers.items()}, _json(exc.read())
            )
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AuthError(f"{what} could not be reached at {_origin(url)} ({reason}).") from None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def github_message(response: Response) -> str:
    """GitHub's own short explanation of a failed answer, e.g. 'Bad credentials'."""
    body = response.body if isinstance(response.body, dict) else {}
    return str(body.get("message") or body.get("error_description") or body.get("error") or "")
