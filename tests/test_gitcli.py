"""Pushing through the git command line (`gitcli`), and `Transport.push` choosing it for a large
first push: against the real smart-HTTP server, with the token checked in every git process."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import pygit2
import pytest

from jupyter_gitsync import gitcli, transport
from jupyter_gitsync.errors import (
    AuthRequired,
    DeadlineExceeded,
    GitSyncError,
    PushRejected,
    RemoteNotFound,
    RemoteUnavailable,
    TokenMissing,
)
from jupyter_gitsync.watch import Watch
from tests.gitserver import GitHTTPServer
from tests.helpers import LocalSession, git, ref_or_none, wait_until

BRANCH = "gitsync/grace"
REF = f"refs/heads/{BRANCH}"
BOUND_SECONDS = 120.0  # the tests' own bound on a push; the stall limits under test are far less


@pytest.fixture
def session(workspace: Path) -> Iterator[LocalSession]:
    """A workspace with one snapshot on BRANCH, never pushed."""
    repo = LocalSession(workspace, BRANCH)
    (workspace / "a.txt").write_text("a")
    (workspace / "data").mkdir()
    (workspace / "data" / "b.csv").write_bytes(b"x,y\n1,2\n")
    assert repo.snapshot(None) is not None
    yield repo
    repo.close()


def _head(session: LocalSession) -> str:
    head = session.heads().head
    assert head is not None
    return str(head)


def _push(session: LocalSession, url: str, token: str | None, **kwargs: Any) -> list[str]:
    settings: dict[str, Any] = {"stall_seconds": 30.0, "deadline_seconds": BOUND_SECONDS}
    settings.update(kwargs)
    return gitcli.push(session.repo.gitdir, url, lambda: token, {REF: _head(session)}, **settings)


def _git_processes() -> list[psutil.Process]:
    """This process's descendants that run git (or a shell git started)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "git" in " ".join(child.cmdline()) or child.name() in ("git", "sh"):
                found.append(child)
        except psutil.Error:
            continue
    return found


