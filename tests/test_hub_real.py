"""The extension under a real JupyterHub: the README's hub config with GitHubOAuthenticator,
configurable-http-proxy, a local spawner running `jupyterhub-singleuser` with the extension,
users logging in with plain HTTP through GitHub's web flow (tests/github_stub.py), and the
real git server accepting the token that login issued."""

from __future__ import annotations

import json
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest
import requests
import websocket

from tests.github_stub import GitHubStub
from tests.gitserver import GitHTTPServer
from tests.helpers import DEADLINE_SECONDS, git, ref_or_none, show, wait_until
from tests.jupyter_process import free_port
from tests.jupyterhub_process import HUB_POLL_SECONDS, Hub, jupyterhub_process, process_environment

pytestmark = pytest.mark.hub

USER = "ada"  # one of the README's allowed_users
BRANCH = f"gitsync/{USER}"  # the default sync branch under a hub: gitsync/<JUPYTERHUB_USER>
RECHECK_SECONDS = 1.0
SERVER_ARGS = [
    f"--GitSync.auth_recheck_seconds={RECHECK_SECONDS}",
    *(["--ServerApp.allow_root=True"] if os.geteuid() == 0 else []),  # containers, CI
]


T = TypeVar("T")


def until(predicate: Callable[[], T], timeout: float = DEADLINE_SECONDS, what: str = "") -> T:
    """wait_until at a pace that leaves the two CPUs to the hub and the server: each try here
    is a request to the hub or the server, or two git processes."""
    return wait_until(predicate, timeout, what, interval=HUB_POLL_SECONDS)


@dataclass
class Stack:
    """A hub, GitHub, the git server, and where the user's server listens."""

    hub: Hub
    github: GitHubStub
    git: GitHTTPServer
    remote: Path  # the bare repository on the git server
    workspace: Path
    port: int  # the single-user server's own port (requests here bypass the proxy)

    def log_in(self) -> str:
        """Log in to the hub with GitHub in a fresh browser; the token GitHub issued."""
        self.hub.browser().log_in()
        return self.github.web_tokens(USER)[-1]

    def auth_state_token(self) -> str:
        return str(self.hub.user(USER)["auth_state"]["access_token"])

    def save(self, api_token: str, name: str, text: str) -> None:
        """A save as JupyterLab makes it, through the hub's proxy: PUT /api/contents."""
        response = requests.put(
            f"{self.hub.url}/user/{USER}/api/contents/{name}",
            json={"type": "file", "format": "text", "content": text},
            headers={"Authorization": f"token {api_token}"},
            timeout=30,
        )
        assert response.status_code in (200, 201), response.text

    def direct(self, api_token: str, path: str) -> Any:
        """GET from the user's server on its own port (not through the proxy)."""
        response = requests.get(
            f"http://127.0.0.1:{self.port}/user/{USER}/{path}",
            headers={"Authorization": f"token {api_token}"},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()

    def synced(self, api_token: str) -> dict[str, Any]:
        """The status once the server says everything is on the remote (the remote may have
        a push a moment before the server has its answer)."""
        status: dict[str, Any] = until(
            lambda: (s := self.direct(api_token, "gitsync/status"))["state"] == "synced" and s,
            what="the synced state",
        )
        return status

    def on_remote(self, name: str) -> bytes | None:
        tip = ref_or_none(self.remote, f"refs/heads/{BRANCH}")
        return None if tip is None else show(self.remote, tip, name)


@pytest.fixture
def github() -> Iterator[GitHubStub]:
    stub = GitHubStub().start()
    stub.browser_login = USER
    yield stub
    stub.stop()


@pytest.fixture
def start_stack(
    tmp_path: Path,
    github: GitHubStub,
    git_server: GitHTTPServer,
    remote: str,
    clone_into: Callable[[Path], Path],
) -> Callable[..., Any]:
    """Start the whole stack; `env` goes to the user's server, `extra_config` to the hub."""

    # The remote takes the token of the latest login only: a new login revokes the old one.
    github.on_token.append(lambda login, token: setattr(git_server, "token", token))
    homes = tmp_path / "homes"
    clone_into(homes / USER / "workspace")
    config_dir = tmp_path / "jupyter-config"
    config_dir.mkdir()
    (config_dir / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"jupyter_gitsync": True}}})
    )

    @contextmanager
    def start(env: dict[str, str] | None = None, extra_config: str = "") -> Iterator[Stack]:
        port = free_port()
        environment = {
            "GITSYNC_REMOTE_URL": git_server.repo_url(remote),
            "GITSYNC_COMMIT_DELAY": "0.3",
            "GITSYNC_PUSH_INTERVAL": "0",
            "JUPYTER_CONFIG_DIR": str(config_dir),
            **(env or {}),
        }
        spawner = f"""
# -- the user servers: local processes, no system users --
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = "{homes}/{{username}}"
c.Spawner.notebook_dir = "{homes}/{{username}}/workspace"
c.Spawner.cmd = [{sys.executable!r}, "-m", "jupyterhub.singleuser"]
c.Spawner.args = {SERVER_ARGS!r}
c.Spawner.environment = {environment!r}
c.Spawner.port = {port}
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 60
"""
        with jupyterhub_process(tmp_path / "hub", github, spawner + extra_config) as hub:
            yield Stack(
                hub,
                github,
                git_server,
                git_server.repo_path(remote),
                homes / USER / "workspace",
                port,
            )

    return start


