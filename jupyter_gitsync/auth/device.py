"""Sign-in from the UI with GitHub's device flow, run on the Jupyter event loop.

The user opens `verification_uri` and types `user_code`; meanwhile the server polls GitHub's
token endpoint at the interval GitHub asks for. The token (and, for GitHub App user tokens that
expire, the refresh token) is kept in memory only, and refreshed shortly before it expires.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .github import AuthError, GitHubSettings, api_request

log = logging.getLogger(__name__)

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SLOW_DOWN_SECONDS = 5.0  # what GitHub adds to the interval with every slow_down
REFRESH_MARGIN_SECONDS = 300.0  # refresh this long before expiry (a quarter of short lives)
RETIRED_KEPT = 8  # tokens replaced this session, still redacted wherever they show up
FRESH_SECONDS = 60.0  # a token refused this soon after it was issued is not refreshed again

NO_CLIENT_ID = (
    "GitHub sign-in is not set up: the server needs the client ID of a GitHub App or OAuth App"
    " with device flow enabled. Set c.GitSync.client_id in a Jupyter config file or the"
    " GITSYNC_CLIENT_ID environment variable, then restart the server."
)

_TERMINAL_MESSAGES = {
    "expired_token": ("expired", "The sign-in code expired before it was entered. Start again."),
    "access_denied": ("denied", "The sign-in was cancelled on GitHub."),
    "incorrect_device_code": ("error", "GitHub did not recognise the sign-in code. Start again."),
    "incorrect_client_credentials": (
        "error",
        "GitHub does not know the configured client ID (GitSync.client_id).",
    ),
    "device_flow_disabled": (
        "error",
        "Device flow is not enabled for the configured GitHub App or OAuth App; enable it in"
        " the app's settings on GitHub.",
    ),
    "unsupported_grant_type": ("error", "GitHub refused the sign-in request."),
}

Sleep = Callable[[float], Awaitable[None]]
TokenHook = Callable[[], Awaitable[None]]


@dataclass
class _Flow:
    """One sign-in attempt: what the user sees and where polling stands."""

    device_code: str
    user_code: str
    verification_uri: str
    interval: float
    expires_at: float  # time.monotonic()
    state: str = "pending"  # pending | denied | expired | error
    message: str | None = None

    def public(self) -> dict[str, Any]:
        """What the UI needs; never the device code."""
        return {
            "state": self.state,
            "user_code": self.user_code,
            "verification_uri": self.verification_uri,
            "expires_in": max(0, int(self.expires_at - time.monotonic())),
            "interval": int(self.interval),
            "message": self.message,
        }


class DeviceFlowProvider:
    """A token from GitHub's device flow, started from the UI (`start()`), in memory only."""

    name = "device"

    def __init__(
        self,
        client_id: str | None,
        github: GitHubSettings,
        scope: str = "repo",
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.client_id = client_id or None
        self.github = github
        self.scope = scope
        self.on_token: list[TokenHook] = []  # awaited when a new token arrives, before notify
        self._sleep = sleep
        self._notify: Callable[[], None] = lambda: None
        self._lock = threading.Lock()  # token fields are read on the git thread
        self._token: str | None = None
        self._refresh_token: str | None = None
        self._expires_at: float | None = None
        self._issued_at = 0.0
        self._retired: collections.deque[str] = collections.deque(maxlen=RETIRED_KEPT)
        self.granted_scopes: list[str] | None = None
        self._flow: _Flow | None = None
        self._generation = 0  # bumped by sign-out and by every new flow: stale work stops
        self._tasks: set[asyncio.Task[Any]] = set()
        self._refresh_task: asyncio.Task[Any] | None = None
        self._refresh_lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- the TokenProvider side (any thread) -------------------------------------------------

    def bind(self, notify: Callable[[], None]) -> None:
        """Credentials hand us `changed`, called whenever a new token is there."""
        self._notify = notify

    def token(self) -> str | None:
        with self._lock:
            return self._token

    def secrets(self) -> list[str]:
        with self._lock:
            held = [self._token, self._refresh_token, *self._retired]
            if self._flow is not None:
                held.append(self._flow.device_code)
        return [s for s in held if s]

    def refused(self) -> None:
        """The remote refused our token (git thread): refresh it if we can, on the loop. A
        token refused right after it was issued lacks permission; a new one would not help."""
        with self._lock:
            can_refresh = (
                self._refresh_token is not None
                and time.monotonic() - self._issued_at >= FRESH_SECONDS
            )
        if can_refresh and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(lambda: self._spawn(self.refresh()))

    # -- state for the API ---------------------------------------------------------------------

    @property
    def signed_in(self) -> bool:
        return self.token() is not None

    @property
    def busy(self) -> bool:
        """Whether polling or a refresh is scheduled or running."""
        return any(not task.done() for task in self._tasks)

    def flow_status(self) -> dict[str, Any] | None:
        """The running or last failed sign-in, for GET /gitsync/auth; None once signed in."""
        flow = self._flow
        if flow is not None and flow.state == "pending" and time.monotonic() >= flow.expires_at:
            flow.state, flow.message = _TERMINAL_MESSAGES["expired_token"]
        return None if flow is None else flow.public()

    # -- the flow (event loop) -----------------------------------------------------------------

    async def start(self) -> dict[str, Any]:
        """Ask GitHub for a user code and start polling; a running flow is reused."""
        if not self.client_id:
            raise AuthError(NO_CLIENT_ID, status=400)
        self._loop = asyncio.get_running_loop()
        flow = self._flow
        if flow is not None and flow.state == "pending" and time.monotonic() < flow.expires_at:
            return flow.public()
        response = await api_request(
            "POST",
            f"{self.github.web_url}/login/device/code",
            form={"client_id": self.client_id, "scope": self.scope},
        )
        body = response.body if isinstance(response.body, dict) else {}
        if response.status != 200 or "error" in body or "device_code" not in body:
            error = str(body.get("error") or f"HTTP {response.status}")
            _, message = _TERMINAL_MESSAGES.get(error, ("error", ""))
            raise AuthError(message or f"GitHub would not start a sign-in ({error}).")
        self._generation += 1
        flow = _Flow(
            device_code=str(body["device_code"]),
            user_code=str(body["user_code"]),
            verification_uri=str(body["verification_uri"]),
            interval=float(body.get("interval", SLOW_DOWN_SECONDS)),
            expires_at=time.monotonic() + float(body.get("expires_in", 900)),
        )
        self._flow = flow
        self._spawn(self._poll(flow, self._generation))
        log.info("gitsync: GitHub sign-in started; waiting for the code to be entered")
        return flow.public()

    async def _poll(self, flow: _Flow, generation: int) -> None:
        """Poll the token endpoint at GitHub's pace until the user decides or the code expires."""
        while True:
            await self._sleep(flow.interval)
            if generation != self._generation:
                return  # signed out, or a new flow replaced this one
            if time.monotonic() >= flow.expires_at:
                flow.state, flow.message = _TERMINAL_MESSAGES["expired_token"]
                log.info("gitsync: GitHub sign-in code expired")
                return
            try:
                body = await self._token_request(
                    {"device_code": flow.device_code, "grant_type": DEVICE_GRANT}
                )
            except AuthError as exc:
                log.warning("gitsync: polling GitHub for the sign-in failed: %s", exc.message)
                continue
            if generation != self._generation:
                return
            error = body.get("error")
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                flow.interval = max(
                    flow.interval + SLOW_DOWN_SECONDS, float(body.get("interval") or 0)
                )
                continue
            if error or not body.get("access_token"):
                error = str(error or "no_token")
                flow.state, flow.message = _TERMINAL_MESSAGES.get(
                    error, ("error", f"GitHub refused the sign-in ({error}).")
                )
                log.info("gitsync: GitHub sign-in ended: %s", error)
                return
            self._flow = None
            await self._accept(body, generation)
            log.info("gitsync: signed in to GitHub with the device flow")
            return

    async def _token_request(self, form: dict[str, str]) -> dict[str, Any]:
        assert self.client_id is not None
        response = await api_request(
            "POST",
            f"{self.github.web_url}/login/oauth/access_token",
            form={"client_id": self.client_id, **form},
        )
        body = response.body if isinstance(response.body, dict) else {}
        if response.status != 200 and "error" not in body:
            body = {"error": f"http_{response.status}"}
        return body

    async def _accept(self, body: dict[str, Any], generation: int) -> None:
        """Keep a new token (and refresh token), tell the hooks, then the engine."""
        now = time.monotonic()
        expires_in = _seconds(body.get("expires_in"))
        with self._lock:
            if self._token is not None:
                self._retired.append(self._token)
            if self._refresh_token is not None:
                self._retired.append(self._refresh_token)
            self._token = str(body["access_token"])
            self._refresh_token = body.get("refresh_token") or None
            self._expires_at = None if expires_in is None else now + expires_in
            self._issued_at = now
        scope = body.get("scope")
        self.granted_scopes = (
            [s for s in str(scope).replace(",", " ").split() if s] if scope is not None else None
        )
        if self._refresh_token is not None and expires_in is not None:
            self._schedule_refresh(expires_in, generation)
        for hook in list(self.on_token):
            try:
                await hook()
            except Exception:
                log.exception("gitsync: a sign-in hook failed")
        self._notify()

    # -- refresh -------------------------------------------------------------------------------

    def _schedule_refresh(self, expires_in: float, generation: int) -> None:
        delay = max(0.0, expires_in - min(REFRESH_MARGIN_SECONDS, expires_in / 4))
        if self._refresh_task is not None:
            self._refresh_task.cancel()
        self._refresh_task = self._spawn(self._refresh_later(delay, generation))

    async def _refresh_later(self, delay: float, generation: int) -> None:
        await self._sleep(delay)
        if generation == self._generation:
            self._refresh_task = None  # refresh() schedules the next one
            await self.refresh()

    async def refresh(self) -> bool:
        """Trade the refresh token for a new token; False if there is none or GitHub refuses."""
        if self._refresh_lock is None:
            self._refresh_lock = asyncio.Lock()
        async with self._refresh_lock:
            with self._lock:
                refresh_token = self._refresh_token
            if refresh_token is None or not self.client_id:
                return False
            generation = self._generation
            try:
                body = await self._token_request(
                    {"grant_type": "refresh_token", "refresh_token": refresh_token}
                )
            except AuthError as exc:
                log.warning("gitsync: refreshing the GitHub token failed: %s", exc.message)
                return False
            if generation != self._generation:
                return False
            if body.get("error") or not body.get("access_token"):
                log.warning(
                    "gitsync: GitHub refused to refresh the token (%s); sign in again",
                    body.get("error", "no token"),
                )
                with self._lock:
                    if self._refresh_token == refresh_token:
                        self._retired.append(refresh_token)
                        self._refresh_token = None
                return False
            await self._accept(body, generation)
            log.info("gitsync: GitHub token refreshed")
            return True

    # -- sign-out and shutdown -----------------------------------------------------------------

    def sign_out(self) -> None:
        """Forget the token, the refresh token and any running flow."""
        self._generation += 1
        self._flow = None
        with self._lock:
            self._retired.extend(s for s in (self._token, self._refresh_token) if s)
            self._token = self._refresh_token = self._expires_at = None
        self.granted_scopes = None
        self._cancel_tasks()
        self._notify()

    async def close(self) -> None:
        """Stop polling and refreshing (server shutdown)."""
        self._generation += 1
        tasks = self._cancel_tasks()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _cancel_tasks(self) -> list[asyncio.Task[Any]]:
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        self._tasks.difference_update(tasks)  # cancelled: no longer counts as busy
        self._refresh_task = None
        return tasks

    def _spawn(self, coroutine: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _seconds(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
