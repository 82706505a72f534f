"""The server extension: settings (traits, each also read from an environment variable, since
hub and Binder admins set env vars rather than config files), wiring, start and stop hooks."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Float, Int, List, Unicode, default, validate

from . import filters, rescues
from .auth.github import DEFAULT_GITHUB_URL, GitHubSettings, default_api_url
from .auth.handlers import auth_handlers
from .auth.service import AuthService
from .engine import EngineConfig, SyncEngine
from .handlers import (
    BranchesHandler,
    DiffHandler,
    FileHandler,
    HistoryHandler,
    PublishHandler,
    RescueDeleteHandler,
    RestoreFileHandler,
    RestoreWorkspaceHandler,
    ResumeHandler,
    StatusHandler,
    SyncHandler,
    VersionsHandler,
)
from .repository import default_user
from .transport import DEFAULT_CONNECT_TIMEOUT_SECONDS, DEFAULT_STALL_TIMEOUT_SECONDS

EVENT_SCHEMA_ID = "https://events.jupyter.org/jupyter_gitsync/status/v1"
_EVENT_SCHEMA = Path(__file__).parent / "events" / "status-v1.yaml"
_FALSE = {"0", "false", "no", "off", ""}
log = logging.getLogger(__name__)

# trait -> (environment variable, its default when the variable is unset or unusable)
ENV_VARS: dict[str, tuple[str, Any]] = {
    "enabled": ("GITSYNC_ENABLED", True),
    "remote_url": ("GITSYNC_REMOTE_URL", ""),
    "commit_delay_seconds": ("GITSYNC_COMMIT_DELAY", 2.0),
    "push_interval_seconds": ("GITSYNC_PUSH_INTERVAL", 10.0),
    "poll_interval_seconds": ("GITSYNC_POLL_INTERVAL", 5.0),
    "client_id": ("GITSYNC_CLIENT_ID", ""),
    "github_url": ("GITSYNC_GITHUB_URL", DEFAULT_GITHUB_URL),
    "github_app_id": ("GITSYNC_GITHUB_APP_ID", ""),
    "github_app_private_key_path": ("GITSYNC_GITHUB_APP_PRIVATE_KEY_PATH", ""),
    "max_rescue_branches": ("GITSYNC_MAX_RESCUE_BRANCHES", rescues.DEFAULT_LIMIT),
}


def _from_environment(trait: str) -> Callable[[Any], Any]:
    """A traitlets default generator reading `trait`'s variable from ENV_VARS."""
    variable, fallback = ENV_VARS[trait]

    def read(self: Any) -> Any:
        value = os.environ.get(variable, "").strip()
        if not value:
            return fallback
        if isinstance(fallback, bool):
            return value.lower() not in _FALSE
        if isinstance(fallback, (float, int)):
            try:
                return type(fallback)(value)
            except ValueError:
                log.warning("gitsync: %s=%r is not a number; using %s", variable, value, fallback)
                return fallback
        return value

    return read


# Binder's JUPYTERHUB_USER is random at every launch (<owner>-<repo>-<8 characters>): a branch
# named after it could never be found again. Until the GitHub login is known, snapshots go to
# this stand-in, locally only.
BINDER_STAND_IN_BRANCH = "gitsync/binder-session"


def on_binder() -> bool:
    """True in a mybinder.org (BinderHub) launch."""
    return bool(os.environ.get("BINDER_LAUNCH_HOST") or os.environ.get("BINDER_REPO_URL"))


