"""GitHub App installation tokens, for hub admins who install an App on the repositories.

The App signs a short JWT with its private key, finds its installation on the remote's
repository and trades the JWT for an installation token limited to that repository. The token
is cached until shortly before it expires. Runs on the git thread, so it may block.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt

from .github import AuthError, api_headers, blocking_request, github_message

log = logging.getLogger(__name__)

JWT_BACKDATE_SECONDS = 60  # GitHub's advice against clock drift
JWT_LIFETIME_SECONDS = 540  # from now; with the backdated iat, 10 minutes in all (GitHub's max)
RENEW_BEFORE_SECONDS = 300.0  # installation tokens live an hour; renew 5 minutes early
RETIRED_KEPT = 8
FRESH_SECONDS = 60.0  # a token refused this soon after it was issued lacks permission

RepositoryGetter = Callable[[], "tuple[str, str] | None"]


class GitHubAppProvider:
    """An installation token of a GitHub App for the remote's repository."""

    name = "github-app"

    def __init__(
        self,
        app_id: str,
        private_key: str,
        api_url: str,
        repository: RepositoryGetter,
        *,
        clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
    ) -> None:
        self.app_id = str(app_id)
        self._private_key = private_key
        self.api_url = api_url.rstrip("/")
        self._repository = repository
        self._clock = clock
        self._timeout = timeout
        self._notify: Callable[[], None] = lambda: None
        self._fetch_lock = threading.Lock()
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._fetched_at = float("-inf")
        self._for_repo: tuple[str, str] | None = None
        self._retired: collections.deque[str] = collections.deque(maxlen=RETIRED_KEPT)
        self.permissions: dict[str, str] | None = None
        self.fetches = 0

    @classmethod
    def from_key_file(
        cls, app_id: str, key_path: str | Path, api_url: str, repository: RepositoryGetter
    ) -> GitHubAppProvider:
        """Read the PEM private key; AuthError (a configuration problem) if it can't be read."""
        try:
            key = Path(key_path).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise AuthError(
                f"The GitHub App private key {key_path} cannot be read ({exc.strerror}).", 400
            ) from None
        return cls(app_id, key, api_url, repository)

    def bind(self, notify: Callable[[], None]) -> None:
        self._notify = notify

    def make_jwt(self, now: float | None = None) -> str:
        """The App's JWT: RS256, `iat` backdated 60 s, `exp` 10 minutes after `iat`. Always
        wall-clock time (`clock` only decides when a cached token is renewed)."""
        issued = int(time.time() if now is None else now)
        claims = {
            "iat": issued - JWT_BACKDATE_SECONDS,
            "exp": issued + JWT_LIFETIME_SECONDS,
            "iss": self.app_id,
        }
        return jwt.encode(claims, self._private_key, algorithm="RS256")

    def token(self) -> str | None:
        repository = self._repository()
        if repository is None:
            return None  # not a GitHub remote: nothing to install on
        with self._lock:
            if self._valid_for(repository):
                return self._token
        with self._fetch_lock:
            with self._lock:
                if self._valid_for(repository):
                    return self._token
            return self._fetch(repository)

    def refused(self) -> None:
        """The remote refused the token: get a new one now; a different one means retry. Not
        when the refused token is fresh: a new one has the same permissions."""
        repository = self._repository()
        if repository is None:
            return
        with self._fetch_lock:
            with self._lock:
                old = self._token
                if old is not None and self._clock() - self._fetched_at < FRESH_SECONDS:
                    return
            new = self._fetch(repository)
        if new is not None and new != old:
            self._notify()

    def secrets(self) -> list[str]:
        with self._lock:
            return [s for s in (self._token, *self._retired) if s]

    def _valid_for(self, repository: tuple[str, str]) -> bool:
        return (
            self._token is not None
            and self._for_repo == repository
            and self._clock() < self._expires_at - RENEW_BEFORE_SECONDS
        )

    def _fetch(self, repository: tuple[str, str]) -> str | None:
        """Find the installation on `repository` and get a token for it; None on failure."""
        owner, name = repository
        self.fetches += 1
        try:
            headers = api_headers(f"Bearer {self.make_jwt()}")
            found = blocking_request(
                "GET",
                f"{self.api_url}/repos/{owner}/{name}/installation",
                headers=headers,
                timeout=self._timeout,
            )
            if found.status != 200 or not isinstance(found.body, dict) or "id" not in found.body:
                log.warning(
                    "gitsync: GitHub App %s is not installed on %s/%s (HTTP %d: %s)",
                    self.app_id,
                    owner,
                    name,
                    found.status,
                    github_message(found),
                )
                return None
            issued = blocking_request(
                "POST",
                f"{self.api_url}/app/installations/{found.body['id']}/access_tokens",
                headers=headers,
                json_body={"repositories": [name]},
                timeout=self._timeout,
            )
        except AuthError as exc:
            log.warning("gitsync: %s", exc.message)
            return None
        body = issued.body if isinstance(issued.body, dict) else {}
        token = body.get("token")
        if issued.status != 201 or not isinstance(token, str) or not token:
            log.warning(
                "gitsync: GitHub would not issue an installation token (HTTP %d: %s)",
                issued.status,
                github_message(issued),
            )
            return None
        with self._lock:
            if self._token is not None and self._token != token:
                self._retired.append(self._token)
            self._token = token
            self._for_repo = repository
            self._fetched_at = self._clock()
            self._expires_at = _epoch(body.get("expires_at"), self._clock() + 3600)
            permissions = body.get("permissions")
            self.permissions = dict(permissions) if isinstance(permissions, dict) else None
        log.info("gitsync: got a GitHub App installation token for %s/%s", owner, name)
        return token


def _epoch(value: Any, fallback: float) -> float:
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return fallback
