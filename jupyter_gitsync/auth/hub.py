"""The user's GitHub token as JupyterHub keeps it: `auth_state.access_token`, as stored by
GitHubOAuthenticator, read through the hub's REST API with the server's own API token.

Read when a push first needs a token, cached until it expires, and read again when the remote
refuses it (the hub may have refreshed it meanwhile). Runs on the git thread, so it may block.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .github import USER_AGENT, AuthError, blocking_request

log = logging.getLogger(__name__)

EXPIRY_MARGIN_SECONDS = 60.0  # read again this long before the token expires
RETRY_AFTER_SECONDS = 30.0  # after the hub had no token for us, ask again at most this often
RETIRED_KEPT = 8

MISSING_AUTH_STATE = (
    "gitsync: the hub's answer holds no auth_state.access_token; the hub needs"
    " c.Authenticator.enable_auth_state = True and the 'admin:auth_state!user' scope in the"
    " 'server' role (see the jupyter-gitsync README)"
)


class HubAuthStateProvider:
    """The GitHub token in the user's JupyterHub auth_state."""

    name = "jupyterhub"

    def __init__(
        self,
        api_url: str,
        api_token: str,
        *,
        clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._api_token = api_token
        self._clock = clock
        self._timeout = timeout
        self._notify: Callable[[], None] = lambda: None
        self._fetch_lock = threading.Lock()  # one read of the hub at a time
        self._lock = threading.Lock()  # the fields below; never held while waiting on the hub
        self._token: str | None = None
        self._expires_at: float | None = None  # epoch seconds, when the hub tells us
        self._retry_at = 0.0
        self._retired: collections.deque[str] = collections.deque(maxlen=RETIRED_KEPT)
        self._warned = False
        self.login: str | None = None  # auth_state.github_user.login, when the hub keeps it
        self.reads = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HubAuthStateProvider | None:
        """A provider when running under JupyterHub (JUPYTERHUB_API_URL and _TOKEN), else None."""
        env = os.environ if environ is None else environ
        url, token = env.get("JUPYTERHUB_API_URL"), env.get("JUPYTERHUB_API_TOKEN")
        return cls(url, token) if url and token else None

    def bind(self, notify: Callable[[], None]) -> None:
        self._notify = notify

    def token(self) -> str | None:
        """The cached token while it is valid, else a fresh read of the hub."""
        with self._lock:
            if self._token is not None and not self._expiring():
                return self._token
            if self._token is None and self._clock() < self._retry_at:
                return None
        with self._fetch_lock:
            with self._lock:  # another thread may have read it while we waited
                if self._token is not None and not self._expiring():
                    return self._token
            return self._read()

    def refused(self) -> None:
        """The remote refused the token: read the hub again; a different token means retry."""
        with self._fetch_lock:
            with self._lock:
                old = self._token
            new = self._read()
        if new is not None and new != old:
            log.info("gitsync: the hub has a new GitHub token; pushing again")
            self._notify()

    def secrets(self) -> list[str]:
        with self._lock:
            return [s for s in (self._token, self._api_token, *self._retired) if s]

    def _expiring(self) -> bool:
        return (
            self._expires_at is not None
            and self._clock() >= self._expires_at - EXPIRY_MARGIN_SECONDS
        )

    def _read(self) -> str | None:
        """GET {hub}/user and take auth_state.access_token; keeps the old token on failure."""
        self.reads += 1
        try:
            response = blocking_request(
                "GET",
                f"{self.api_url}/user",
                headers={
                    "Authorization": f"token {self._api_token}",
                    "Accept": "application/json",
                    "User-Agent": USER_AGENT,
                },
                what="JupyterHub",
                timeout=self._timeout,
            )
        except AuthError as exc:
            log.warning("gitsync: %s", exc.message)
            return self._stale()
        if response.status != 200:
            log.warning("gitsync: the hub answered HTTP %d to GET /user", response.status)
            return self._stale()
        body = response.body if isinstance(response.body, dict) else {}
        auth_state = body.get("auth_state")
        access_token = auth_state.get("access_token") if isinstance(auth_state, dict) else None
        if not isinstance(access_token, str) or not access_token:
            if not self._warned:
                log.warning(MISSING_AUTH_STATE)
                self._warned = True
            with self._lock:
                if self._token is not None:
                    self._retired.append(self._token)
                self._token = None
                self._retry_at = self._clock() + RETRY_AFTER_SECONDS
            return None
        assert isinstance(auth_state, dict)
        user = auth_state.get("github_user")
        self.login = user.get("login") if isinstance(user, dict) else None
        with self._lock:
            if self._token is not None and self._token != access_token:
                self._retired.append(self._token)
            self._token = access_token
            self._expires_at = _expiry(auth_state, self._clock())
        return access_token

    def _stale(self) -> str | None:
        with self._lock:
            self._retry_at = self._clock() + RETRY_AFTER_SECONDS
            return self._token


def _expiry(auth_state: dict[str, Any], now: float) -> float | None:
    """When the token expires, if the hub says: `expires_at` (epoch or ISO 8601) in auth_state
    or its `token_response`, else `token_response.expires_in` counted from now."""
    response = auth_state.get("token_response")
    response = response if isinstance(response, dict) else {}
    for value in (auth_state.get("expires_at"), response.get("expires_at")):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    expires_in = response.get("expires_in")
    if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool):
        return now + float(expires_in)
    return None
