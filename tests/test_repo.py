"""Repository, snapshots and transport against real repositories and the real git server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pygit2
import pytest

from jupyter_gitsync.errors import (
    AuthRequired,
    ConfigError,
    PushRejected,
    RemoteNotFound,
    RemoteUnavailable,
    WorkspaceError,
)
from jupyter_gitsync.snapshots import no_filters
from jupyter_gitsync.transport import classify
from tests.gitserver import GitHTTPServer
from tests.helpers import SNAPSHOT_BRANCH, LocalSession, git, ref_or_none, show, user_git_state


def test_snapshot_goes_to_the_sync_branch_and_leaves_the_user_alone(workspace: Path) -> None:
    git(workspace, "stash", "list")
    (workspace / "staged.txt").write_text("staged by the user\n")
    git(workspace, "add", "staged.txt")
    before = user_git_state(workspace, "gitsync/test")

    repo = LocalSession(workspace, "gitsync/test")
    (workspace / "analysis.ipynb").write_text('{"cells": [1]}\n')
    (workspace / "new.py").write_text("print(1)\n")
    snapshot = repo.snapshot(None)

    assert snapshot is not None
    assert user_git_state(workspace, "gitsync/test") == before
    tip = ref_or_none(workspace, "refs/heads/gitsync/test")
    assert tip == snapshot.commit
    assert show(workspace, tip, "new.py") == b"print(1)\n"
    assert show(workspace, tip, "staged.txt") == b"staged by the user\n"
    # the snapshot records the user's HEAD as a parent, so restore can diff against it
    assert before["head"] in git(workspace, "rev-list", "--parents", "-n1", tip).split()


def test_no_empty_commits(workspace: Path) -> None:
    repo = LocalSession(workspace, "b")
    assert repo.snapshot(None) is None  # the clean clone has nothing to save
    (workspace / "a.txt").write_text("1")
    first = repo.snapshot(["a.txt"])
    assert first is not None
    os.utime(workspace / "a.txt")  # touched, not changed
    assert repo.snapshot(["a.txt"]) is None
    assert repo.snapshot(None) is None


def test_commit_messages_say_what_changed(workspace: Path) -> None:
    repo = LocalSession(workspace, "b")
    for i in range(5):
        (workspace / f"f{i}.csv").write_text(str(i))
    added = repo.snapshot(None)
    assert added is not None
    assert added.message.splitlines()[0] == "Add f0.csv, f1.csv, f2.csv (+2 more)"
    base = git(workspace, "rev-parse", "HEAD")
    assert f"Gitsync-Base: {base}" in added.message.splitlines()
    assert "Gitsync-Head: refs/heads/main" in added.message.splitlines()
    (workspace / "f0.csv").unlink()
    deleted = repo.snapshot(["f0.csv"])
    assert deleted is not None and deleted.message.splitlines()[0] == "Delete f0.csv"
    (workspace / "f1.csv").write_text("changed")
    (workspace / "f5.csv").write_text("new")
    mixed = repo.snapshot(["f1.csv", "f5.csv"])
    assert mixed is not None and mixed.message.splitlines()[0] == "Update f1.csv, f5.csv"


def test_deleted_and_moved_directories(workspace: Path) -> None:
    repo = LocalSession(workspace, "b")
    (workspace / "d" / "e").mkdir(parents=True)
    (workspace / "d" / "e" / "x.txt").write_text("x")
    (workspace / "d" / "y.txt").write_text("y")
    repo.snapshot(["d"])
    (workspace / "d").rename(workspace / "moved")
    snap = repo.snapshot(["d", "moved"])
    assert snap is not None
    files = git(workspace, "ls-tree", "-r", "--name-only", snap.commit).splitlines()
    assert "moved/e/x.txt" in files and "moved/y.txt" in files
    assert not any(f.startswith("d/") for f in files)


def test_excluded_ignored_and_large_files(workspace: Path) -> None:
    (workspace / ".gitignore").write_text("secret-data/\n*.tmp\n")
    repo = LocalSession(workspace, "b", max_file_size_bytes=1000)
    (workspace / ".ipynb_checkpoints").mkdir()
    (workspace / ".ipynb_checkpoints" / "a-checkpoint.ipynb").write_text("{}")
    (workspace / "secret-data").mkdir()
    (workspace / "secret-data" / "x.csv").write_text("1")
    (workspace / "scratch.tmp").write_text("1")
    (workspace / "big.bin").write_bytes(b"0" * 1001)
    (workspace / "ok.txt").write_text("1")
    snap = repo.snapshot(None)
    assert snap is not None
    files = git(workspace, "ls-tree", "-r", "--name-only", snap.commit).splitlines()
    assert "ok.txt" in files and ".gitignore" in files
    assert not {"big.bin", "scratch.tmp", "secret-data/x.csv"} & set(files)
    assert not any(".ipynb_checkpoints" in f for f in files)
    assert repo.skipped == {"big.bin": "larger than 0.001 MB"}
    # the same paths reported by the watcher are filtered the same way
    (workspace / "big.bin").write_bytes(b"1" * 2000)
    assert repo.snapshot(["big.bin", ".ipynb_checkpoints/a-checkpoint.ipynb"]) is None
    (workspace / "big.bin").write_bytes(b"small")
    fixed = repo.snapshot(["big.bin"])
    assert fixed is not None and repo.skipped == {}


def test_stat_cache_survives_a_restart(workspace: Path) -> None:
    """A second session on the same workspace finds nothing to do without rehashing."""
    (workspace / "a.txt").write_text("a")
    LocalSession(workspace, "b").snapshot(None)
    index_file = workspace / ".git" / "gitsync" / "index"
    entries = pygit2.Index(str(index_file))
    assert "a.txt" in entries
    again = LocalSession(workspace, "b")
    assert again.snaps.scan() == set()
    (workspace / "a.txt").write_text("changed")
    assert again.snaps.scan() == {"a.txt"}


def test_workspace_that_is_not_a_repository_is_initialised(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("hello")
    repo = LocalSession(tmp_path, "b")
    snap = repo.snapshot(None)
    assert snap is not None
    assert show(tmp_path, "refs/heads/b", "notes.md") == b"hello"
    assert ref_or_none(tmp_path, "HEAD") is None  # the user's branch stays unborn


@pytest.mark.parametrize("branch", ["", "a..b", "has space", "ends/", "x.lock", "-x~"])
def test_invalid_branch_names_are_refused_in_plain_words(tmp_path: Path, branch: str) -> None:
    with pytest.raises(ConfigError, match="not a valid git branch name"):
        LocalSession(tmp_path, branch)


def test_push_and_learn_the_remote(
    workspace: Path, git_server: GitHTTPServer, remote: str, token: str
) -> None:
    repo = LocalSession(workspace, "b")
    (workspace / "a.txt").write_text("a")
    snap = repo.snapshot(None)
    assert snap is not None
    heads = repo.push(git_server.repo_url(remote), lambda: token)
    assert heads.head == heads.remote_head == snap.commit
    assert ref_or_none(git_server.repo_path(remote), "refs/heads/b") == snap.commit
    assert heads.unpushed == 0


def test_a_wrong_token_is_sent_once(
    workspace: Path, git_server: GitHTTPServer, remote: str, token: str
) -> None:
    repo = LocalSession(workspace, "b")
    (workspace / "a.txt").write_text("a")
    repo.snapshot(None)
    wrong = token[::-1]
    git_server.clear_requests()
    with pytest.raises(AuthRequired) as caught:
        repo.push(git_server.repo_url(remote), lambda: wrong)
    assert wrong not in str(caught.value)
    assert git_server.count(401, with_credentials=True) == 1
    assert repo.heads().unpushed == 1  # the snapshot is kept


def test_no_token_asks_for_one(workspace: Path, git_server: GitHTTPServer, remote: str) -> None:
    repo = LocalSession(workspace, "b")
    (workspace / "a.txt").write_text("a")
    repo.snapshot(None)
    with pytest.raises(AuthRequired, match="none is set"):
        repo.push(git_server.repo_url(remote), lambda: None)


def test_unknown_repository_and_unreachable_remote(
    workspace: Path, git_server: GitHTTPServer, token: str
) -> None:
    repo = LocalSession(workspace, "b")
    (workspace / "a.txt").write_text("a")
    repo.snapshot(None)
    with pytest.raises(RemoteNotFound):
        repo.push(git_server.repo_url("missing"), lambda: token)
    port = git_server.port
    git_server.stop()
    with pytest.raises(RemoteUnavailable):
        repo.push(f"http://127.0.0.1:{port}/project.git", lambda: token)


def test_a_remote_branch_that_moved_on_is_never_overwritten(
    tmp_path: Path, clone_into, git_server: GitHTTPServer, remote: str, token: str
) -> None:
    url = git_server.repo_url(remote)
    first = LocalSession(clone_into(tmp_path / "one"), "b")
    (first.workspace / "a.txt").write_text("one")
    first.snapshot(None)
    first.push(url, lambda: token)
    pushed = first.heads().head

    second = LocalSession(clone_into(tmp_path / "two"), "b")
    (second.workspace / "b.txt").write_text("two")
    assert second.snapshot(None) is not None
    with pytest.raises(PushRejected):  # b moved on elsewhere: never forced
        second.push(url, lambda: token)
    assert ref_or_none(git_server.repo_path(remote), "refs/heads/b") == pushed
    assert second.heads().unpushed == 1  # the snapshot is kept, to be merged


def test_classify_libgit2_messages() -> None:
    assert isinstance(classify("unexpected http status code: 404"), RemoteNotFound)
    assert isinstance(
        classify("failed to connect to 127.0.0.1: Connection refused"), RemoteUnavailable
    )
    assert isinstance(classify("unexpected http status code: 500"), RemoteUnavailable)
    moved = "cannot push because a reference ... contains commits that are not present locally"
    assert isinstance(classify(moved), PushRejected)
    assert isinstance(classify("authentication required but no callback set"), AuthRequired)


def test_secrets_are_not_committed_and_are_reported(workspace: Path) -> None:
    import secrets as random_secrets

    repo = LocalSession(workspace, "b")
    token = "ghp_" + random_secrets.token_hex(18)
    (workspace / ".env").write_text("API_KEY=1\n")
    (workspace / "leak.ipynb").write_text('{"outputs": ["' + token + '"]}')
    (workspace / "fine.txt").write_text("fine")
    snap = repo.snapshot(None)
    assert snap is not None
    names = git(workspace, "ls-tree", "-r", "--name-only", snap.commit).splitlines()
    assert "fine.txt" in names and ".env" not in names and "leak.ipynb" not in names
    assert repo.skipped == {
        ".env": "looks like a credentials file",
        "leak.ipynb": "contains what looks like a GitHub token",
    }
    assert token.encode() not in b"".join(p.read_bytes() for p in (workspace / ".git").rglob("*")
                                          if p.is_file())  # fmt: skip
    (workspace / "leak.ipynb").write_text('{"outputs": []}')
    assert repo.snapshot(["leak.ipynb"]) is not None and "leak.ipynb" not in repo.skipped


def test_symlinks_are_stored_as_links_never_followed(workspace: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside-secret.txt"
    outside.write_text("private data outside the workspace")
    (workspace / "link").symlink_to(outside)
    (tmp_path / "outside-dir").mkdir()
    (tmp_path / "outside-dir" / "big.bin").write_text("not ours")
    (workspace / "dirlink").symlink_to(tmp_path / "outside-dir")
    repo = LocalSession(workspace, "b")
    snap = repo.snapshot(None)
    assert snap is not None
    entries = git(workspace, "ls-tree", "-r", snap.commit).splitlines()
    links = {line.split("\t")[1]: line.split()[0] for line in entries}
    assert links["link"] == links["dirlink"] == "120000"  # links, not their targets' content
    assert "dirlink/big.bin" not in links
    assert show(workspace, snap.commit, "link") == str(outside).encode()


def test_names_git_cannot_store_are_reported_not_fatal(workspace: Path) -> None:
    repo = LocalSession(workspace, "b")
    (workspace / "ok.txt").write_text("ok")
    (workspace / "GIT~1").write_text("x")  # what git refuses: it could alias .git on NTFS
    snap = repo.snapshot(None)
    assert snap is not None
    assert "ok.txt" in git(workspace, "ls-tree", "-r", "--name-only", snap.commit)
    assert set(repo.skipped) == {"GIT~1"}
    assert repo.skipped["GIT~1"].startswith("cannot be stored in git")


def test_stale_locks_from_a_killed_process_are_recovered(workspace: Path) -> None:
    LocalSession(workspace, "b")  # creates .git/gitsync
    gitdir = workspace / ".git"
    (gitdir / "gitsync" / "index.lock").write_text("")
    (gitdir / "refs" / "heads" / "b.lock").write_text("")
    repo = LocalSession(workspace, "b")
    (workspace / "after-crash.txt").write_text("saved")
    assert repo.snapshot(None) is not None
    assert not (gitdir / "gitsync" / "index.lock").exists()


def test_one_engine_per_repository(workspace: Path) -> None:
    first = LocalSession(workspace, "b")
    with pytest.raises(ConfigError, match="Another Jupyter server is already syncing"):
        LocalSession(workspace, "b")
    first.close()
    LocalSession(workspace, "b")  # free again once the first one is gone


def test_an_odd_name_never_stops_the_other_files(workspace: Path) -> None:
    """A name that is not UTF-8 (bytes a file system allows) is listed, the rest is saved."""
    repo = LocalSession(workspace, "b")
    odd = os.path.join(os.fsencode(workspace), b"r\xe9sum\xe9.txt")
    with open(odd, "wb") as handle:
        handle.write(b"latin-1 name\n")
    (workspace / "fine.txt").write_text("fine\n")
    snap = repo.snapshot(None)
    assert snap is not None
    assert show(workspace, "refs/heads/b", "fine.txt") == b"fine\n"
    reason = "its name is not valid UTF-8, which git cannot store here"
    assert repo.skipped == {"r\ufffdsum\ufffd.txt": reason}
    (workspace / "later.txt").write_text("later\n")  # and saving goes on
    assert repo.snapshot(["later.txt", os.fsdecode(odd.rsplit(b"/", 1)[1])]) is not None


def test_a_folder_replaced_by_a_link_outside_is_stored_as_the_link(
    workspace: Path, tmp_path: Path
) -> None:
    """A tracked folder replaced by a symbolic link to a folder outside the workspace: the
    link is stored, and nothing outside is ever read into a snapshot."""
    (workspace / "data").mkdir()
    (workspace / "data" / "x.csv").write_text("mine\n")
    repo = LocalSession(workspace, "b")
    assert repo.snapshot(None) is not None
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.csv").write_text("SECRET outside the workspace\n")
    (outside / "y.csv").write_text("SECRET too\n")
    shutil.rmtree(workspace / "data")
    (workspace / "data").symlink_to(outside)
    repo.snapshot(None)
    repo.snapshot(["data/x.csv", "data/y.csv"])  # as the watcher would report them
    tip = git(workspace, "rev-parse", "refs/heads/b")
    assert git(workspace, "cat-file", "-t", f"{tip}:data") == "blob"  # a link, not a tree
    assert show(workspace, tip, "data") == str(outside).encode()
    assert "SECRET" not in git(workspace, "log", "-p", "refs/heads/b")


# A snapshot stages through libgit2's `index.add` (a loose object a file) or, when it looks at
# many paths, through packs (`packs`); tests of staging run both ways.
STAGING = pytest.mark.parametrize("packed_from_paths", [10**9, 1], ids=["loose", "packed"])


@STAGING
def test_a_file_rewritten_while_it_is_read_is_never_committed_torn(
    workspace: Path, packed_from_paths: int
) -> None:
    """Another process keeps rewriting a 16 MB file in place, pass after pass, in 64 kB
    chunks that hold the number of their pass, while snapshots are taken: every version
    committed is a state the file had at one instant (chunks of one pass, then of the pass
    before where the writer had not got to yet), never one read across a rewrite."""
    path = workspace / "results.bin"
    chunks = 256
    path.write_bytes(_chunk(0) * chunks)
    repo = LocalSession(workspace, "b", packed_from_paths=packed_from_paths)
    writer = subprocess.Popen(
        [sys.executable, "-c", _REWRITER, str(path), str(chunks), str(_CHUNK_BYTES)],
        stdin=subprocess.PIPE,
    )
    try:
        commits = [repo.snapshot(["results.bin"]) for _ in range(20)]
    finally:
        writer.kill()
        writer.wait()
    made = [c.commit for c in commits if c is not None]
    settled = repo.snapshot(["results.bin"])  # the writer has stopped: the file is whole
    assert settled is not None or made
    tip = git(workspace, "rev-parse", "refs/heads/b")
    assert show(workspace, tip, "results.bin") == path.read_bytes()
    for commit in made:
        passes = _passes(show(workspace, commit, "results.bin") or b"")
        # An instant's state: pass n up to where the writer was, pass n - 1 after it (a
        # writer preempted mid-pass leaves the file like that, and a snapshot then may take
        # it). A read across a rewrite shows anything else: n + 1 before n, or gaps.
        assert passes == sorted(passes, reverse=True), f"torn: passes {sorted(set(passes))}"
        assert passes[0] - passes[-1] <= 1, f"torn: passes {sorted(set(passes))}"


_CHUNK_BYTES = 65536


def _chunk(number: int) -> bytes:
    return number.to_bytes(8, "big") * (_CHUNK_BYTES // 8)


def _passes(blob: bytes) -> list[int]:
    """The pass each part of `blob` was written by, in order: a chunk's where it is whole, each
    8-byte word's in a chunk a read met while the writer was in it."""
    passes: list[int] = []
    for at in range(0, len(blob), _CHUNK_BYTES):
        chunk = blob[at : at + _CHUNK_BYTES]
        number = int.from_bytes(chunk[:8], "big")
        if chunk == _chunk(number)[: len(chunk)]:
            passes.append(number)
        else:
            passes.extend(int.from_bytes(chunk[i : i + 8], "big") for i in range(0, len(chunk), 8))
    return passes


