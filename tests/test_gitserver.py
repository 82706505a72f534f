"""Tests for the smart-HTTP git test server, driven by the real git CLI and by pygit2.

The server is the fixture every remote-facing test of jupyter-gitsync relies on, so it is proved
here against both clients: auth, large (chunked) pushes, injected failures, restarts, token
rotation, and the HTTP details (401 closes the connection, keep-alive, chunked + gzip bodies).
"""

from __future__ import annotations

import base64
import gzip
import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pygit2
import pytest

from tests.gitserver import GitHTTPServer, RequestRecord

BIG = 20 * 1024 * 1024
GITSERVER_SCRIPT = Path(__file__).with_name("gitserver.py")


# -- helpers ------------------------------------------------------------------------------------


class GitCLI:
    """Runs the git CLI in an isolated environment; the token travels only via environment."""

    ASKPASS = """#!/bin/sh
case "$1" in
  Username*) printf '%s\\n' x-access-token ;;
  *) printf '%s\\n' "$GITSYNC_TEST_TOKEN" ;;
esac
"""

    def __init__(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        self.askpass = home / "askpass.sh"  # holds no secret: it echoes an env variable
        self.askpass.write_text(self.ASKPASS)
        self.askpass.chmod(0o700)

    def env(self, token: str | None, *, preemptive: bool) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": str(self.home),
            "LANG": "C",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": "Test",
            "GIT_AUTHOR_EMAIL": "test@example.invalid",
            "GIT_COMMITTER_NAME": "Test",
            "GIT_COMMITTER_EMAIL": "test@example.invalid",
        }
        if token is not None and preemptive:
            # Config through the environment: neither on disk nor in argv (ps).
            basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
            env |= {
                "GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": "http.extraHeader",
                "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
            }
        elif token is not None:
            env |= {"GIT_ASKPASS": str(self.askpass), "GITSYNC_TEST_TOKEN": token}
        return env

    def __call__(
        self,
        *args: str,
        cwd: Path | None = None,
        token: str | None = None,
        preemptive: bool = False,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["git", "-c", "credential.helper=", *args],
            cwd=cwd,
            env=self.env(token, preemptive=preemptive),
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed:\n{proc.stderr}")
        return proc


class TokenCallbacks(pygit2.RemoteCallbacks):
    """Offers the token once; a second request for credentials means it was rejected."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.calls = 0

    def credentials(
        self, url: str, username_from_url: str | None, allowed_types: pygit2.enums.CredentialType
    ) -> pygit2.UserPass:
        self.calls += 1
        if self.calls > 1:
            raise PermissionError("token rejected")
        return pygit2.UserPass("x-access-token", self.token)


def server_head(server: GitHTTPServer, name: str, ref: str = "refs/heads/main") -> str:
    """Commit id of ``ref`` in the server-side bare repository."""
    repo = pygit2.Repository(str(server.repo_path(name)))
    return str(repo.references[ref].target)


def pygit2_commit(repo: pygit2.Repository, files: dict[str, bytes], message: str) -> str:
    """Commit ``files`` on top of HEAD in a non-bare pygit2 repository."""
    workdir = Path(repo.workdir)
    for name, content in files.items():
        (workdir / name).write_bytes(content)
        repo.index.add(name)
    repo.index.write()
    tree = repo.index.write_tree()
    sig = pygit2.Signature("Test", "test@example.invalid")
    parents = [] if repo.head_is_unborn else [repo.head.target]
    return str(repo.create_commit("HEAD", sig, sig, message, tree, parents))


def pygit2_push(repo: pygit2.Repository, token: str) -> TokenCallbacks:
    """Push main to origin with the token, failing on any rejected ref."""
    rejected: list[tuple[str, str]] = []
    cb = TokenCallbacks(token)
    cb.push_update_reference = lambda ref, msg: rejected.append((ref, msg))  # type: ignore[method-assign]
    repo.remotes["origin"].push(["refs/heads/main:refs/heads/main"], callbacks=cb)
    assert rejected == [] or all(msg is None for _, msg in rejected), rejected
    return cb


def post_ls_refs(
    server: GitHTTPServer, token: str, *, chunked: bool, gzipped: bool
) -> tuple[int, bytes]:
    """Protocol-v2 ``ls-refs`` over a hand-built POST (optionally chunked and/or gzipped)."""
    body = b"0014command=ls-refs\n0000"
    headers = {
        "Authorization": "Basic " + base64.b64encode(f"u:{token}".encode()).decode(),
        "Content-Type": "application/x-git-upload-pack-request",
        "Accept": "application/x-git-upload-pack-result",
        "Git-Protocol": "version=2",
    }
    if gzipped:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        if chunked:
            headers["Transfer-Encoding"] = "chunked"
            parts = [body[i : i + 7] for i in range(0, len(body), 7)]
            conn.request(
                "POST", "/r.git/git-upload-pack", iter(parts), headers, encode_chunked=True
            )
        else:
            conn.request("POST", "/r.git/git-upload-pack", body, headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def token() -> str:
    return secrets.token_hex(20)


@pytest.fixture
def server(tmp_path: Path, token: str) -> Iterator[GitHTTPServer]:
    srv = GitHTTPServer(tmp_path / "remote", token)
    srv.start()
    srv.create_repo("r", {"README.md": b"# hello\n", "docs/note.txt": b"nested\n"})
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def git(tmp_path: Path) -> GitCLI:
    return GitCLI(tmp_path / "home")


# -- git CLI ------------------------------------------------------------------------------------


@pytest.mark.parametrize("preemptive", [False, True], ids=["askpass", "extraheader"])
def test_git_cli_clone_and_push(
    server: GitHTTPServer, git: GitCLI, token: str, tmp_path: Path, preemptive: bool
) -> None:
    clone = tmp_path / "clone"
    git("clone", server.repo_url("r"), str(clone), token=token, preemptive=preemptive)
    assert (clone / "README.md").read_bytes() == b"# hello\n"
    assert (clone / "docs" / "note.txt").read_bytes() == b"nested\n"
    assert git("symbolic-ref", "HEAD", cwd=clone).stdout.strip() == "refs/heads/main"

    (clone / "new.txt").write_text("pushed by git\n")
    git("add", "new.txt", cwd=clone)
    git("commit", "-qm", "add new.txt", cwd=clone)
    git("push", "origin", "main", cwd=clone, token=token, preemptive=preemptive)

    local = git("rev-parse", "HEAD", cwd=clone).stdout.strip()
    assert server_head(server, "r") == local
    statuses = {r.status for r in server.requests}
    assert statuses <= {200, 401}
    # A 401 only ever answers the anonymous probe, never the right token.
    assert server.count(401, with_credentials=True) == 0
    assert server.count(401) == (0 if preemptive else server.count(401, with_credentials=False))
    assert any(r.method == "POST" and r.path == "/r.git/git-receive-pack" for r in server.requests)


def test_git_cli_wrong_token_refused(
    server: GitHTTPServer, git: GitCLI, token: str, tmp_path: Path
) -> None:
    wrong = secrets.token_hex(20)
    proc = git("clone", server.repo_url("r"), str(tmp_path / "c"), token=wrong, check=False)
    assert proc.returncode != 0
    assert "Authentication failed" in proc.stderr
    assert server.count(401, with_credentials=True) == 1
    assert server.count(200) == 0
    assert token not in proc.stderr and wrong not in proc.stderr


def test_git_cli_large_chunked_push(
    server: GitHTTPServer, git: GitCLI, token: str, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    git("clone", server.repo_url("r"), str(clone), token=token)
    (clone / "big.bin").write_bytes(os.urandom(BIG))
    git("add", "big.bin", cwd=clone)
    git("commit", "-qm", "big", cwd=clone)
    server.clear_requests()
    git("-c", "http.postBuffer=65536", "push", "origin", "main", cwd=clone, token=token)

    assert server_head(server, "r") == git("rev-parse", "HEAD", cwd=clone).stdout.strip()
    pushes = [r for r in server.requests if r.path == "/r.git/git-receive-pack" and r.status == 200]
    assert any(r.chunked and r.body_size > BIG for r in pushes), server.requests


def test_git_cli_gzip_request_body(
    server: GitHTTPServer, git: GitCLI, token: str, tmp_path: Path
) -> None:
    """Many local-only commits make git gzip its (>1 KiB) upload-pack negotiation request."""
    a, b = tmp_path / "a", tmp_path / "b"
    git("clone", server.repo_url("r"), str(a), token=token)
    git("clone", server.repo_url("r"), str(b), token=token)
    for i in range(60):
        git("commit", "-q", "--allow-empty", "-m", f"local {i}", cwd=a)
    # Without the tracking ref the negotiator must walk (and send) many "have" lines.
    git("update-ref", "-d", "refs/remotes/origin/main", cwd=a)
    git("commit", "-q", "--allow-empty", "-m", "remote", cwd=b)
    git("push", "-q", "origin", "main", cwd=b, token=token)
    server.clear_requests()

    git("fetch", "origin", cwd=a, token=token)

    assert git("rev-parse", "origin/main", cwd=a).stdout.strip() == server_head(server, "r")
    gz = [r for r in server.requests if r.content_encoding == "gzip"]
    assert gz and all(r.status == 200 for r in gz), server.requests


def test_concurrent_requests(server: GitHTTPServer, git: GitCLI, token: str) -> None:
    results: list[int] = []
    lock = threading.Lock()

    def ls_remote() -> None:
        rc = git("ls-remote", server.repo_url("r"), token=token, check=False).returncode
        with lock:
            results.append(rc)

    threads = [threading.Thread(target=ls_remote) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [0] * 8


# -- pygit2 -------------------------------------------------------------------------------------


def test_pygit2_clone_and_push(server: GitHTTPServer, token: str, tmp_path: Path) -> None:
    repo = pygit2.clone_repository(
        server.repo_url("r"), str(tmp_path / "clone"), callbacks=TokenCallbacks(token)
    )
    assert (Path(repo.workdir) / "README.md").read_bytes() == b"# hello\n"
    commit = pygit2_commit(repo, {"new.txt": b"pushed by pygit2\n"}, "add new.txt")
    pygit2_push(repo, token)
    assert server_head(server, "r") == commit
    assert server.count(401, with_credentials=True) == 0


def test_pygit2_wrong_token_tried_once(server: GitHTTPServer, tmp_path: Path) -> None:
    cb = TokenCallbacks(secrets.token_hex(20))
    with pytest.raises((pygit2.GitError, PermissionError)):
        pygit2.clone_repository(server.repo_url("r"), str(tmp_path / "clone"), callbacks=cb)
    assert cb.calls == 2  # offered once, asked again after the 401, then gave up
    assert server.count(401, with_credentials=True) == 1
    assert server.count(200) == 0


def test_pygit2_large_chunked_push(server: GitHTTPServer, token: str, tmp_path: Path) -> None:
    repo = pygit2.clone_repository(
        server.repo_url("r"), str(tmp_path / "clone"), callbacks=TokenCallbacks(token)
    )
    commit = pygit2_commit(repo, {"big.bin": os.urandom(BIG)}, "big")
    server.clear_requests()
    pygit2_push(repo, token)
    assert server_head(server, "r") == commit
    pushes = [r for r in server.requests if r.path == "/r.git/git-receive-pack" and r.status == 200]
    assert any(r.chunked and r.body_size > BIG for r in pushes), server.requests


# -- test controls ------------------------------------------------------------------------------


def test_fail_status_then_recover(
    server: GitHTTPServer, git: GitCLI, token: str, tmp_path: Path
) -> None:
    repo = pygit2.clone_repository(
        server.repo_url("r"), str(tmp_path / "clone"), callbacks=TokenCallbacks(token)
    )
    server.fail_status = 500
    proc = git("ls-remote", server.repo_url("r"), token=token, check=False)
    assert proc.returncode != 0 and "500" in proc.stderr
    with pytest.raises(pygit2.GitError):
        repo.remotes["origin"].fetch(callbacks=TokenCallbacks(token))
    assert server.count(500) >= 2

    server.fail_status = None
    git("ls-remote", server.repo_url("r"), token=token)
    repo.remotes["origin"].fetch(callbacks=TokenCallbacks(token))


def test_stop_then_start_same_port(
    server: GitHTTPServer, git: GitCLI, token: str, tmp_path: Path
) -> None:
    repo = pygit2.clone_repository(
        server.repo_url("r"), str(tmp_path / "clone"), callbacks=TokenCallbacks(token)
    )
    port, url = server.port, server.repo_url("r")

    server.stop()
    assert not server.running
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    assert git("ls-remote", url, token=token, check=False).returncode != 0
    with pytest.raises(pygit2.GitError):
        repo.remotes["origin"].fetch(callbacks=TokenCallbacks(token))

    server.start()
    assert server.port == port and server.repo_url("r") == url
    git("ls-remote", url, token=token)
    commit = pygit2_commit(repo, {"after.txt": b"back\n"}, "after restart")
    pygit2_push(repo, token)
    assert server_head(server, "r") == commit

    server.pause()
    assert git("ls-remote", url, token=token, check=False).returncode != 0
    server.resume()
    git("ls-remote", url, token=token)


def test_stop_aborts_keepalive_connections(server: GitHTTPServer, token: str) -> None:
    auth = {"Authorization": "Basic " + base64.b64encode(f"u:{token}".encode()).decode()}
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("GET", "/r.git/info/refs?service=git-upload-pack", headers=auth)
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 200 and not resp.will_close
    server.stop()
    conn.auto_open = False  # do not silently reconnect
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        conn.request("GET", "/r.git/info/refs?service=git-upload-pack", headers=auth)
        conn.getresponse()
    conn.close()


def test_token_change_is_honoured(
    server: GitHTTPServer, git: GitCLI, token: str, tmp_path: Path
) -> None:
    repo = pygit2.clone_repository(
        server.repo_url("r"), str(tmp_path / "clone"), callbacks=TokenCallbacks(token)
    )
    new = secrets.token_hex(20)
    server.token = new
    server.clear_requests()

    assert git("ls-remote", server.repo_url("r"), token=token, check=False).returncode != 0
    with pytest.raises((pygit2.GitError, PermissionError)):
        repo.remotes["origin"].fetch(callbacks=TokenCallbacks(token))
    assert server.count(401, with_credentials=True) == 2  # one per client, each tried once
    assert server.count(200) == 0

    git("ls-remote", server.repo_url("r"), token=new)
    commit = pygit2_commit(repo, {"rotated.txt": b"new token\n"}, "rotated")
    pygit2_push(repo, new)
    assert server_head(server, "r") == commit


def test_no_auth_when_token_is_none(tmp_path: Path, git: GitCLI) -> None:
    with GitHTTPServer(tmp_path / "open", None) as srv:
        srv.create_repo("pub", {"a.txt": b"a\n"}, branch="trunk")
        git("clone", srv.repo_url("pub"), str(tmp_path / "c"))
        assert (tmp_path / "c" / "a.txt").read_bytes() == b"a\n"
        assert git("symbolic-ref", "HEAD", cwd=tmp_path / "c").stdout.strip() == "refs/heads/trunk"
        assert srv.count(401) == 0


def test_delay_seconds(server: GitHTTPServer, token: str) -> None:
    server.delay_seconds = 0.3
    start = time.monotonic()
    status, _ = post_ls_refs(server, token, chunked=False, gzipped=False)
    assert status == 200
    assert time.monotonic() - start >= 0.3  # lower bound only: the delay was applied
    server.delay_seconds = 0


def test_create_repo_is_pushable_and_empty_without_files(server: GitHTTPServer) -> None:
    path = server.create_repo("empty.git")
    assert path == server.repo_path("empty") and path.name == "empty.git"
    repo = pygit2.Repository(str(path))
    assert repo.is_bare and repo.head_is_unborn
    assert repo.config.get_bool("http.receivepack")
    assert server.repo_url("empty") == f"{server.url}/empty.git"
    with pytest.raises(ValueError):
        server.create_repo("../escape")


def test_non_loopback_host_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        GitHTTPServer(tmp_path, "t", host="0.0.0.0")


# -- HTTP details -------------------------------------------------------------------------------


def test_401_closes_connection(server: GitHTTPServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"GET /r.git/info/refs?service=git-upload-pack HTTP/1.1\r\n"
            b"Host: 127.0.0.1\r\nAuthorization: Basic eDp3cm9uZw==\r\n\r\n"
        )
        data = b""
        while chunk := sock.recv(65536):  # returns b"" only once the server closed
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode().lower()
    assert head.startswith("http/1.1 401")
    assert 'www-authenticate: basic realm="gitsync-test"' in head
    assert "connection: close" in head
    assert server.requests[-1] == RequestRecord(
        "GET", "/r.git/info/refs?service=git-upload-pack", 401, "x", False, 0, None
    )


def test_keepalive_when_authorized(server: GitHTTPServer, token: str) -> None:
    auth = {"Authorization": "Basic " + base64.b64encode(f"u:{token}".encode()).decode()}
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("GET", "/r.git/info/refs?service=git-upload-pack", headers=auth)
        first = conn.getresponse()
        assert first.status == 200 and b"git-upload-pack" in first.read()
        assert not first.will_close
        sock = conn.sock
        conn.request("GET", "/r.git/info/refs?service=git-receive-pack", headers=auth)
        second = conn.getresponse()
        assert second.status == 200 and b"git-receive-pack" in second.read()
        assert conn.sock is sock
    finally:
        conn.close()


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("gzipped", [False, True])
def test_post_body_framing(server: GitHTTPServer, token: str, chunked: bool, gzipped: bool) -> None:
    status, body = post_ls_refs(server, token, chunked=chunked, gzipped=gzipped)
    assert status == 200
    assert server_head(server, "r").encode() + b" refs/heads/main" in body
    rec = server.requests[-1]
    assert (rec.chunked, rec.content_encoding) == (chunked, "gzip" if gzipped else None)


def test_token_never_logged(
    server: GitHTTPServer, git: GitCLI, token: str, capfd: pytest.CaptureFixture[str]
) -> None:
    server.verbose = True
    git("ls-remote", server.repo_url("r"), token=token)
    git("ls-remote", server.repo_url("r"), token=token + "x", check=False)
    out, err = capfd.readouterr()
    assert "/r.git/info/refs" in err  # verbose logging happened
    assert token not in out + err
    assert all(token not in repr(r) for r in server.requests)


# -- command line (make demo) -------------------------------------------------------------------


def test_cli_demo_server(tmp_path: Path, git: GitCLI, token: str) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    proc = subprocess.Popen(
        [
            *(sys.executable, str(GITSERVER_SCRIPT), "--root", str(tmp_path / "srv")),
            *("--token-file", str(token_file), "--create", "demo"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        ready = proc.stdout.readline().split()
        assert ready[0] == "READY" and ready[1].startswith("http://127.0.0.1:")
        url = ready[1] + "/demo.git"

        git("clone", url, str(tmp_path / "c"), token=token)
        assert (tmp_path / "c" / "README.md").read_text() == "# demo\n"

        # SIGHUP re-reads the token file: the demo's way to rotate/expire the token.
        new = secrets.token_hex(20)
        token_file.write_text(new)
        proc.send_signal(signal.SIGHUP)
        assert "token reloaded" in proc.stderr.readline()
        assert git("ls-remote", url, token=token, check=False).returncode != 0
        git("ls-remote", url, token=new)

        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0
        assert token not in out + err and new not in out + err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
