"""What the REST API and the app need from authentication: the providers in their order, who is
signed in (GitHub login, scopes or permissions), whether they may push, and forking.

Providers, in the order they are asked for a token (the first that has one wins):

1. `device`: the GitHub device-flow sign-in started from the UI. It only exists when the user
   signed in during this session, so it is the user's latest word and is the remedy when any
   other token is refused or too weak; hence it comes first.
2. `env`: GITSYNC_TOKEN, else GITHUB_TOKEN.
3. `jupyterhub`: auth_state.access_token from the hub (JUPYTERHUB_API_URL, _TOKEN and
   JUPYTERHUB_USER are set).
4. `github-app`: an installation token of a GitHub App (GitSync.github_app_id and key); it acts
   as the App, not as the user, so it comes last.

A token is only ever sent to the GitHub API when it came from GitHub (device flow, App) or the
remote is on GitHub: a token meant for another git host must not go to api.github.com.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from ..errors import PermissionDenied, TokenMissing
from ..repository import sanitize_ref_component
from . import Credentials, EnvTokenProvider, TokenProvider
from .device import DeviceFlowProvider
from .github import AuthError, GitHubSettings, api_request, github_message, parse_repo
from .github_app import GitHubAppProvider
from .hub import HubAuthStateProvider
from .pulls import PullRequest, open_pull_request

log = logging.getLogger(__name__)

PROVIDER_ORDER = ("device", "env", "jupyterhub", "github-app")
_GITHUB_ISSUED = {DeviceFlowProvider.name, GitHubAppProvider.name}
CAN_PUSH_CACHE_SECONDS = 60.0

LoginCallback = Callable[[str], None]
ForkCallback = Callable[[str], None]


class SyncTarget(Protocol):
    """What the auth service asks of the sync engine: where it pushes, and the two jobs that
    signing in and forking lead to."""

    @property
    def remote_url(self) -> str | None: ...

    async def adopt_branch(self, branch: str) -> None: ...

    async def set_remote(self, url: str) -> None: ...


def branch_for_login(login: str) -> str:
    """The sync branch of a GitHub user."""
    return f"gitsync/{sanitize_ref_component(login)}"


@dataclass
class Identity:
    """Who a token belongs to, as far as GitHub says; never the token itself."""

    provider: str
    login: str | None = None
    scopes: list[str] | None = None
    permissions: dict[str, str] | None = None
    error: str | None = None


def provider_name(provider: TokenProvider) -> str:
    return str(getattr(provider, "name", type(provider).__name__))


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AuthService:
    """Credentials plus what GitHub says about them. Lives on the Jupyter event loop."""

    def __init__(
        self,
        credentials: Credentials,
        github: GitHubSettings,
        remote_url: str | None = None,
        device: DeviceFlowProvider | None = None,
    ) -> None:
        self.credentials = credentials
        self.github = github
        self.device = device
        self._configured_remote = remote_url
        self._target: SyncTarget | None = None
        self._follow_login = False
        self._jobs: set[asyncio.Future[None]] = set()
        self.login: str | None = None
        self.on_login: list[LoginCallback] = []  # called with the login when it becomes known
        self.on_fork: list[ForkCallback] = []  # called with the fork's clone URL
        self._identities: dict[str, Identity] = {}
        self._can_push: dict[tuple[str, str, str], tuple[float, bool]] = {}
        if device is not None:
            device.on_token.append(self._device_signed_in)

    @classmethod
    def from_settings(
        cls,
        *,
        github: GitHubSettings,
        remote_url: str | None = None,
        client_id: str | None = None,
        scope: str = "repo",
        github_app_id: str | None = None,
        github_app_private_key_path: str | None = None,
        environ: Mapping[str, str] | None = None,
        keep_token_in_environment: bool = False,
    ) -> AuthService:
        """The providers in their documented order (see the module docstring)."""
        device = DeviceFlowProvider(client_id, github, scope)
        env = EnvTokenProvider(environ, keep_in_environment=keep_token_in_environment)
        providers: list[TokenProvider] = [device, env]
        hub = HubAuthStateProvider.from_env(environ)
        if hub is not None:
            providers.append(hub)
        service = cls(Credentials(providers), github, remote_url, device)
        if github_app_id and github_app_private_key_path:
            try:
                app = GitHubAppProvider.from_key_file(
                    github_app_id, github_app_private_key_path, github.api_url, service.repository
                )
                service.credentials.add(app)
            except AuthError as exc:
                log.error("gitsync: GitHub App tokens are off: %s", exc.message)
        elif github_app_id or github_app_private_key_path:
            log.warning(
                "gitsync: GitHub App tokens need both GitSync.github_app_id and"
                " GitSync.github_app_private_key_path; only one is set"
            )
        return service

    def attach(self, target: SyncTarget, follow_login: bool) -> None:
        """Sync through `target`: once the GitHub login is known it syncs to gitsync/<login>
        (if `follow_login`: no branch was set), and after a fork it pushes to the fork."""
        self._target = target
        self._follow_login = follow_login

    # -- the repository ------------------------------------------------------------------------

    def remote_url(self) -> str | None:
        """The engine's remote once it is open (it may come from 'origin'), else the setting."""
        engine_url = self._target.remote_url if self._target is not None else None
        return engine_url or self._configured_remote

    def repository(self) -> tuple[str, str] | None:
        """(owner, name) of the remote when it is on the configured GitHub, else None."""
        return parse_repo(self.remote_url(), self.github.web_url)

    async def check_push(self) -> str | None:
        """Before the first push to a remote: when GitHub says this user may not push there,
        the clone URL of the user's own fork of it if there is one (made in an earlier
        session: the work goes there), else PermissionDenied in plain words. None: pushing
        may go on (allowed, not GitHub, or no answer: the push itself will tell)."""
        try:
            allowed = await self.can_push()
            fork = await self._own_fork() if allowed is False else None
        except AuthError as exc:
            log.info("gitsync: could not check push permission: %s", exc.message)
            return None
        if fork is not None:
            log.info("gitsync: found your fork %s; syncing there", fork)
            return fork
        if allowed is False:
            repository = "/".join(self.repository() or ("", ""))
            raise PermissionDenied(
                f"You cannot push to {repository}. Fork it to your GitHub account to keep"
                " your work synced there."
            )
        return None

    def _run_job(self, work: Coroutine[Any, Any, None]) -> None:
        """Hand the engine a job without waiting for it (it queues behind the engine's work)."""
        task = asyncio.ensure_future(work)
        self._jobs.add(task)
        task.add_done_callback(self._job_done)

    def _job_done(self, task: asyncio.Future[None]) -> None:
        self._jobs.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("gitsync: %s", task.exception())

    async def _active(self) -> tuple[TokenProvider, str] | None:
        # Providers may block (hub, App); keep that off the event loop.
        return await asyncio.to_thread(self.credentials.active)

    def _may_send(self, provider: TokenProvider) -> bool:
        return provider_name(provider) in _GITHUB_ISSUED or self.repository() is not None

    # -- who is signed in ----------------------------------------------------------------------

    async def login_branch(self) -> str | None:
        """gitsync/<login> for the token in use, when GitHub says whose it is (None: no token,
        no login, or GitHub cannot be asked now)."""
        try:
            identity = await self.identify()
        except AuthError as exc:
            log.info("gitsync: could not ask GitHub whose the token is: %s", exc.message)
            return None
        if identity is None or not identity.login:
            return None
        return branch_for_login(identity.login)

    async def identify(self) -> Identity | None:
        """Who the token in use belongs to (GET /user), or None when there is no token."""
        active = await self._active()
        if active is None:
            return None
        return await self._identify(*active)

    async def _identify(self, provider: TokenProvider, token: str) -> Identity:
        name = provider_name(provider)
        if name == GitHubAppProvider.name:
            return Identity(name, permissions=getattr(provider, "permissions", None))
        if not self._may_send(provider):
            return Identity(name, login=getattr(provider, "login", None))
        key = _fingerprint(token)
        identity = self._identities.get(key)
        if identity is None:
            response = await api_request(
                "GET", f"{self.github.api_url}/user", authorization=f"Bearer {token}"
            )
            body = response.body if isinstance(response.body, dict) else {}
            if response.status != 200 or not body.get("login"):
                return Identity(name, error=_refusal(response.status, github_message(response)))
            scopes = response.headers.get("x-oauth-scopes")
            identity = Identity(
                name,
                login=str(body["login"]),
                scopes=None if scopes is None else [s.strip() for s in scopes.split(",") if s],
            )
            self._identities[key] = identity
        self._set_login(identity.login)
        return identity

    def _set_login(self, login: str | None) -> None:
        if not login or login == self.login:
            return
        self.login = login
        log.info("gitsync: signed in to GitHub as %s", login)
        if self._target is not None and self._follow_login:
            self._run_job(self._target.adopt_branch(branch_for_login(login)))
        for callback in list(self.on_login):
            try:
                callback(login)
            except Exception:
                log.exception("gitsync: an on_login callback failed")

    async def _device_signed_in(self) -> None:
        """Learn the login before the engine hears of the token, so the branch name can use it."""
        assert self.device is not None
        token = self.device.token()
        if token is None:
            return
        try:
            identity = await self._identify(self.device, token)
        except AuthError as exc:
            log.warning("gitsync: could not ask GitHub who signed in: %s", exc.message)
            return
        if identity.error:
            log.warning("gitsync: could not ask GitHub who signed in: %s", identity.error)

    # -- permission and forking ----------------------------------------------------------------

    async def can_push(self) -> bool | None:
        """Whether the signed-in user may push to the remote (GET /repos/{o}/{r} →
        permissions.push); None when the remote is not on GitHub or there is no token."""
        repository = self.repository()
        active = await self._active() if repository is not None else None
        if repository is None or active is None:
            return None
        return await self._check_push(*active, repository)

    async def _check_push(
        self, provider: TokenProvider, token: str, repository: tuple[str, str]
    ) -> bool:
        if provider_name(provider) == GitHubAppProvider.name:
            permissions = getattr(provider, "permissions", None) or {}
            return permissions.get("contents") == "write"
        owner, name = repository
        key = (_fingerprint(token), owner, name)
        cached = self._can_push.get(key)
        if cached is not None and time.monotonic() - cached[0] < CAN_PUSH_CACHE_SECONDS:
            return cached[1]
        response = await api_request(
            "GET", f"{self.github.api_url}/repos/{owner}/{name}", authorization=f"Bearer {token}"
        )
        if response.status == 200:
            body = response.body if isinstance(response.body, dict) else {}
            permissions = body.get("permissions")
            allowed = bool(isinstance(permissions, dict) and permissions.get("push"))
        elif response.status == 404:
            allowed = False  # GitHub hides private repositories the user cannot see
        else:
            raise AuthError(_refusal(response.status, github_message(response)), 502)
        self._can_push[key] = (time.monotonic(), allowed)
        return allowed

    async def _own_fork(self) -> str | None:
        """The clone URL of the signed-in user's fork of the remote, when GitHub has one
        (GET /repos/{login}/{name}: a fork whose parent is the remote)."""
        repository = self.repository()
        active = await self._active()
        if repository is None or active is None:
            return None
        identity = await self._identify(*active)
        if not identity.login or identity.login.lower() == repository[0].lower():
            return None
        response = await api_request(
            "GET",
            f"{self.github.api_url}/repos/{identity.login}/{repository[1]}",
            authorization=f"Bearer {active[1]}",
        )
        body = response.body if isinstance(response.body, dict) else {}
        parent = body.get("parent")
        parent_name = parent.get("full_name", "") if isinstance(parent, dict) else ""
        wanted = "/".join(repository).lower()
        if (
            response.status != 200
            or body.get("fork") is not True
            or str(parent_name).lower() != wanted
            or not isinstance(body.get("clone_url"), str)
        ):
            return None
        return str(body["clone_url"])

    async def fork(self) -> dict[str, Any]:
        """Fork the remote into the signed-in user's account (GitHub answers 202 and creates it
        in the background); tell `on_fork` the fork's clone URL."""
        repository = self.repository()
        if repository is None:
            raise AuthError(
                f"The remote is not a repository on {self.github.web_url}, so it cannot be"
                " forked there.",
                400,
            )
        active = await self._active()
        if active is None or provider_name(active[0]) == GitHubAppProvider.name:
            raise AuthError("Sign in to GitHub first: a fork belongs to your own account.", 409)
        owner, name = repository
        response = await api_request(
            "POST",
            f"{self.github.api_url}/repos/{owner}/{name}/forks",
            authorization=f"Bearer {active[1]}",
            json_body={},
        )
        body = response.body if isinstance(response.body, dict) else {}
        if response.status not in (200, 201, 202) or not body.get("clone_url"):
            status = (
                404 if response.status == 404 else 403 if response.status in (401, 403) else 502
            )
            raise AuthError(
                f"GitHub would not fork {owner}/{name}: "
                + _refusal(response.status, github_message(response)),
                status,
            )
        clone_url = str(body["clone_url"])
        fork = {
            "clone_url": clone_url,
            "full_name": body.get("full_name"),
            "html_url": body.get("html_url"),
        }
        log.info("gitsync: forked %s/%s to %s", owner, name, fork["full_name"])
        if self._target is not None:
            self._run_job(self._target.set_remote(clone_url))
        for callback in list(self.on_fork):
            try:
                callback(clone_url)
            except Exception:
                log.exception("gitsync: an on_fork callback failed")
        return fork

    # -- pull requests (publish) ---------------------------------------------------------------

    async def open_pull_request(
        self, pushed_to: str, branch: str, title: str, body: str, base: str | None
    ) -> PullRequest | None:
        """Open a pull request for `branch`, just pushed to `pushed_to`, with the token in use
        (see `pulls`); None when `pushed_to` is not a repository on the configured GitHub
        (the branch is pushed, and that is all)."""
        repository = parse_repo(pushed_to, self.github.web_url)
        if repository is None:
            return None
        active = await self._active()
        if active is None:
            raise TokenMissing("Sign in to GitHub to open a pull request.")
        return await open_pull_request(
            self.github.api_url, active[1], repository, branch, title, body, base
        )

    # -- sign-in and sign-out ------------------------------------------------------------------

    async def start_device_flow(self) -> dict[str, Any]:
        """Start (or continue) a device-flow sign-in; the user code and where to enter it."""
        if self.device is None:
            raise AuthError("GitHub sign-in from the UI is not available here.", 400)
        return await self.device.start()

    def sign_out(self) -> None:
        """Forget the device-flow token (tokens from the environment or the hub stay)."""
        if self.device is not None:
            self.device.sign_out()
        self.login = None

    async def close(self) -> None:
        if self.device is not None:
            await self.device.close()

    # -- the answer of GET /gitsync/auth -------------------------------------------------------

    async def describe(self) -> dict[str, Any]:
        """Who is signed in, by which provider, with which scopes or permissions; never a token."""
        repository = self.repository()
        answer: dict[str, Any] = {
            "signed_in": False,
            "provider": None,
            "login": None,
            "scopes": None,
            "permissions": None,
            "repository": None if repository is None else "/".join(repository),
            "can_push": None,
            "device_flow": None if self.device is None else self.device.flow_status(),
            "sign_in_available": bool(self.device is not None and self.device.client_id),
            "providers": [provider_name(p) for p in self.credentials.providers],
            "error": None,
        }
        active = await self._active()
        if active is None:
            return answer
        provider, token = active
        answer["signed_in"] = True
        try:
            identity = await self._identify(provider, token)
            answer.update({k: v for k, v in asdict(identity).items() if k != "provider"})
            answer["provider"] = identity.provider
            if repository is not None and identity.error is None:
                answer["can_push"] = await self._check_push(provider, token, repository)
        except AuthError as exc:
            answer["provider"] = provider_name(provider)
            answer["error"] = exc.message
        return answer


def _refusal(status: int, message: str) -> str:
    if status == 401:
        return f"GitHub refused the token ({message or 'Bad credentials'})."
    return f"GitHub answered HTTP {status}" + (f" ({message})." if message else ".")
