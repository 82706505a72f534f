"""The user's GitHub token as JupyterHub keeps it: `auth_state.access_token`, as stored by
GitHubOAuthenticator, read with the server's own API token from `GET {hub}/users/{name}`.

That endpoint, and not `GET {hub}/user`: the hub fills `auth_state` only in the user's model;
its "who am I" answer leaves it out whatever the token may read. The server's token needs the
scope `admin:auth_state!user`, and since JupyterHub 4 a server's token holds only the scopes its
user also holds, so both the `user` and the `server` role need it (see the README).

Read when a push first needs a token and cached until it expires. When the remote refuses it,
the hub is read at once (it may have refreshed the token), and again before that same token is
used the next time: the user may log in to the hub again meanwhile. The engine tries a refused
push again every `auth_recheck_seconds` and on Sync now, so a new hub login is picked up without
the user doing anything. Runs on the git thread, so it may block.
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
from urllib.parse import quote

from .github import USER_AGENT, AuthError, blocking_request

log = logging.getLogger(__name__)

EXPIRY_MARGIN_SECONDS = 60.0  # read again this long before the token expires
RETRY_AFTER_SECONDS = 30.0  # after the hub had no token for us, ask again at most this often
RETIRED_KEPT = 8

MISSING_SCOPE = (
    "gitsync: the hub does not show this server %s's auth_state: the server's token lacks the"
    " scope admin:auth_state!user. JupyterHub gives a server's token only the scopes its user"
    " also holds, so add admin:auth_state!user to both the 'user' and the 'server' role"
    " (c.JupyterHub.load_roles), then restart the server (see the jupyter-gitsync README)"
)
NO_AUTH_STATE = (
    "gitsync: the hub keeps no auth_state for %s: it needs c.Authenticator.enable_auth_state ="
    " True (with JUPYTERHUB_CRYPT_KEY set) and an authenticator that keeps the GitHub token, such"
    " as GitHubOAuthenticator; a user who logged in before that must log in again"
)
NO_ACCESS_TOKEN = (
    "gitsync: %s's auth_state holds no access_token (GitHubOAuthenticator keeps the user's"
    " GitHub token there)"
)
REFUSED_READ = (
    "gitsync: the hub answered HTTP %d to GET %s: the server's token may not read its own user"
    " (the 'server' role's default scope users:activity!user gives it that)"
)


class HubAuthStateProvider:
    """The GitHub token in the user's JupyterHub auth_state."""

    name = "jupyterhub"

    def __init__(
        self,
        api_url: str,
        api_token: str,
        user: str,
        *,
        clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.user = user
        self._api_token = api_token
        self._clock = clock
        self._timeout = timeout
        self._notify: Callable[[], None] = lambda: None
        self._fetch_lock = threading.Lock()  # one read of the hub at a time
        self._lock = threading.Lock()  # the fields below; never held while waiting on the hub
        self._token: str | None = None
        self._expires_at: float | None = None  # epoch seconds, when the hub tells us
        self._retry_at = 0.0
        self._recheck = False  # the remote refused _token: read the hub before using it again
        self._retired: collections.deque[str] = collections.deque(maxlen=RETIRED_KEPT)
        self._warned: set[str] = set()  # each configuration problem is logged once
        self.login: str | None = None  # auth_state.github_user.login, when the hub keeps it
        self.reads = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HubAuthStateProvider | None:
        """A provider when running under JupyterHub (JUPYTERHUB_API_URL, JUPYTERHUB_API_TOKEN
        and JUPYTERHUB_USER, which the hub sets for every server), else None."""
        env = os.environ if environ is None else environ
        url, token = env.get("JUPYTERHUB_API_URL"), env.get("JUPYTERHUB_API_TOKEN")
        user = env.get("JUPYTERHUB_USER")
        return cls(url, token, user) if url and token and user else None

    @property
    def user_url(self) -> str:
        """The user's model in the hub's REST API (user names may hold '@', '/', spaces)."""
        return f"{self.api_url}/users/{quote(self.user, safe='')}"

    def bind(self, notify: Callable[[], None]) -> None:
        self._notify = notify

    def token(self) -> str | None:
        """The cached token while it is good, else a fresh read of the hub. A read after a
        refusal that finds a different token (a new login) announces it."""
        with self._lock:
            if self._cached() is not None:
                return self._token
            if self._token is None and self._clock() < self._retry_at:
                return None
        with self._fetch_lock:
            with self._lock:  # another thread may have read it while we waited
                if self._cached() is not None:
                    return self._token
                old, recheck = self._token, self._recheck
            new = self._read()
        if recheck and new is not None and new != old:
            log.info("gitsync: the hub has a new GitHub token for %s; pushing again", self.user)
            self._notify()
        return new

    def refused(self) -> None:
        """The remote refused the token: read the hub again; a different token means retry.
        The same token is read again before its next use (see the module docstring)."""
        with self._fetch_lock:
            with self._lock:
                old = self._token
            new = self._read()
            with self._lock:
                self._recheck = new is not None and new == old
        if new is not None and new != old:
            log.info("gitsync: the hub has a new GitHub token for %s; pushing again", self.user)
            self._notify()

    def secrets(self) -> list[str]:
        with self._lock:
            return [s for s in (self._token, self._api_token, *self._retired) if s]

    def _cached(self) -> str | None:
        """The token to use without asking the hub (call under `_lock`)."""
        if self._token is None or self._recheck or self._expiring():
            return None
        return self._token

    def _expiring(self) -> bool:
        return (
            self._expires_at is not None
            and self._clock() >= self._expires_at - EXPIRY_MARGIN_SECONDS
        )

    def _read(self) -> str | None:
        """GET {hub}/users/{name} and take auth_state.access_token; keeps the old token when
        the hub cannot be reached or refuses to answer."""
        self.reads += 1
        url = self.user_url
        with self._lock:
            self._recheck = False
        try:
            response = blocking_request(
                "GET",
                url,
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
            if response.status in (403, 404):
                self._warn_once("read", REFUSED_READ, response.status, url)
            else:
                log.warning("gitsync: the hub answered HTTP %d to GET %s", response.status, url)
            return self._stale()
        body = response.body if isinstance(response.body, dict) else {}
        auth_state = body.get("auth_state")
        access_token = auth_state.get("access_token") if isinstance(auth_state, dict) else None
        if not isinstance(access_token, str) or not access_token:
            if "auth_state" not in body:  # the hub leaves out what the token may not read
                self._warn_once("scope", MISSING_SCOPE, self.user)
            elif not isinstance(auth_state, dict):
                self._warn_once("auth_state", NO_AUTH_STATE, self.user)
            else:
                self._warn_once("access_token", NO_ACCESS_TOKEN, self.user)
            self._forget()
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

    def _warn_once(self, problem: str, message: str, *args: Any) -> None:
        if problem not in self._warned:
            self._warned.add(problem)
            log.warning(message, *args)

    def _forget(self) -> None:
        """The hub has no token for us (any more): ask again after a while."""
        with self._lock:
            if self._token is not None:
                self._retired.append(self._token)
            self._token = None
            self._retry_at = self._clock() + RETRY_AFTER_SECONDS

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