def _no_token_anywhere(stack: Stack, token: str, pid: int) -> None:
    """The token is in no environment of the user's server or its children, nor in the logs
    (the hub's log holds the user server's too)."""
    process = psutil.Process(pid)
    for child in [process, *process.children(recursive=True)]:
        try:
            assert token.encode() not in process_environment(child.pid), child.cmdline()
        except (FileNotFoundError, ProcessLookupError, psutil.NoSuchProcess):
            continue  # a short-lived git helper that is gone already
    assert token not in stack.hub.log_text()


def test_a_save_is_pushed_with_the_token_from_auth_state(start_stack: Callable[..., Any]) -> None:
    with start_stack() as stack:
        token = stack.log_in()
        assert stack.auth_state_token() == token and stack.git.token == token
        server = stack.hub.start_server(USER)
        api = stack.hub.new_token(USER)
        stack.save(api, "notes.md", "saved through the hub")
        until(
            lambda: stack.on_remote("notes.md") == b"saved through the hub",
            what="the save on the remote",
        )
        pushes = [r for r in stack.git.requests if "git-receive-pack" in r.path]
        assert pushes and all(r.status == 200 for r in pushes if r.method == "POST")
        assert stack.git.count(401, with_credentials=True) == 0  # the first token was good
        status = stack.synced(api)
        assert status["error"] is None
        auth = stack.direct(api, "gitsync/auth")
        assert auth["provider"] == "jupyterhub" and auth["signed_in"] is True
        assert token not in json.dumps([status, auth])
        _no_token_anywhere(stack, token, int(server["state"]["pid"]))


def test_a_new_login_rotates_the_token_and_pushes_continue(
    start_stack: Callable[..., Any],
) -> None:
    with start_stack() as stack:
        first = stack.log_in()
        server = stack.hub.start_server(USER)
        api = stack.hub.new_token(USER)
        stack.save(api, "a.txt", "before")
        until(lambda: stack.on_remote("a.txt") == b"before", what="the first push")

        second = stack.log_in()  # GitHub issues a new token; the remote drops the old one
        assert second != first and stack.git.token == second
        assert stack.auth_state_token() == second
        stack.save(api, "b.txt", "after the new login")
        until(
            lambda: stack.on_remote("b.txt") == b"after the new login",
            what="the push with the rotated token",
        )
        assert stack.git.count(401, with_credentials=True) >= 1  # the old token, refused once
        stack.synced(api)
        _no_token_anywhere(stack, first, int(server["state"]["pid"]))
        _no_token_anywhere(stack, second, int(server["state"]["pid"]))


def test_after_a_refusal_a_new_hub_login_pushes_without_user_action(
    start_stack: Callable[..., Any],
) -> None:
    with start_stack() as stack:
        first = stack.log_in()
        stack.hub.start_server(USER)
        api = stack.hub.new_token(USER)
        stack.save(api, "a.txt", "before")
        until(lambda: stack.on_remote("a.txt") == b"before", what="the first push")

        stack.github.revoke(first)  # the user revoked the app's token on GitHub
        stack.git.token = secrets.token_hex(20)
        stack.save(api, "b.txt", "saved while refused")
        refused = until(
            lambda: (s := stack.direct(api, "gitsync/status"))["state"] == "auth-required" and s,
            what="auth-required",
        )
        assert refused["unpushed_commits"] >= 1
        assert stack.on_remote("b.txt") is None

        logged_in = time.monotonic()
        stack.log_in()  # nothing else: no Sync now, no restart
        until(
            lambda: stack.on_remote("b.txt") == b"saved while refused",
            what="the waiting snapshot pushed after the new login",
        )
        assert time.monotonic() - logged_in < RECHECK_SECONDS + 10
        stack.synced(api)
        log = stack.hub.log_text()  # the user's server logs every request it answers
        assert "GET /user/ada/gitsync/status" in log and "/gitsync/sync" not in log