# Rewrites the file in place (no truncation), pass after pass; each chunk holds its pass number.
_REWRITER = """
import os, sys
path, chunks, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fd = os.open(path, os.O_WRONLY)
number = 0
while True:
    number += 1
    chunk = number.to_bytes(8, "big") * (size // 8)
    os.lseek(fd, 0, 0)
    for _ in range(chunks):
        os.write(fd, chunk)
"""


_UNREADABLE = """
import json, os, subprocess, sys
from pathlib import Path
from tests.helpers import LocalSession
ws = Path(sys.argv[1])
packed_from_paths = int(sys.argv[2])
subprocess.run(["git", "init", "-q", str(ws)], check=True)
(ws / "a.txt").write_text("a")
(ws / "locked.txt").write_text("readable once")
(ws / "private").mkdir()
(ws / "private" / "notes.txt").write_text("in a folder readable once")
session = LocalSession(ws, "b", packed_from_paths=packed_from_paths)
session.snapshot(None)
os.chmod(ws / "locked.txt", 0)
os.utime(ws / "locked.txt", None)  # changed since the last snapshot: it must be read
os.chmod(ws / "private", 0)  # a folder nobody may list or enter any more
(ws / "secret").mkdir()
(ws / "secret" / "key.txt").write_text("never synced")
os.chmod(ws / "secret", 0)  # and one that was never synced
(ws / "b.txt").write_text("b")
first = session.snapshot(None)
(ws / "c.txt").write_text("c")
second = session.snapshot(None)  # the next full scan goes on too
(ws / "c.txt").write_text("c again")
by_path = session.snapshot(["private/notes.txt", "secret", "c.txt"])  # as the watcher says
skipped_then = dict(session.skipped)
os.chmod(ws / "secret", 0o755)  # readable again: synced, and no longer listed
session.snapshot(["secret"])
tip = session.repo.tip()
tree = session.repo.repo[tip].peel(__import__("pygit2").Tree)
print(json.dumps({
    "saved": [first is not None, second is not None, by_path is not None],
    "tree": sorted(e.name for e in tree),
    "private": sorted(e.name for e in tree["private"].peel(__import__("pygit2").Tree)),
    "skipped": skipped_then,
    "skipped_after": session.skipped,
}))
"""