class GitSync(ExtensionApp):
    """Keeps the workspace continuously saved to a branch of its git remote."""

    name = "jupyter_gitsync"
    load_other_extensions = True

    enabled = Bool(
        True,
        config=True,
        help="Sync the workspace to its remote. Env: GITSYNC_ENABLED (0/false/no/off: disabled).",
    )
    remote_url = Unicode(
        "",
        config=True,
        help="The git remote to sync with. Default: the workspace repository's 'origin'."
        " Env: GITSYNC_REMOTE_URL.",
    )
    branch = Unicode(
        config=True,
        help="The branch snapshots are written and pushed to. Default: gitsync/<user>."
        " Env: GITSYNC_BRANCH.",
    )
    workspace = Unicode(
        "", config=True, help="The directory to sync. Default: the server's root_dir."
    )
    commit_delay_seconds = Float(
        config=True,
        help="Quiet period after the last change before a snapshot is made. Env:"
        " GITSYNC_COMMIT_DELAY.",
    )
    push_interval_seconds = Float(
        config=True,
        help="Pushes refill at one per this many seconds once the burst allowance"
        " (push_burst) is spent; snapshots made meanwhile go in one push. The default keeps"
        " well inside GitHub's limits on content-creating requests. Env: GITSYNC_PUSH_INTERVAL.",
    )
    retry_initial_seconds = Float(
        2.0, config=True, help="First wait before retrying a failed push; it doubles each time."
    )
    retry_max_seconds = Float(300.0, config=True, help="Longest wait between push retries.")
    auth_recheck_seconds = Float(
        60.0,
        config=True,
        help="While the remote refuses the token (401/403), try again this often: a proxy or a"
        " rate limit passes and the state clears by itself, and the JupyterHub auth_state is"
        " read again each time, so a new hub login is picked up. A new token is tried at once.",
    )
    rescan_interval_seconds = Float(
        600.0,
        config=True,
        help="Every so often the whole workspace is scanned (cheap: unchanged files are not"
        " reread), to catch any change the watcher missed.",
    )
    poll_interval_seconds = Float(
        config=True,
        help="Where the system refuses inotify (its per-user limits on watches or instances,"
        " shared by every session of a uid on a node, are reached), the workspace is scanned"
        " this often instead (cheap: unchanged files are not reread), so saves still sync."
        " Env: GITSYNC_POLL_INTERVAL.",
    )
    shutdown_timeout_seconds = Float(
        20.0,
        config=True,
        help="How long a stopping server may spend saving and pushing the last changes; inside"
        " Kubernetes' default 30 s grace period.",
    )
    push_burst = Int(
        5,
        config=True,
        help="How many pushes may go out at once before the push interval applies: a few saves"
        " in a row each reach the remote at once, and a long busy session still stays within"
        " GitHub's limits.",
    )
    network_connect_timeout_seconds = Float(
        DEFAULT_CONNECT_TIMEOUT_SECONDS,
        config=True,
        help="How long to wait for the remote to accept a connection.",
    )
    network_stall_timeout_seconds = Float(
        DEFAULT_STALL_TIMEOUT_SECONDS,
        config=True,
        help="A remote that sends or takes nothing for this long is given up on (and retried"
        " later); local snapshots never wait for it.",
    )
    network_deadline_seconds = Float(
        1800.0,
        config=True,
        help="The longest any one fetch or push may take, however much data still moves.",
    )
    history_fetch_seconds = Float(
        15.0,
        config=True,
        help="When a history page needs older snapshots than a shallow restore fetched, how"
        " long to wait for the remote to send them; then the page answers with what is here.",
    )
    max_file_size_bytes = Int(
        filters.DEFAULT_MAX_FILE_SIZE_BYTES,
        config=True,
        help="Files larger than this are not synced and are reported (GitHub refuses 100 MB).",
    )
    max_rescue_branches = Int(
        rescues.DEFAULT_LIMIT,
        config=True,
        help="Rescue branches kept per sync branch before the user is told to tidy up (one"
        " whose files are back in the sync branch is deleted by itself; unmerged work never).",
    )
    excludes = List(
        Unicode(),
        config=True,
        help="Names or globs never synced, wherever they are; .gitignore applies as well."
        " Default: filters.DEFAULT_EXCLUDES plus GITSYNC_EXCLUDES (comma-separated).",
    )

    @default("excludes")
    def _default_excludes(self) -> list[str]:
        added = os.environ.get("GITSYNC_EXCLUDES", "")
        return [*filters.DEFAULT_EXCLUDES, *(p.strip() for p in added.split(",") if p.strip())]

    client_id = Unicode(
        config=True,
        help="Client ID of the GitHub App or OAuth App (device flow enabled) used to sign in"
        " from the UI. Env: GITSYNC_CLIENT_ID.",
    )
    oauth_scope = Unicode(
        "repo",
        config=True,
        help="Scopes the device-flow sign-in asks an OAuth App for (GitHub Apps ignore it).",
    )
    github_url = Unicode(
        config=True,
        help="GitHub's web URL (GitHub Enterprise: https://<host>). Env: GITSYNC_GITHUB_URL.",
    )
    github_api_url = Unicode(
        config=True,
        help="GitHub's REST API URL. Default: https://api.github.com, or <github_url>/api/v3 for"
        " GitHub Enterprise. Env: GITSYNC_GITHUB_API_URL.",
    )
    github_app_id = Unicode(
        config=True,
        help="ID of a GitHub App installed on the repository, to push with installation"
        " tokens. Env: GITSYNC_GITHUB_APP_ID.",
    )
    keep_token_in_environment = Bool(
        False,
        config=True,
        help="Leave GITSYNC_TOKEN / GITHUB_TOKEN in the server's environment. By default they"
        " are removed once read, so that kernels and terminals (which inherit the server's"
        " environment) never hold the push token.",
    )
    github_app_private_key_path = Unicode(
        config=True,
        help="Path of that App's private key (PEM). Env: GITSYNC_GITHUB_APP_PRIVATE_KEY_PATH.",
    )

    # Every trait in ENV_VARS takes its default from that environment variable (a config
    # file value still wins): one table instead of a method per trait.
    for _trait in ENV_VARS:
        vars()[f"_default_{_trait}"] = default(_trait)(_from_environment(_trait))
    del _trait

    @default("branch")
    def _default_branch(self) -> str:
        if os.environ.get("GITSYNC_BRANCH"):
            return os.environ["GITSYNC_BRANCH"]
        if on_binder():
            return BINDER_STAND_IN_BRANCH  # until the GitHub login names it
        return f"gitsync/{default_user()}"

    @default("github_api_url")
    def _default_github_api_url(self) -> str:
        return os.environ.get("GITSYNC_GITHUB_API_URL") or default_api_url(self.github_url)

    @validate("commit_delay_seconds", "push_interval_seconds", "shutdown_timeout_seconds")
    def _non_negative(self, proposal: dict[str, Any]) -> float:
        value = float(proposal["value"])
        if value < 0:
            raise ValueError(f"{proposal['trait'].name} must not be negative, got {value}")
        return value

    @validate("poll_interval_seconds")
    def _positive(self, proposal: dict[str, Any]) -> float:
        value = float(proposal["value"])
        if value <= 0:  # 0 would scan without pause
            raise ValueError(f"{proposal['trait'].name} must be positive, got {value}")
        return value

    def initialize_settings(self) -> None:
        """Build the engine once; handlers get it through their init dict."""
        assert self.serverapp is not None
        self._log_like_the_server()
        workspace = Path(self.workspace or self.serverapp.root_dir).expanduser()
        config = EngineConfig(
            workspace=workspace,
            branch=self.branch,
            remote_url=self.remote_url or None,
            commit_delay_seconds=self.commit_delay_seconds,
            push_interval_seconds=self.push_interval_seconds,
            retry_initial_seconds=self.retry_initial_seconds,
            retry_max_seconds=self.retry_max_seconds,
            auth_recheck_seconds=self.auth_recheck_seconds,
            excludes=tuple(self.excludes),
            max_file_size_bytes=self.max_file_size_bytes,
            enabled=self.enabled,
            binder_repo_url=os.environ.get("BINDER_REPO_URL"),
            provisional_branch=on_binder() and not self._branch_is_explicit(),
            rescan_interval_seconds=self.rescan_interval_seconds,
            poll_interval_seconds=self.poll_interval_seconds,
            push_burst=self.push_burst,
            network_connect_timeout_seconds=self.network_connect_timeout_seconds,
            network_stall_timeout_seconds=self.network_stall_timeout_seconds,
            network_deadline_seconds=self.network_deadline_seconds,
            max_rescue_branches=self.max_rescue_branches,
            history_fetch_seconds=self.history_fetch_seconds,
        )
        self.auth = AuthService.from_settings(
            github=GitHubSettings(self.github_url, self.github_api_url),
            remote_url=self.remote_url or None,
            client_id=self.client_id,
            scope=self.oauth_scope,
            github_app_id=self.github_app_id,
            github_app_private_key_path=self.github_app_private_key_path,
            keep_token_in_environment=self.keep_token_in_environment,
        )
        self.credentials = self.auth.credentials
        event_logger = self.serverapp.event_logger
        assert event_logger is not None, "jupyter_server >= 2 has an event logger"
        event_logger.register_event_schema(_EVENT_SCHEMA)

        def emit(data: dict[str, Any]) -> None:
            event_logger.emit(schema_id=EVENT_SCHEMA_ID, data=data)

        self.engine = SyncEngine(
            config, self.credentials, emit, permission=self.auth, pull_requests=self.auth
        )
        self.auth.attach(self.engine, follow_login=not self._branch_is_explicit())

    def _log_like_the_server(self) -> None:
        """Our modules log to `jupyter_gitsync.*`; show those records the way the server shows
        its own (same handlers and level), not through Python's bare last-resort handler."""
        assert self.serverapp is not None
        package = logging.getLogger("jupyter_gitsync")
        for handler in self.serverapp.log.handlers:
            if handler not in package.handlers:
                package.addHandler(handler)
        package.setLevel(self.serverapp.log.level)

    def _branch_is_explicit(self) -> bool:
        return "branch" in self.config.get("GitSync", {}) or bool(os.environ.get("GITSYNC_BRANCH"))

    def initialize_handlers(self) -> None:
        """Register the REST endpoints under {base_url}gitsync/."""
        kwargs = {"engine": self.engine}
        self.handlers.extend(auth_handlers(self.auth))
        self.handlers.extend(
            [
                (r"/gitsync/status", StatusHandler, kwargs),
                (r"/gitsync/sync", SyncHandler, kwargs),
                (r"/gitsync/branches", BranchesHandler, kwargs),
                (r"/gitsync/resume", ResumeHandler, kwargs),
                (r"/gitsync/rescues/delete", RescueDeleteHandler, kwargs),
                (r"/gitsync/publish", PublishHandler, kwargs),
                (r"/gitsync/history", HistoryHandler, kwargs),
                (r"/gitsync/file", FileHandler, kwargs),
                (r"/gitsync/diff", DiffHandler, kwargs),
                (r"/gitsync/versions", VersionsHandler, kwargs),
                (r"/gitsync/restore-file", RestoreFileHandler, kwargs),
                (r"/gitsync/restore-workspace", RestoreWorkspaceHandler, kwargs),
            ]
        )

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        """Start syncing once the event loop runs; start-up work happens on the git thread."""
        self._stop_on_sigint(serverapp)
        await self.engine.start()

    def _stop_on_sigint(self, serverapp: Any) -> None:
        """Make SIGINT stop the server the way SIGTERM does, running the stop hooks (and so
        the last snapshot and push).

        Without a terminal, jupyter_server leaves SIGINT to Python's default handler: the
        event loop ends with KeyboardInterrupt and no extension's stop hook runs. JupyterHub's
        local spawners stop single-user servers with SIGINT, so that would lose the last save.
        A handler someone else installed (the interactive prompt, JupyterHub's) is kept.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, serverapp._signal_stop)

    async def stop_extension(self) -> None:
        """Save and push what is pending before the server exits, within the timeout."""
        await self.engine.stop(self.shutdown_timeout_seconds)
        await self.auth.close()
