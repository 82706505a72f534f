"""The token's reach, against a real Jupyter server process: it is in no kernel's or
terminal's environment, and it goes to the remote's origin only."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest

from jupyter_gitsync.auth import Credentials
from jupyter_gitsync.engine import EngineConfig, SyncEngine
from jupyter_gitsync.errors import GitSyncError
from jupyter_gitsync.state import State
from tests.gitserver import GitHTTPServer
from tests.helpers import LocalSession, MutableToken, async_wait_until, wait_until
from tests.test_server_process import BRANCH, jupyter_server


def environment_of(pid: int) -> bytes:
    return Path(f"/proc/{pid}/environ").read_bytes()


def _living_children(parent: psutil.Process) -> dict[int, str]:
    """pid -> command line of the server's descendants that are alive (the server also runs
    short-lived processes, such as git, which may be gone or a zombie by the time we look)."""
    found: dict[int, str] = {}
    for child in parent.children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                found[child.pid] = " ".join(child.cmdline())
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


def _kernel_and_terminal(parent: psutil.Process) -> dict[int, str] | None:
    """The living descendants, once a kernel and a terminal shell are among them."""
    found = _living_children(parent)
    return found if _kernel_and_terminal_in(list(found.values())) else None


def _kernel_and_terminal_in(commands: list[str]) -> bool:
    """A kernel, and a shell (the terminal runs `$SHELL -l`, or `sh -l` when SHELL is unset)."""
    kernel = any("ipykernel" in c for c in commands)
    shell = any(c.split(" ")[0].lstrip("-").endswith("sh") for c in commands if c)
    return kernel and shell


def test_kernels_and_terminals_never_inherit_the_token(
    workspace: Path, tmp_path: Path, git_server: GitHTTPServer, remote: str, token: str
) -> None:
    env = {
        "GITSYNC_REMOTE_URL": git_server.repo_url(remote),
        "GITSYNC_BRANCH": BRANCH,
        "GITSYNC_TOKEN": token,
        "GITHUB_TOKEN": token,
    }
    with jupyter_server(workspace, tmp_path, env) as server:
        wait_until(lambda: server.status()["state"] == "synced", what="start-up")
        server.save("a.txt", "pushed with the token")
        wait_until(lambda: server.status()["head"] == server.status()["remote_head"])
        kernel = server.request("POST", "api/kernels", {"name": "python3"})
        terminal = server.request("POST", "api/terminals", {})
        parent = psutil.Process(server.process.pid)
        seen = wait_until(
            lambda: _kernel_and_terminal(parent), what="a kernel and a terminal process"
        )
        read: list[str] = []
        for pid, command in seen.items():
            try:
                environment = environment_of(pid)
            except (FileNotFoundError, ProcessLookupError):
                continue  # a short-lived helper that has exited meanwhile
            assert token.encode() not in environment, command
            read.append(command)
        assert _kernel_and_terminal_in(read), read  # the two that matter were read
        assert token.encode() not in environment_of(server.process.pid)
        server.request("DELETE", f"api/kernels/{kernel['id']}")
        server.request("DELETE", f"api/terminals/{terminal['name']}")


class _Recorder(BaseHTTPRequestHandler):
    """Another origin: records every Authorization header it is sent, answers 401."""

    seen: list[str | None] = []

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization"))
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="elsewhere"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Redirector(BaseHTTPRequestHandler):
    """The configured remote, answering every request with a redirect to `target`."""

    target = ""

    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", self.target + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(params=["127.0.0.2", "127.0.0.1"], ids=["another-host", "another-port"])
def servers(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[str | None]]]:
    """A redirecting remote on 127.0.0.1 and the origin it sends clients to: another host of
    the loopback range, or another port of the same host."""
    elsewhere = ThreadingHTTPServer((request.param, 0), _Recorder)
    _Recorder.seen = []
    _Redirector.target = f"http://{request.param}:{elsewhere.server_address[1]}"
    remote = ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    for server in (elsewhere, remote):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{remote.server_address[1]}/project.git", _Recorder.seen
    for server in (elsewhere, remote):
        server.shutdown()
        server.server_close()


def test_a_redirect_to_another_origin_never_receives_the_token(
    workspace: Path, token: str, servers: tuple[str, list[str | None]]
) -> None:
    """libgit2 refuses to follow a redirect to another host (we switch its redirects off); to
    another port of the same host it follows, and the credentials callback refuses to give
    the token to any address but the remote's own."""
    url, seen = servers
    session = LocalSession(workspace, BRANCH)
    (workspace / "a.txt").write_text("a")
    session.snapshot(None)
    for attempt in (
        lambda: session.transport.list_remote(url, lambda: token),
        lambda: session.transport.fetch(url, lambda: token, ["+refs/heads/x:refs/gitsync/x"]),
        lambda: session.push(url, lambda: token),
    ):
        with pytest.raises(GitSyncError) as caught:
            attempt()
        assert token not in str(caught.value)
        assert "only ever sent to the remote's own address" in caught.value.message
    assert all(header is None for header in seen), seen  # never a credential
    if _Redirector.target.startswith("http://127.0.0.2"):
        assert seen == []  # another host is not even asked
    session.close()


async def test_a_passing_403_clears_by_itself_and_fetch_head_stays_the_users(
    workspace: Path, git_server: GitHTTPServer, remote: str, token: str
) -> None:
    """A proxy or a rate limit answers 403 for a while: the state says so, the token is
    checked again after the re-check interval (not only after a restart or a new token), and
    the state clears by itself. The engine's fetches never write the user's FETCH_HEAD."""
    fetch_head = workspace / ".git" / "FETCH_HEAD"
    fetch_head.write_text("0123456789012345678901234567890123456789\t\tbranch 'x' of mine\n")
    before = fetch_head.read_bytes()
    config = EngineConfig(
        workspace=workspace,
        branch=BRANCH,
        remote_url=git_server.repo_url(remote),
        commit_delay_seconds=0.2,
        push_interval_seconds=0.0,
        retry_initial_seconds=0.2,
        retry_max_seconds=1.0,
        auth_recheck_seconds=0.5,
    )
    engine = SyncEngine(config, Credentials([MutableToken(token)]))
    await engine.start()
    try:
        await async_wait_until(lambda: engine.status.state == State.SYNCED, what="start-up")
        git_server.fail_status = 403
        (workspace / "a.txt").write_text("a\n")
        refused = await async_wait_until(
            lambda: engine.status_json() if engine.status.state == State.AUTH_REQUIRED else None,
            what="auth-required",
        )
        assert "403" in refused["error"]["message"]
        git_server.fail_status = None  # the proxy lets requests through again
        await async_wait_until(
            lambda: engine.status.state == State.SYNCED and engine.status.unpushed_commits == 0,
            what="synced again without a new token",
        )
        await engine.sync_now()  # fetches the remote once more
    finally:
        await engine.stop(5)
    assert fetch_head.read_bytes() == before
