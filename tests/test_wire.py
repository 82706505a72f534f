"""Reading branch tips' commits over protocol v2 without their files: the real git server, a
remote that hangs, one that redirects, one without filters, and packs with deltas."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pygit2
import pytest

from jupyter_gitsync import wire
from jupyter_gitsync.errors import AuthRequired, RemoteNotFound, RemoteUnavailable
from jupyter_gitsync.watch import Watch
from tests.gitserver import GitHTTPServer
from tests.helpers import SilentRemote, git


def tips(bare: Path) -> dict[str, pygit2.Oid]:
    out = git(bare, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/")
    return {name: pygit2.Oid(hex=sha) for name, sha in (line.split() for line in out.splitlines())}


def test_the_tips_commits_arrive_exactly_and_nothing_else(
    tmp_path: Path, git_server: GitHTTPServer, remote: str, earlier_session: Path, token: str
) -> None:
    bare = git_server.repo_path(remote)
    wanted = tips(bare)
    got = wire.read_commits(
        git_server.repo_url(remote), "x-access-token", lambda: token, wanted.values(), Watch(), 10
    )
    assert set(got) == set(wanted.values())
    for oid, raw in got.items():
        assert (
            raw
            == subprocess.run(
                ["git", "-C", str(bare), "cat-file", "commit", str(oid)], capture_output=True
            ).stdout
        )
    with pytest.raises(AuthRequired):
        wire.read_commits(
            git_server.repo_url(remote), "x", lambda: "wrong", wanted.values(), Watch(), 10
        )


def test_a_remote_without_filters_is_unsupported(
    git_server: GitHTTPServer, remote: str, token: str
) -> None:
    bare = git_server.repo_path(remote)
    git(bare, "config", "uploadpack.allowFilter", "false")
    with pytest.raises(wire.Unsupported):
        wire.read_commits(
            git_server.repo_url(remote), "x", lambda: token, tips(bare).values(), Watch(), 10
        )


def test_a_silent_remote_ends_at_the_timeout() -> None:
    silent = SilentRemote()
    try:
        with pytest.raises(RemoteUnavailable):
            oid = pygit2.Oid(hex="1" * 40)
            wire.read_commits(silent.url("x"), "x", lambda: "t", [oid], Watch(), 0.5)
    finally:
        silent.close()


class _Redirecting(BaseHTTPRequestHandler):
    seen: list[str | None] = []
    target = ""

    def do_GET(self) -> None:
        type(self).seen.append(self.headers.get("Authorization"))
        self.send_response(302)
        self.send_header("Location", type(self).target + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def redirecting(git_server: GitHTTPServer) -> Iterator[str]:
    """A remote that sends every request on to the real server (another origin)."""
    _Redirecting.seen = []
    _Redirecting.target = git_server.url
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_redirect_is_never_followed(
    git_server: GitHTTPServer, remote: str, token: str, redirecting: str
) -> None:
    git_server.clear_requests()
    with pytest.raises(RemoteNotFound):
        oid = pygit2.Oid(hex="1" * 40)
        wire.read_commits(f"{redirecting}/{remote}.git", "x", lambda: token, [oid], Watch(), 10)
    assert git_server.requests == []  # the token went nowhere else


def test_a_cancelled_read_stops(git_server: GitHTTPServer, remote: str, token: str) -> None:
    watch = Watch()
    watch.cancel("stopping")
    with pytest.raises(RemoteUnavailable):  # DeadlineExceeded
        oid = pygit2.Oid(hex="1" * 40)
        wire.read_commits(git_server.repo_url(remote), "x", lambda: token, [oid], watch, 10)


def test_commits_stored_as_deltas_are_read(tmp_path: Path) -> None:
    """git deltifies similar commits in a pack; the reader resolves the deltas."""
    repo = tmp_path / "r"
    git(tmp_path, "init", "-q", str(repo))
    body = "".join(f"line {i} of a long message that repeats\n" for i in range(200))
    oids = []
    parent: list[str] = []
    tree = git(repo, "mktree", "--missing")  # the empty tree
    for i in range(5):
        oid = subprocess.run(
            ["git", "-C", str(repo), "commit-tree", tree, *parent, "-m", f"{i}\n\n{body}"],
            capture_output=True, text=True, check=True,
            env={"GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@b", "GIT_COMMITTER_NAME": "a",
                 "GIT_COMMITTER_EMAIL": "a@b", "PATH": "/usr/bin:/bin"},
        ).stdout.strip()  # fmt: skip
        oids.append(oid)
        parent = ["-p", oid]
    pack = subprocess.run(
        ["git", "-C", str(repo), "pack-objects", "--stdout", "--window=10", "--depth=5"],
        input="\n".join(oids).encode(), capture_output=True, check=True,
    ).stdout  # fmt: skip
    (tmp_path / "p.pack").write_bytes(pack)
    git(repo, "index-pack", str(tmp_path / "p.pack"))
    listing = git(repo, "verify-pack", "-v", str(tmp_path / "p.idx"))
    assert "chain length = 1" in listing  # the pack does hold deltas
    expected = [
        subprocess.run(
            ["git", "-C", str(repo), "cat-file", "commit", o], capture_output=True
        ).stdout
        for o in oids
    ]
    assert sorted(data for kind, data in wire._objects(pack) if kind == 1) == sorted(expected)