def test_with_the_scope_in_the_server_role_only_the_warning_names_it(
    start_stack: Callable[..., Any],
) -> None:
    """The recipe that was enough before JupyterHub 4: admin:auth_state!user in the server
    role only. The server's token does not get it (its user does not hold it); the server says
    which scope is missing and where, keeps the save locally, and the token stays unread."""
    only_server_role = """
c.JupyterHub.load_roles = [r for r in c.JupyterHub.load_roles if r["name"] != "user"]
"""
    with start_stack(extra_config=only_server_role) as stack:
        token = stack.log_in()
        server = stack.hub.start_server(USER)
        api = stack.hub.new_token(USER)
        stack.save(api, "kept.txt", "kept locally")
        status = until(
            lambda: (
                (s := stack.direct(api, "gitsync/status"))["state"] == "auth-required"
                and s["pending_count"] == 0
                and s
            ),
            what="auth-required, with the save snapshotted",
        )
        assert status["error"]["kind"] == "no-token"  # none reached the server: not a refusal
        assert "Sign in to GitHub" in status["error"]["message"]
        assert show(stack.workspace, f"refs/heads/{BRANCH}", "kept.txt") == b"kept locally"
        assert stack.on_remote("kept.txt") is None
        log = stack.hub.log_text()
        assert "lacks the scope admin:auth_state!user" in log
        assert "both the 'user' and the 'server' role" in log
        assert stack.git.count(with_credentials=True) == 0  # no token was ever sent
        _no_token_anywhere(stack, token, int(server["state"]["pid"]))


def test_stopping_the_server_from_the_hub_pushes_the_last_save(
    start_stack: Callable[..., Any],
) -> None:
    # A commit delay the stop comes well within: only the stop's own snapshot can save it.
    with start_stack(env={"GITSYNC_COMMIT_DELAY": "5"}) as stack:
        stack.log_in()
        server = stack.hub.start_server(USER)
        pid = int(server["state"]["pid"])
        api = stack.hub.new_token(USER)
        stack.synced(api)  # started up
        stack.save(api, "last.txt", "saved right before the stop")
        stopped = time.monotonic()
        stack.hub.stop_server(USER)  # the local spawner sends SIGINT
        until(lambda: not psutil.pid_exists(pid), 30, what="the server process to end")
        assert time.monotonic() - stopped < 10  # ended by SIGINT, before the spawner's SIGTERM
        until(
            lambda: stack.hub.server(USER) is None,
            what="the hub to see it stopped",
        )
        assert stack.on_remote("last.txt") == b"saved right before the stop"
        log = stack.hub.log_text()
        assert "Traceback" not in log


CULL_TIMEOUT_SECONDS = 6
CULL_EVERY_SECONDS = 1


class BackgroundSync:
    """While the user is away: a process writes files into the workspace (the extension
    snapshots and pushes them), the badge's event stream stays open and something keeps asking
    for the status, all straight to the user's server."""

    def __init__(self, stack: Stack, api_token: str) -> None:
        self.stack, self.api_token = stack, api_token
        self.stop = threading.Event()
        self.written: list[tuple[float, str]] = []  # (when, file name)
        self.statuses = 0
        self.events = 0
        self._threads = [
            threading.Thread(target=self._write, daemon=True),
            threading.Thread(target=self._ask, daemon=True),
            threading.Thread(target=self._listen, daemon=True),
        ]

    def __enter__(self) -> BackgroundSync:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(10)

    def _write(self) -> None:
        n = 0
        while not self.stop.wait(0.7):
            n += 1
            name = f"output-{n}.txt"
            (self.stack.workspace / name).write_text(f"step {n}\n")
            self.written.append((time.monotonic(), name))

    def _ask(self) -> None:
        while not self.stop.wait(0.2):
            try:
                self.stack.direct(self.api_token, "gitsync/status")
                self.statuses += 1
            except requests.RequestException:
                return  # the server is gone

    def _listen(self) -> None:
        url = f"ws://127.0.0.1:{self.stack.port}/user/{USER}/api/events/subscribe"
        try:
            ws = websocket.create_connection(
                url, header=[f"Authorization: token {self.api_token}"], timeout=1
            )
        except (OSError, websocket.WebSocketException):
            return
        try:
            while not self.stop.is_set():
                try:
                    if "gitsync" in ws.recv():
                        self.events += 1
                except websocket.WebSocketTimeoutException:
                    continue
                except (OSError, websocket.WebSocketException):
                    return
        finally:
            ws.close()