def _pushing_in_background(fn: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(fn())
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_a_push_lands_the_commit(
    session: LocalSession, git_server: GitHTTPServer, remote: str, token: str
) -> None:
    landed = _push(session, git_server.repo_url(remote), token)
    assert landed == [REF]
    bare = git_server.repo_path(remote)
    assert ref_or_none(bare, REF) == _head(session)
    git(bare, "fsck", "--strict", "--no-dangling")
    assert git(bare, "show", f"{REF}:data/b.csv") == "x,y\n1,2"
    # again: the remote holds it already, which counts as landed
    assert _push(session, git_server.repo_url(remote), token) == [REF]


def test_a_wrong_token_is_refused_and_never_shown(
    session: LocalSession, git_server: GitHTTPServer, remote: str, token: str
) -> None:
    wrong = token[::-1]
    git_server.clear_requests()
    with pytest.raises(AuthRequired) as caught:
        _push(session, git_server.repo_url(remote), wrong)
    assert wrong not in str(caught.value) and wrong not in caught.value.message
    assert "refused the token" in caught.value.message
    assert git_server.count(401, with_credentials=True) == 1  # asked once, not retried
    assert ref_or_none(git_server.repo_path(remote), REF) is None


def test_no_token_asks_for_one(
    session: LocalSession, git_server: GitHTTPServer, remote: str
) -> None:
    with pytest.raises(TokenMissing):
        _push(session, git_server.repo_url(remote), None)


def test_an_unknown_repository_and_a_remote_that_is_down(
    session: LocalSession, git_server: GitHTTPServer, token: str
) -> None:
    with pytest.raises(RemoteNotFound):
        _push(session, git_server.repo_url("missing"), token)
    port = git_server.port
    git_server.stop()
    with pytest.raises(RemoteUnavailable) as caught:
        _push(session, f"http://127.0.0.1:{port}/project.git", token)
    assert not isinstance(caught.value, DeadlineExceeded)


def test_a_remote_that_moved_on_is_never_overwritten(
    tmp_path: Path,
    session: LocalSession,
    clone_into: Callable[[Path], Path],
    git_server: GitHTTPServer,
    remote: str,
    token: str,
) -> None:
    url = git_server.repo_url(remote)
    other = LocalSession(clone_into(tmp_path / "other"), BRANCH)
    (other.workspace / "c.txt").write_text("elsewhere")
    assert other.snapshot(None) is not None
    other.push(url, lambda: token)
    theirs = ref_or_none(git_server.repo_path(remote), REF)
    assert theirs is not None and theirs != _head(session)

    with pytest.raises(PushRejected) as caught:
        _push(session, url, token)
    assert "refused" in caught.value.message
    assert ref_or_none(git_server.repo_path(remote), REF) == theirs  # never forced
    other.close()


def test_a_hung_server_ends_at_the_stall_limit(
    session: LocalSession, git_server: GitHTTPServer, remote: str, token: str
) -> None:
    git_server.delay_seconds = 3600
    with pytest.raises(RemoteUnavailable) as caught:
        _push(session, git_server.repo_url(remote), token, stall_seconds=1.0)
    assert "stopped answering" in caught.value.message


def test_a_hung_server_ends_at_the_deadline_and_git_is_killed(
    session: LocalSession, git_server: GitHTTPServer, remote: str, token: str
) -> None:
    git_server.delay_seconds = 3600
    with pytest.raises(RemoteUnavailable) as caught:
        _push(session, git_server.repo_url(remote), token, stall_seconds=3600, deadline_seconds=1)
    assert "took longer than 1 s" in caught.value.message
    wait_until(lambda: not _git_processes(), what="git's processes are gone")


def test_a_cancelled_watch_ends_the_push(
    session: LocalSession, git_server: GitHTTPServer, remote: str, token: str
) -> None:
    git_server.delay_seconds = 3600
    watch = Watch()
    url = git_server.repo_url(remote)
    thread, outcome = _pushing_in_background(
        lambda: _push(session, url, token, stall_seconds=3600, watch=watch)
    )
    wait_until(lambda: len(_git_processes()) >= 2, what="git and its http helper are running")
    watch.cancel("The remote stopped answering (nothing for 5 s).")
    thread.join(BOUND_SECONDS)
    assert len(outcome) == 1 and isinstance(outcome[0], DeadlineExceeded)
    assert outcome[0].message == "The remote stopped answering (nothing for 5 s)."
    wait_until(lambda: not _git_processes(), what="git's processes are gone")


def test_the_token_is_in_no_process_and_no_file(
    tmp_path: Path,
    session: LocalSession,
    git_server: GitHTTPServer,
    remote: str,
    token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = time.time()
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))  # git's temporary files, if any
    url = git_server.repo_url(remote)
    os.environ["GITSYNC_TOKEN"] = token  # as a hub may set it: git must not inherit it
    try:
        git_server.delay_seconds = 3600
        thread, outcome = _pushing_in_background(
            lambda: _push(session, url, token, stall_seconds=3600, deadline_seconds=BOUND_SECONDS)
        )
        seen: dict[int, tuple[bytes, bytes]] = {}

        def capture() -> bool:
            for process in _git_processes():
                try:
                    proc = Path("/proc", str(process.pid))
                    seen[process.pid] = (
                        (proc / "cmdline").read_bytes(),
                        (proc / "environ").read_bytes(),
                    )
                except OSError:
                    continue
            names = b" ".join(cmd for cmd, _ in seen.values())
            return b"remote-http" in names and b" push" in names.replace(b"\0", b" ")

        wait_until(capture, what="git push and git-remote-http are running")
        git_server.stop()  # ends the held request
        thread.join(BOUND_SECONDS)
        assert len(outcome) == 1 and isinstance(outcome[0], RemoteUnavailable)
        git_server.delay_seconds = 0
        git_server.start()
        # and with the token asked for and given: every process seen along the way
        watcher_done = threading.Event()

        def watch_processes() -> None:
            while not watcher_done.is_set():
                capture()

        watcher = threading.Thread(target=watch_processes, daemon=True)
        watcher.start()
        try:
            assert _push(session, url, token) == [REF]
        finally:
            watcher_done.set()
            watcher.join()
    finally:
        del os.environ["GITSYNC_TOKEN"]

    secret = token.encode()
    assert len(seen) >= 2
    for cmdline, environ in seen.values():
        assert secret not in cmdline
        assert secret not in environ
        assert b"GITSYNC_TOKEN" not in environ
    for root in (session.repo.gitdir, tmp_path, git_server.root):
        for path in _files_since(root, started):
            assert secret not in path.read_bytes(), path