@STAGING
def test_an_unreadable_file_never_stops_the_others(tmp_path: Path, packed_from_paths: int) -> None:
    """A tracked file and a tracked folder made unreadable (mode 000) for the user the server
    runs as: libgit2's full scan gives up on them; the others are still saved, scan after
    scan, each is listed as skipped, and its last readable version stays in the snapshots.
    A folder never synced that cannot be listed is listed too, and synced once readable.
    Runs as an unprivileged user (root reads everything)."""
    runner: list[str] = []
    workspace = Path(tempfile.mkdtemp(dir="/tmp", prefix="gitsync-unreadable-"))
    try:
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("needs setpriv (util-linux) to run as an unprivileged user")
            workspace.chmod(0o755)
            os.chown(workspace, 65534, 65534)
            runner = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
        out = subprocess.run(
            [*runner, sys.executable, "-c", _UNREADABLE, str(workspace), str(packed_from_paths)],
            cwd=Path(__file__).resolve().parent.parent,
            env={**os.environ, "HOME": str(workspace), "GIT_CONFIG_NOSYSTEM": "1"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        facts = json.loads(out.stdout.strip().splitlines()[-1])
        assert facts["saved"] == [True, True, True]
        assert facts["tree"] == ["a.txt", "b.txt", "c.txt", "locked.txt", "private", "secret"]
        assert facts["private"] == ["notes.txt"]  # its last readable state stays
        assert facts["skipped"] == {
            "locked.txt": "cannot be read: permission denied",
            "private/notes.txt": "cannot be read: permission denied",
            "secret": "cannot be read: permission denied",
        }
        assert "secret" not in facts["skipped_after"] and "secret" in facts["tree"]
    finally:
        subprocess.run(["chmod", "-R", "u+rwX", str(workspace)], check=False)
        shutil.rmtree(workspace, ignore_errors=True)


def test_filters_are_looked_up_only_where_one_can_apply(workspace: Path) -> None:
    """`no_filters` says a checkout may skip the per-file attribute lookup: not when the tree
    has a `.gitattributes` at any depth, `.git/info/attributes` exists, or end-of-line
    conversion is configured."""
    session = LocalSession(workspace, SNAPSHOT_BRANCH)
    git_repo = session.snaps.git

    def tree_with(files: dict[str, bytes]) -> pygit2.Tree:
        for path, data in files.items():
            (workspace / path).parent.mkdir(parents=True, exist_ok=True)
            (workspace / path).write_bytes(data)
        snap = session.snapshot(None)
        assert snap is not None
        return git_repo[snap.commit].peel(pygit2.Tree)

    plain = tree_with({"a/b/c.txt": b"x\n"})
    assert no_filters(git_repo, plain)
    git(workspace, "config", "core.autocrlf", "true")
    assert not no_filters(git_repo.__class__(str(workspace)), plain)
    git(workspace, "config", "core.autocrlf", "input")
    assert not no_filters(git_repo.__class__(str(workspace)), plain)
    git(workspace, "config", "core.autocrlf", "false")
    assert no_filters(git_repo.__class__(str(workspace)), plain)
    info = workspace / ".git" / "info" / "attributes"
    info.parent.mkdir(exist_ok=True)
    info.write_text("*.txt text\n")
    assert not no_filters(git_repo, plain)
    info.unlink()
    assert not no_filters(git_repo, tree_with({"a/b/.gitattributes": b"*.txt ident\n"}))


def many_files(root: Path, n: int = 700) -> dict[str, bytes]:
    """`n` small files in 7 folders."""
    written = {}
    for i in range(n):
        path = f"d{i % 7}/f{i:04d}.py"
        written[path] = f"x = {i}\n".encode()
        (root / path).parent.mkdir(exist_ok=True)
        (root / path).write_bytes(written[path])
    return written


@STAGING
def test_a_first_snapshot_of_many_files_keeps_the_staging_policy(
    workspace: Path, packed_from_paths: int
) -> None:
    """A first snapshot of hundreds of files: the commit holds what `git add -A` would (modes,
    links) less what the policy keeps out (a secret's content never reaches `.git` at all), and
    the stat data of every file is recorded, so the next full scan rereads nothing."""
    import secrets as random_secrets

    token = "ghp_" + random_secrets.token_hex(18)
    written = many_files(workspace)
    (workspace / "d0" / "leak.py").write_text(f"TOKEN = '{token}'\n")
    (workspace / "d1" / ".env").write_text("API_KEY=1\n")
    (workspace / "node_modules").mkdir()
    (workspace / "node_modules" / "x.js").write_text("excluded\n")
    (workspace / ".gitignore").write_text("*.log\n")
    (workspace / "d2" / "run.log").write_text("ignored\n")
    (workspace / "d3" / "tool.sh").write_text("#!/bin/sh\n")
    (workspace / "d3" / "tool.sh").chmod(0o755)
    (workspace / "d4" / "link").symlink_to("f0004.py")
    session = LocalSession(workspace, "b", packed_from_paths=packed_from_paths)
    loose_before = set((workspace / ".git" / "objects").glob("??/*"))  # the clone's
    snap = session.snapshot(None)
    assert snap is not None
    leaked = pygit2.hash(f"TOKEN = '{token}'\n".encode())
    assert leaked not in session.snaps.git.odb  # packed, the token's bytes would be deflated

    listed = git(workspace, "ls-tree", "-r", snap.commit).splitlines()
    entries = {line.split("\t")[1]: line.split()[0] for line in listed}
    assert set(written) <= set(entries)
    for path in ("d0/leak.py", "d1/.env", "node_modules/x.js", "d2/run.log"):
        assert path not in entries, path
    assert entries["d3/tool.sh"] == "100755" and entries["d4/link"] == "120000"
    assert entries["d0/f0000.py"] == "100644"
    assert show(workspace, snap.commit, "d6/f0699.py") == written["d6/f0699.py"]
    assert set(session.skipped) == {"d0/leak.py", "d1/.env"}
    assert token.encode() not in b"".join(
        p.read_bytes() for p in (workspace / ".git").rglob("*") if p.is_file()
    )
    # the sync index has each file's stat data, as `git add` records it
    index = str(session.snaps.index_path)
    debug = subprocess.run(
        ["git", "-C", str(workspace), "ls-files", "--debug", "d6/f0699.py", "d3/tool.sh"],
        env={**os.environ, "GIT_INDEX_FILE": index},
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    for path in ("d6/f0699.py", "d3/tool.sh"):
        st = (workspace / path).stat()
        assert f"mtime: {st.st_mtime_ns // 10**9}:{st.st_mtime_ns % 10**9}" in debug
        assert f"ino: {st.st_ino}" in debug and f"size: {st.st_size}\t" in debug
    assert session.snaps.scan() == {"d0/leak.py", "d1/.env"}  # the skipped ones, looked at again
    loose_blobs = [
        p for p in set((workspace / ".git" / "objects").glob("??/*")) - loose_before
        if session.snaps.git[p.parent.name + p.name].type == pygit2.enums.ObjectType.BLOB
    ]  # fmt: skip
    if packed_from_paths == 1:  # only the link's blob is loose (links go through libgit2)
        assert len(loose_blobs) == 1
    else:
        assert len(loose_blobs) > len(written)


@STAGING
def test_a_first_snapshot_of_many_files_goes_through_the_filters_where_one_applies(
    workspace: Path, packed_from_paths: int
) -> None:
    """A `.gitattributes` asks for a filter: staging applies it (CRLF line ends are stored
    as LF, as `git add` stores them)."""
    many_files(workspace)
    (workspace / "d5" / ".gitattributes").write_text("*.txt text eol=lf\n")
    (workspace / "d5" / "dos.txt").write_bytes(b"one\r\ntwo\r\n")
    snap = LocalSession(workspace, "b", packed_from_paths=packed_from_paths).snapshot(None)
    assert snap is not None
    assert show(workspace, snap.commit, "d5/dos.txt") == b"one\ntwo\n"


def test_a_packed_snapshot_records_what_libgit2_records(workspace: Path, tmp_path: Path) -> None:
    """The index entries a packed snapshot writes are field for field those libgit2's own
    `index.add` writes for the same files (stat data, mode, size, id), so the two ways are
    interchangeable: later snapshots of either kind reread nothing unchanged."""
    from pygit2.ffi import C, ffi

    from jupyter_gitsync import _native

    written = many_files(workspace, 60)
    (workspace / "d3" / "tool.sh").write_text("#!/bin/sh\n")
    (workspace / "d3" / "tool.sh").chmod(0o755)
    (workspace / "empty.txt").write_bytes(b"")
    session = LocalSession(workspace, "b", packed_from_paths=1)
    assert session.snapshot(None) is not None
    probe_repo = pygit2.Repository(str(workspace))
    _native.use_index(probe_repo, pygit2.Index(str(tmp_path / "probe-index")))
    probe = probe_repo.index  # libgit2's own record of the same files (not the user's index)

    def fields(index: pygit2.Index, path: str) -> tuple[object, ...]:
        e = C.git_index_get_bypath(index._index, path.encode(), 0)
        assert e != ffi.NULL, path
        return (
            e.ctime.seconds, e.ctime.nanoseconds, e.mtime.seconds, e.mtime.nanoseconds,
            e.dev, e.ino, e.mode, e.uid, e.gid, e.file_size, bytes(e.id.id), e.flags,
        )  # fmt: skip

    for path in [*written, "d3/tool.sh", "empty.txt"]:
        probe.add(path)
        assert fields(session.snaps.index, path) == fields(probe, path), path
    assert session.snaps.scan() == set()


def test_a_folder_that_brings_a_filter_mid_snapshot_goes_through_it(workspace: Path) -> None:
    """A folder moved in holds a `.gitattributes` that asks for a filter and a file it
    applies to, found only as the snapshot walks the folder: the file is stored filtered (LF
    line ends) though the snapshot began by packing."""
    (workspace / "moved").mkdir()
    many_files(workspace / "moved", 30)
    (workspace / "moved" / "d3" / ".gitattributes").write_text("*.txt text eol=lf\n")
    (workspace / "moved" / "d3" / "dos.txt").write_bytes(b"one\r\ntwo\r\n")
    (workspace / "moved" / "d3" / "deeper").mkdir()
    (workspace / "moved" / "d3" / "deeper" / "dos.txt").write_bytes(b"three\r\n")
    session = LocalSession(workspace, "b", packed_from_paths=1)
    snap = session.snapshot(["moved"])
    assert snap is not None
    assert show(workspace, snap.commit, "moved/d3/dos.txt") == b"one\ntwo\n"
    assert show(workspace, snap.commit, "moved/d3/deeper/dos.txt") == b"three\n"
    assert show(workspace, snap.commit, "moved/d6/f0006.py") == b"x = 6\n"


@STAGING
def test_a_large_snapshot_replaces_folders_with_files_and_keeps_modes(
    workspace: Path, packed_from_paths: int
) -> None:
    """Between two full snapshots a folder became a file of the same name, a file became
    executable and another was emptied: the second snapshot records each as `git add -A`
    would."""
    written = many_files(workspace, 40)
    (workspace / "tool").mkdir()
    (workspace / "tool" / "old.py").write_text("old\n")
    session = LocalSession(workspace, "b", packed_from_paths=packed_from_paths)
    assert session.snapshot(None) is not None
    shutil.rmtree(workspace / "tool")
    (workspace / "tool").write_text("now a file\n")
    (workspace / "d1" / "f0001.py").chmod(0o755)
    (workspace / "d2" / "f0002.py").write_bytes(b"")
    for path in list(written)[10:]:
        (workspace / path).write_text(f"changed {path}\n")
    snap = session.snapshot(None)
    assert snap is not None
    listed = git(workspace, "ls-tree", "-r", snap.commit).splitlines()
    entries = {line.split("\t")[1]: line.split()[0] for line in listed}
    assert "tool/old.py" not in entries and entries["tool"] == "100644"
    assert entries["d1/f0001.py"] == "100755"
    assert show(workspace, snap.commit, "d2/f0002.py") == b""
    assert show(workspace, snap.commit, "tool") == b"now a file\n"
    for path in list(written)[10:]:
        assert show(workspace, snap.commit, path) == f"changed {path}\n".encode()
    git(workspace, "fsck", "--no-dangling")
    assert session.snaps.scan() == set()


_KILLED_WHILE_PACKING = """
import functools, os, sys, threading
from pathlib import Path
from jupyter_gitsync import packs, snapshots
from tests.helpers import LocalSession
workspace, stop_at = Path(sys.argv[1]), int(sys.argv[2])
snapshots.BlobPack = functools.partial(packs.BlobPack, flush_bytes=256)
real_replace, renames = os.replace, 0

def replace(source, target):  # the renames that publish packs: stop before the N-th
    global renames
    renames += 1
    if renames == stop_at:
        print("stopped", flush=True)
        threading.Event().wait()  # until killed
    real_replace(source, target)

packs.os.replace = replace
LocalSession(workspace, "b", packed_from_paths=1).snapshot(None)
print("finished", flush=True)
"""


@pytest.mark.parametrize(
    "stop_at",
    [1, 2, 5],
    ids=["both-files-written-none-named", "pack-named-index-not", "after-two-packs"],
)
def test_a_packed_snapshot_killed_at_the_worst_moment_loses_nothing(
    workspace: Path, stop_at: int
) -> None:
    """A server killed (SIGKILL) while a packed snapshot writes its packs: with a pack and
    its index written under temporary names; between naming the pack and its index; after
    two packs were published. Nothing committed or on disk is lost, the next start removes
    the temporary files the killed process left, and its first snapshot saves every file
    into a repository git checks clean."""
    written = many_files(workspace, 200)
    tip_before = ref_or_none(workspace, "refs/heads/b")
    pack_dir = workspace / ".git" / "objects" / "pack"
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WHILE_PACKING, str(workspace), str(stop_at)],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "stopped", child.stderr
        child.kill()
    finally:
        child.kill()
        child.wait(timeout=30)
    left = sorted(p.name for p in pack_dir.iterdir())
    if stop_at == 1:
        assert sum(name.startswith("tmp_pack_gitsync_") for name in left) == 2, left
    if stop_at == 2:  # git ignores a pack without an index (and git gc removes it)
        assert {n[:-5] for n in left if n.endswith(".pack")} - {n[:-4] for n in left}, left
    assert ref_or_none(workspace, "refs/heads/b") == tip_before
    assert all(
        p.read_bytes() == data for p, data in ((workspace / k, v) for k, v in written.items())
    )

    session = LocalSession(workspace, "b", packed_from_paths=1)  # the next start
    assert not [p for p in pack_dir.iterdir() if p.name.startswith("tmp_pack_gitsync_")]
    snap = session.snapshot(None)
    assert snap is not None
    for path, data in written.items():
        assert show(workspace, snap.commit, path) == data
    assert session.snaps.scan() == set()  # and the index it left rereads nothing
    git(workspace, "fsck", "--strict", "--no-dangling")
    session.close()


def test_a_packed_snapshot_stopped_at_the_worst_moment_loses_nothing(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A packed snapshot writes several packs; the disk fills up between a pack and its
    index, halfway through. The snapshot fails with a plain error, the sync branch and the
    index on disk are as before, and the next snapshot saves every file."""
    import functools

    from jupyter_gitsync import packs, snapshots

    session = LocalSession(workspace, "b", packed_from_paths=1)
    assert session.snapshot(None) is None  # the clone's files, as the index holds them
    tip_before = ref_or_none(workspace, "refs/heads/b")
    index_before = session.snaps.index_path.read_bytes()
    written = many_files(workspace, 300)
    monkeypatch.setattr(snapshots, "BlobPack", functools.partial(packs.BlobPack, flush_bytes=512))
    real = packs._index
    calls = 0

    def fills_up(entries: list[tuple[bytes, int, int]], checksum: bytes) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError(28, "No space left on device")
        return real(entries, checksum)

    monkeypatch.setattr(packs, "_index", fills_up)
    with pytest.raises(WorkspaceError, match="No space left on device"):
        session.snapshot(None)
    assert ref_or_none(workspace, "refs/heads/b") == tip_before
    assert session.snaps.index_path.read_bytes() == index_before
    assert all(
        p.read_bytes() == data for p, data in ((workspace / k, v) for k, v in written.items())
    )

    monkeypatch.setattr(packs, "_index", real)
    session.close()
    again = LocalSession(workspace, "b", packed_from_paths=1)  # as after a restart
    snap = again.snapshot(None)
    assert snap is not None
    for path, data in written.items():
        assert show(workspace, snap.commit, path) == data
    git(workspace, "fsck", "--no-dangling")