def test_the_idle_culler_stops_a_server_that_only_syncs_on_time_and_nothing_is_lost(
    start_stack: Callable[..., Any],
) -> None:
    culler = f"""
# -- jupyterhub-idle-culler as a hub service, with a short timeout --
c.JupyterHub.services.append({{
    "name": "idle-culler",
    "command": [{sys.executable!r}, "-m", "jupyterhub_idle_culler",
                "--timeout={CULL_TIMEOUT_SECONDS}", "--cull-every={CULL_EVERY_SECONDS}"],
}})
c.JupyterHub.load_roles.append({{
    "name": "idle-culler",
    "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    "services": ["idle-culler"],
}})
"""
    # The server tells the hub its last activity every second (JupyterHub's default: 5 min).
    with start_stack(env={"JUPYTERHUB_ACTIVITY_INTERVAL": "1"}, extra_config=culler) as stack:
        stack.log_in()
        server = stack.hub.start_server(USER)
        pid = int(server["state"]["pid"])
        api = stack.hub.new_token(USER)
        saved = time.monotonic()
        stack.save(api, "notes.md", "the user's last action")  # activity, through the proxy
        with BackgroundSync(stack, api) as background:
            culled_at = until(
                lambda: (
                    ((s := stack.hub.server(USER)) is None or s.get("pending") == "stop")
                    and time.monotonic()
                ),
                CULL_TIMEOUT_SECONDS + 20,
                what="the culler to stop the server",
            )
            tips_while_idle = _pushed_files(stack.remote)
        waited = culled_at - saved
        assert CULL_TIMEOUT_SECONDS <= waited <= CULL_TIMEOUT_SECONDS + CULL_EVERY_SECONDS + 6, (
            waited
        )
        # The extension was syncing and telling the whole time.
        assert background.statuses >= 10 and background.events >= 1
        assert len(tips_while_idle & {name for _, name in background.written}) >= 2
        # Nothing written before the cull is lost. The hub marks the server as stopping and
        # then sends SIGINT, so the stop began at most a poll (and a slow answer) before the
        # test saw it; files written after the server's last scan stay in the workspace.
        until(lambda: not psutil.pid_exists(pid), 30, what="the server process to end")
        until(
            lambda: stack.hub.server(USER) is None,
            what="the hub to see it stopped",
        )
        before = [name for at, name in background.written if at < culled_at - 2]
        assert before and all(stack.on_remote(name) is not None for name in before), before
        assert "Culling server ada" in stack.hub.log_text()


def _pushed_files(remote: Path) -> set[str]:
    """Every file name on the sync branch of the remote."""
    if ref_or_none(remote, f"refs/heads/{BRANCH}") is None:
        return set()
    out = git(remote, "ls-tree", "--name-only", f"refs/heads/{BRANCH}")
    return set(out.splitlines())


def test_the_readme_recipes_agree(tmp_path: Path) -> None:
    """The zero-to-jupyterhub values.yaml excerpt sets what the python block sets."""
    from ruamel.yaml import YAML
    from traitlets.config import Config

    from tests.jupyterhub_process import README, readme_hub_config

    config = Config()
    env = {"JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32)}
    code = readme_hub_config()
    namespace = {"get_config": lambda: config, "c": config}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        exec(compile(code, "README.md", "exec"), namespace)
    text = README.read_text()
    yaml_block = text[text.index("```yaml\nhub:") + len("```yaml\n") :]
    values = YAML(typ="safe").load(yaml_block[: yaml_block.index("```")])
    hub = values["hub"]
    assert (
        hub["config"]["JupyterHub"]["authenticator_class"] == config.JupyterHub.authenticator_class
    )
    assert set(hub["config"]["GitHubOAuthenticator"]["scope"]) == set(
        config.GitHubOAuthenticator.scope
    )
    assert hub["config"]["Authenticator"]["enable_auth_state"] is True
    assert config.Authenticator.enable_auth_state is True
    roles = {r["name"]: sorted(r["scopes"]) for r in config.JupyterHub.load_roles}
    assert {name: sorted(r["scopes"]) for name, r in hub["loadRoles"].items()} == roles
    for role in ("user", "server"):
        assert "admin:auth_state!user" in roles[role]