def _files_since(root: Path, since: float) -> Iterator[Path]:
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory, name)
            try:
                if path.is_file() and not path.is_symlink() and path.stat().st_mtime >= since:
                    path.read_bytes()
                    yield path
            except OSError:
                continue


def _helper_answer(tmp_path: Path, token: str, request: str, action: str = "get") -> str:
    """What `credential_helper` prints for `request`, run as git runs it."""
    read_end, write_end = os.pipe()
    os.write(write_end, f"{token}\n".encode())
    os.close(write_end)
    try:
        helper = gitcli.credential_helper(read_end, "http", "127.0.0.1:8080")
        assert token not in helper
        done = subprocess.run(
            ["sh", "-c", f"{helper[1:]} {action}"],
            input=request,
            capture_output=True,
            text=True,
            pass_fds=(read_end,),
            timeout=BOUND_SECONDS,
            check=True,
        )
    finally:
        os.close(read_end)
    return done.stdout


def test_the_helper_answers_the_remotes_origin_only(tmp_path: Path, token: str) -> None:
    right = "protocol=http\nhost=127.0.0.1:8080\n\n"
    assert _helper_answer(tmp_path, token, right) == (
        f"username={transport.TOKEN_USERNAME}\npassword={token}\n"
    )
    for other in (
        "protocol=http\nhost=127.0.0.1:8081\n\n",  # another port
        "protocol=http\nhost=evil.example\n\n",
        "protocol=https\nhost=127.0.0.1:8080\n\n",  # another scheme
        "protocol=http\nhost=127.0.0.1:8080.evil.example\n\n",
        "host=127.0.0.1:8080\n\n",
    ):
        assert _helper_answer(tmp_path, token, other) == ""
    for action in ("store", "erase"):
        assert _helper_answer(tmp_path, token, right, action) == ""


class _Redirector(ThreadingHTTPServer):
    """A server that sends every request on to `target` (a moved repository, or a hostile
    proxy)."""

    def __init__(self, target: str) -> None:
        self.target = target
        super().__init__(("127.0.0.1", 0), _RedirectHandler)


class _RedirectHandler(BaseHTTPRequestHandler):
    server: _Redirector

    def do_GET(self) -> None:
        self.send_response(301)
        self.send_header("Location", self.server.target + self.path.split("/", 2)[-1])
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize("repository_says_follow", [False, True])
def test_a_redirect_is_not_followed_and_gets_no_token(
    session: LocalSession,
    git_server: GitHTTPServer,
    remote: str,
    token: str,
    repository_says_follow: bool,
) -> None:
    redirector = _Redirector(git_server.repo_url(remote).rstrip("/") + "/")
    threading.Thread(target=redirector.serve_forever, daemon=True).start()
    try:
        git_server.clear_requests()
        url = f"http://127.0.0.1:{redirector.server_address[1]}/project.git"
        if repository_says_follow:  # the repository's own config cannot turn it back on
            git(session.repo.gitdir, "config", "http.followRedirects", "true")
            git(session.repo.gitdir, "config", f"http.{url}.followRedirects", "true")
        with pytest.raises(RemoteNotFound) as caught:
            _push(session, url, token)
        assert "another address" in caught.value.message
        assert git_server.requests == []  # not followed: the remote behind it heard nothing
        assert ref_or_none(git_server.repo_path(remote), REF) is None
    finally:
        redirector.shutdown()
        redirector.server_close()


def test_a_url_with_credentials_is_refused(session: LocalSession, token: str) -> None:
    with pytest.raises(GitSyncError, match="without credentials"):
        _push(session, f"http://x:{token}@127.0.0.1:1/project.git", token)


def test_git_messages_are_classified() -> None:
    say = "fatal: unable to access 'http://h/r.git/': "
    assert isinstance(gitcli.classify(f"{say}Operation too slow. Less"), RemoteUnavailable)
    assert isinstance(gitcli.classify(f"{say}The requested URL returned error: 403"), AuthRequired)
    assert isinstance(gitcli.classify("fatal: Authentication failed for 'h'"), AuthRequired)
    assert isinstance(gitcli.classify("fatal: repository 'h' not found"), RemoteNotFound)
    assert isinstance(gitcli.classify(f"{say}Failed to connect"), RemoteUnavailable)
    declined = "! [remote rejected] x -> x (pre-receive hook declined)"
    assert isinstance(gitcli.classify(declined), PushRejected)
    landed = gitcli.parse_porcelain(
        "To http://h/r.git\n*\tabc:refs/heads/a\t[new branch]\n"
        "!\tdef:refs/heads/b\t[rejected] (fetch first)\nDone\n"
    )
    assert landed == {
        "refs/heads/a": (True, "[new branch]"),
        "refs/heads/b": (False, "[rejected] (fetch first)"),
    }


# -- Transport.push: which way --------------------------------------------------------------


def test_packed_objects_are_counted_from_the_indexes(session: LocalSession) -> None:
    gitdir = session.repo.gitdir
    git(gitdir, "repack", "-a", "-d", "-q")
    counted = dict(line.split(": ") for line in git(gitdir, "count-objects", "-v").splitlines())
    assert transport.packed_objects(gitdir) == int(counted["in-pack"]) > 0


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    """The updates every `gitcli.push` was asked for (it still pushes)."""
    calls: list[dict[str, str]] = []
    real = gitcli.push

    def recording(*args: Any, **kwargs: Any) -> list[str]:
        calls.append(dict(args[3]))
        return real(*args, **kwargs)

    monkeypatch.setattr(gitcli, "push", recording)
    return calls


def test_a_large_first_push_goes_through_git(
    session: LocalSession,
    git_server: GitHTTPServer,
    remote: str,
    token: str,
    spy: list[dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    git(session.repo.gitdir, "repack", "-a", "-d", "-q")
    monkeypatch.setattr(
        transport, "GIT_CLI_MIN_OBJECTS", transport.packed_objects(session.repo.gitdir)
    )
    head = _head(session)
    heads = session.push(git_server.repo_url(remote), lambda: token)
    assert spy == [{REF: head}]
    assert str(heads.remote_head) == head  # the tracking ref is recorded, as libgit2's way does
    assert ref_or_none(git_server.repo_path(remote), REF) == head

    (session.workspace / "a.txt").write_text("second")
    assert session.snapshot(None) is not None
    heads = session.push(git_server.repo_url(remote), lambda: token)
    assert len(spy) == 1  # not a first push any more: libgit2
    assert heads.remote_head == heads.head
    assert ref_or_none(git_server.repo_path(remote), REF) == str(heads.head)


def test_a_small_first_push_goes_through_libgit2(
    session: LocalSession,
    git_server: GitHTTPServer,
    remote: str,
    token: str,
    spy: list[dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    git(session.repo.gitdir, "repack", "-a", "-d", "-q")
    monkeypatch.setattr(
        transport, "GIT_CLI_MIN_OBJECTS", transport.packed_objects(session.repo.gitdir) + 1
    )
    sent = session.transport.push(
        git_server.repo_url(remote), lambda: token, {REF: session.repo.tracking_ref}
    )
    assert spy == []
    assert sent == {REF: pygit2.Oid(hex=_head(session))}
    assert ref_or_none(git_server.repo_path(remote), REF) == _head(session)


def test_a_first_push_through_git_is_refused_like_libgit2s(
    session: LocalSession,
    git_server: GitHTTPServer,
    remote: str,
    token: str,
    spy: list[dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(transport, "GIT_CLI_MIN_OBJECTS", 0)
    with pytest.raises(AuthRequired) as caught:
        session.push(git_server.repo_url(remote), lambda: token[::-1])
    assert len(spy) == 1 and token[::-1] not in caught.value.message
    assert session.heads().unpushed == 1 and session.heads().remote_head is None


def test_a_first_push_from_a_shallow_clone_lands(
    tmp_path: Path, git_server: GitHTTPServer, remote: str, token: str
) -> None:
    """Binder clones one commit deep; the sync branch's first push starts from there."""
    bare = git_server.repo_path(remote)
    second = git(bare, "commit-tree", "-m", "second", "-p", "HEAD", "HEAD^{tree}")
    git(bare, "update-ref", "HEAD", second)  # a history the clone gets the tip of alone
    workspace = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{bare}", str(workspace)], check=True
    )
    assert (workspace / ".git" / "shallow").read_text().strip() == second
    shallow = LocalSession(workspace, BRANCH)
    (workspace / "new.txt").write_text("new")
    assert shallow.snapshot(None) is not None
    assert _push(shallow, git_server.repo_url(remote), token) == [REF]
    assert ref_or_none(bare, REF) == _head(shallow)
    git(bare, "fsck", "--strict", "--no-dangling")
    shallow.close()
