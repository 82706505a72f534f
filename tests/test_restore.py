"""Start-up restore and resume against the real git HTTP server."""

from __future__ import annotations

import gc
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from jupyter_gitsync.auth import Credentials, EnvTokenProvider
from jupyter_gitsync.engine import EngineConfig, SyncEngine
from jupyter_gitsync.errors import PushRejected
from jupyter_gitsync.state import State
from tests.gitserver import GitHTTPServer
from tests.helpers import SNAPSHOT_BRANCH as BRANCH
from tests.helpers import LocalSession, async_wait_until, files, git, ref_or_none, show


def new_repo(path: Path) -> LocalSession:
    path.mkdir(parents=True, exist_ok=True)
    return LocalSession(path, BRANCH)


def test_empty_directory_gets_identical_files_and_head(
    tmp_path: Path, earlier_session: Path, remote_url: str, token: str
) -> None:
    fresh = tmp_path / "fresh"
    result = new_repo(fresh).restore(remote_url, lambda: token)
    assert result.case == "empty"
    assert files(fresh) == files(earlier_session)
    assert not (fresh / "README.md").exists()  # deletions are restored too
    assert git(fresh, "rev-parse", "HEAD") == git(earlier_session, "rev-parse", "HEAD")
    assert git(fresh, "symbolic-ref", "HEAD") == "refs/heads/main"
    # git status shows exactly the user's own work as changes against that commit
    assert git(fresh, "status", "--porcelain") == git(earlier_session, "status", "--porcelain")


def test_fresh_clone_at_the_launch_commit(
    tmp_path: Path,
    earlier_session: Path,
    clone_into: Callable[[Path], Path],
    remote_url: str,
    token: str,
) -> None:
    launched = clone_into(tmp_path / "launched")
    result = LocalSession(launched, BRANCH).restore(remote_url, lambda: token)
    assert result.case == "fresh"
    assert files(launched) == files(earlier_session)
    assert git(launched, "rev-parse", "HEAD") == git(earlier_session, "rev-parse", "HEAD")
    assert git(launched, "status", "--porcelain") == git(earlier_session, "status", "--porcelain")


def test_no_sync_branch_yet_checks_out_the_default_branch(
    tmp_path: Path, git_server: GitHTTPServer, remote: str, remote_url: str, token: str
) -> None:
    fresh = tmp_path / "fresh"
    result = new_repo(fresh).restore(remote_url, lambda: token)
    assert result.case == "default-branch"
    assert (fresh / "README.md").read_text() == "# Project\n"
    assert git(fresh, "rev-parse", "HEAD") == ref_or_none(git_server.repo_path(remote), "main")
    assert git(fresh, "status", "--porcelain") == ""


def test_local_changes_that_do_not_overlap_are_merged(
    tmp_path: Path,
    earlier_session: Path,
    clone_into: Callable[[Path], Path],
    remote_url: str,
    token: str,
) -> None:
    crashed = clone_into(tmp_path / "crashed")
    (crashed / "local-only.py").write_text("print('mine')\n")
    result = LocalSession(crashed, BRANCH).restore(remote_url, lambda: token)
    assert result.case == "merged" and result.conflicts == []
    assert (crashed / "local-only.py").read_text() == "print('mine')\n"
    assert (crashed / "data" / "x.csv").read_bytes() == b"a,b\n1,2\n"
    assert (crashed / "analysis.ipynb").read_text() == '{"cells": ["edited"]}\n'


def test_overlapping_local_changes_are_kept_and_the_remote_goes_to_a_rescue_branch(
    tmp_path: Path,
    earlier_session: Path,
    clone_into: Callable[[Path], Path],
    git_server: GitHTTPServer,
    remote: str,
    remote_url: str,
    token: str,
) -> None:
    crashed = clone_into(tmp_path / "crashed")
    (crashed / "analysis.ipynb").write_text('{"cells": ["my own edit"]}\n')
    (crashed / "notes.txt").write_text("unsynced notes\n")
    before = files(crashed)
    repo = LocalSession(crashed, BRANCH)
    result = repo.restore(remote_url, lambda: token)
    assert result.case == "conflict"
    assert result.conflicts == ["analysis.ipynb"]
    assert result.rescue_branch is not None and result.rescue_branch in result.message
    # no local file is lost or changed...
    after = files(crashed)
    for path, content in before.items():
        if path != "README.md":  # deleted by the remote snapshot, untouched locally: merged
            assert after[path] == content, path
    # ...the remote's non-overlapping changes arrived, and its version is on the rescue branch
    assert after["data/x.csv"] == b"a,b\n1,2\n"
    rescue = f"refs/heads/{result.rescue_branch}"
    assert show(crashed, rescue, "analysis.ipynb") == b'{"cells": ["edited"]}\n'
    repo.push(remote_url, lambda: token)  # the rescue branch and the merge both reach the remote
    bare = git_server.repo_path(remote)
    assert show(bare, rescue, "analysis.ipynb") == b'{"cells": ["edited"]}\n'
    assert show(bare, f"refs/heads/{BRANCH}", "analysis.ipynb") == b'{"cells": ["my own edit"]}\n'


def test_unrelated_files_in_a_plain_directory_are_never_clobbered(
    tmp_path: Path, earlier_session: Path, remote_url: str, token: str
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "thesis.tex").write_text("mine\n")
    (plain / "data").mkdir()
    (plain / "data" / "x.csv").write_text("my own data\n")
    result = new_repo(plain).restore(remote_url, lambda: token)
    assert result.case == "conflict" and result.conflicts == ["data/x.csv"]
    assert (plain / "thesis.tex").read_text() == "mine\n"
    assert (plain / "data" / "x.csv").read_text() == "my own data\n"
    assert (plain / "analysis.ipynb").read_text() == '{"cells": ["edited"]}\n'


def test_restore_after_a_shallow_clone_when_the_branch_moved_on(
    tmp_path: Path,
    earlier_session: Path,
    git_server: GitHTTPServer,
    remote: str,
    remote_url: str,
    token: str,
) -> None:
    # main moves on after the earlier session, and the session's branch gets more snapshots
    mover = tmp_path / "mover"
    subprocess.run(
        ["git", "clone", "-q", str(git_server.repo_path(remote)), str(mover)], check=True
    )
    (mover / "upstream.txt").write_text("new upstream work\n")
    git(mover, "add", "upstream.txt")
    git(mover, "-c", "user.name=U", "-c", "user.email=u@example.org", "commit", "-qm", "up")
    git(mover, "push", "-q", "origin", "main")
    (earlier_session / "data" / "y.csv").write_text("later\n")
    later = LocalSession(earlier_session, BRANCH)
    later.snapshot(None)
    later.push(remote_url, lambda: token)

    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{git_server.repo_path(remote)}",
         str(shallow)],
        check=True,
    )  # fmt: skip
    (shallow / "scratch.txt").write_text("work before the restore\n")
    result = LocalSession(shallow, BRANCH).restore(remote_url, lambda: token)
    assert result.conflicts == []
    assert (shallow / "scratch.txt").read_text() == "work before the restore\n"
    assert (shallow / "data" / "y.csv").read_text() == "later\n"
    assert (shallow / "analysis.ipynb").read_text() == '{"cells": ["edited"]}\n'


def test_an_unpushed_commit_on_the_users_branch_is_kept(
    tmp_path: Path,
    earlier_session: Path,
    clone_into: Callable[[Path], Path],
    remote_url: str,
    token: str,
) -> None:
    """A clone with a commit the remote lacks: restore merges the snapshot into that work and
    leaves the branch where the user put it."""
    clone = clone_into(tmp_path / "clone")
    (clone / "mine.py").write_text("print('unpushed')\n")
    git(clone, "add", "mine.py")
    git(clone, "commit", "-qm", "my unpushed work")
    mine = git(clone, "rev-parse", "HEAD")
    result = LocalSession(clone, BRANCH).restore(remote_url, lambda: token)
    assert result.case == "merged", result
    assert git(clone, "rev-parse", "refs/heads/main") == mine
    assert git(clone, "rev-parse", "HEAD") == mine
    assert (clone / "mine.py").read_text() == "print('unpushed')\n"
    assert (clone / "data" / "x.csv").read_bytes() == b"a,b\n1,2\n"


def test_staged_changes_are_never_discarded(
    tmp_path: Path,
    earlier_session: Path,
    clone_into: Callable[[Path], Path],
    remote_url: str,
    token: str,
) -> None:
    clone = clone_into(tmp_path / "clone")
    (clone / "staged.txt").write_text("staged by the user\n")
    git(clone, "add", "staged.txt")
    LocalSession(clone, BRANCH).restore(remote_url, lambda: token)
    assert git(clone, "diff", "--cached", "--name-only") == "staged.txt"
    assert (clone / "data" / "x.csv").exists()


def test_forged_trailers_move_nothing_and_break_nothing(
    tmp_path: Path,
    earlier_session: Path,
    git_server: GitHTTPServer,
    remote: str,
    remote_url: str,
    token: str,
) -> None:
    """The trailers are whatever the pusher wrote: a base that is no commit of the snapshot's
    history and head refs outside refs/heads/ are ignored."""
    bare = git_server.repo_path(remote)
    tip = git(bare, "rev-parse", f"refs/heads/{BRANCH}")
    # a commit that exists on the remote but is not in the snapshot's history
    unrelated = git(bare, "commit-tree", f"{tip}^{{tree}}", "-m", "unrelated")
    for trailers in (
        "Gitsync-Base: not-a-sha\nGitsync-Head: CONFIG\n",
        f"Gitsync-Base: {unrelated}\nGitsync-Head: ORIG_HEAD\n",
    ):
        tree = git(bare, "rev-parse", f"{tip}^{{tree}}")
        env = {"GIT_COMMITTER_NAME": "Jupyter GitSync", "GIT_COMMITTER_EMAIL": "gitsync@localhost"}
        forged = subprocess.run(
            ["git", f"--git-dir={bare}", "commit-tree", tree, "-p", tip, "-m", f"x\n\n{trailers}"],
            capture_output=True, text=True, check=True, env={**os.environ, **env},
        ).stdout.strip()  # fmt: skip
        git(bare, "update-ref", f"refs/heads/{BRANCH}", forged)
        tip = forged
        fresh = tmp_path / f"fresh-{forged[:7]}"
        result = new_repo(fresh).restore(remote_url, lambda: token)
        assert result.case == "empty"
        assert files(fresh)["data/x.csv"] == b"a,b\n1,2\n"
        assert not (fresh / ".git" / "CONFIG").exists()
        assert not (fresh / ".git" / "ORIG_HEAD").exists()
        assert git(fresh, "for-each-ref", "--format=%(refname)", "refs/heads/main") == ""


def test_a_merge_snapshot_at_the_tip_restores_head_onto_its_base(
    tmp_path: Path,
    earlier_session: Path,
    clone_into: Callable[[Path], Path],
    remote_url: str,
    token: str,
) -> None:
    other = LocalSession(clone_into(tmp_path / "other"), BRANCH)
    (other.workspace / "other.txt").write_text("from another session\n")
    other.snapshot(None)
    other.restore(remote_url, lambda: token)  # merges the earlier session's snapshot
    other.push(remote_url, lambda: token)
    base = git(earlier_session, "rev-parse", "HEAD")
    fresh = tmp_path / "fresh"
    new_repo(fresh).restore(remote_url, lambda: token)
    assert git(fresh, "rev-parse", "HEAD") == base
    status = git(fresh, "status", "--porcelain").splitlines()
    assert "?? other.txt" in status and "?? data/" in status
    assert not any(line.endswith("README.md") and line.startswith("??") for line in status)


def engine_for(workspace: Path, remote_url: str, token: str, branch: str) -> SyncEngine:
    config = EngineConfig(
        workspace=workspace,
        branch=branch,
        remote_url=remote_url,
        commit_delay_seconds=0.2,
        push_interval_seconds=0.0,
    )
    credentials = Credentials([EnvTokenProvider({"GITSYNC_TOKEN": token})])
    return SyncEngine(config, credentials)


async def test_resume_round_trip(
    tmp_path: Path,
    clone_into: Callable[[Path], Path],
    git_server: GitHTTPServer,
    remote: str,
    remote_url: str,
    token: str,
) -> None:
    # session A syncs to branch x
    a = engine_for(clone_into(tmp_path / "a"), remote_url, token, "gitsync/x")
    await a.start()
    await async_wait_until(lambda: a.status.state == State.SYNCED, what="A started")
    (tmp_path / "a" / "chapter1.md").write_text("A wrote this\n")
    (tmp_path / "a" / "README.md").unlink()
    await a.sync_now()
    await a.stop(10)

    # session B, in an empty directory, resumes x and gets identical files
    (tmp_path / "b").mkdir()
    b = engine_for(tmp_path / "b", remote_url, token, "gitsync/x")
    await b.start()
    await async_wait_until(lambda: b.status.state == State.SYNCED, what="B restored")
    assert files(tmp_path / "b") == files(tmp_path / "a")
    assert git(tmp_path / "b", "rev-parse", "HEAD") == git(tmp_path / "a", "rev-parse", "HEAD")

    # and its edits continue x
    pushed_by_a = ref_or_none(git_server.repo_path(remote), "refs/heads/gitsync/x")
    (tmp_path / "b" / "chapter2.md").write_text("B continued\n")
    status = await b.sync_now()
    tip = ref_or_none(git_server.repo_path(remote), "refs/heads/gitsync/x")
    assert status["head"] == tip
    assert pushed_by_a in git(git_server.repo_path(remote), "rev-list", tip).split()
    assert show(git_server.repo_path(remote), tip, "chapter1.md") == b"A wrote this\n"
    await b.stop(10)


async def test_resume_switches_branches_after_saving_current_work(
    tmp_path: Path,
    earlier_session: Path,
    clone_into: Callable[[Path], Path],
    git_server: GitHTTPServer,
    remote: str,
    remote_url: str,
    token: str,
) -> None:
    workspace = clone_into(tmp_path / "now")
    engine = engine_for(workspace, remote_url, token, "gitsync/other")
    await engine.start()
    await async_wait_until(lambda: engine.status.state == State.SYNCED, what="started")
    (workspace / "current.txt").write_text("current work\n")

    branches = await engine.branches()
    names = [b["name"] for b in branches]
    assert names.index(BRANCH) < names.index("main")  # sync branches first
    assert all(b["sync"] for b in branches[: names.index("main")])
    ada = next(b for b in branches if b["name"] == BRANCH)
    assert ada["message"] == "Update README.md, analysis.ipynb, data/x.csv"

    answer = await engine.resume(BRANCH)
    # "pending": the watcher may still be reporting the files the checkout wrote
    assert answer["branch"] == BRANCH and answer["state"] in ("synced", "unpushed", "pending")
    bare = git_server.repo_path(remote)
    assert show(bare, "refs/heads/gitsync/other", "current.txt") == b"current work\n"
    assert files(workspace) == files(earlier_session)

    answer = await engine.resume("main")
    assert answer["branch"] == f"{BRANCH}-from-main"
    main_tip = ref_or_none(bare, "refs/heads/main")
    await async_wait_until(
        lambda: ref_or_none(bare, f"refs/heads/{BRANCH}-from-main") == main_tip,
        what="the new sync branch on the remote, starting at main",
    )
    assert (workspace / "README.md").read_text() == "# Project\n"
    assert not (workspace / "data").exists()
    (workspace / "new.txt").write_text("on the new branch\n")
    status = await engine.sync_now()
    assert status["branch"] == f"{BRANCH}-from-main"
    assert show(bare, f"refs/heads/{BRANCH}-from-main", "new.txt") == b"on the new branch\n"
    await engine.stop(10)


def test_local_files_the_sync_never_owned_win_every_collision(
    tmp_path: Path,
    earlier_session: Path,
    clone_into: Callable[[Path], Path],
    git_server: GitHTTPServer,
    remote: str,
    remote_url: str,
    token: str,
) -> None:
    """An ignored local file, and a local file where the remote has a folder: both stay as
    they are, the remote's side is on a rescue branch, and the message says exactly that."""
    writer = LocalSession(earlier_session, BRANCH)
    (earlier_session / "run.log").write_text("the remote's log\n")
    (earlier_session / "results").mkdir()
    (earlier_session / "results" / "table.csv").write_text("remote,table\n")
    git(earlier_session, "add", "-f", "run.log")  # it was tracked over there
    writer.snaps.index.add("run.log")
    writer.snapshot(None)
    writer.push(remote_url, lambda: token)
    writer.close()

    clone = clone_into(tmp_path / "clone")
    (clone / ".gitignore").write_text("run.log\n")
    git(clone, "add", ".gitignore")
    git(clone, "commit", "-qm", "ignore logs")
    (clone / "run.log").write_text("my local log\n")
    (clone / "results").write_text("a local file named results\n")
    session = LocalSession(clone, BRANCH)
    result = session.restore(remote_url, lambda: token)
    assert (clone / "run.log").read_text() == "my local log\n"
    assert (clone / "results").read_text() == "a local file named results\n"
    assert (clone / "data" / "x.csv").exists()  # the rest arrived
    assert {"run.log", "results/table.csv"} <= set(result.conflicts)
    assert result.rescue_branch is not None and result.rescue_branch in result.message
    assert "run.log" in result.message and "never synced" in result.message
    rescue = f"refs/heads/{result.rescue_branch}"
    assert show(clone, rescue, "run.log") == b"the remote's log\n"
    assert show(clone, rescue, "results/table.csv") == b"remote,table\n"
    session.push(remote_url, lambda: token)
    bare = git_server.repo_path(remote)
    assert show(bare, rescue, "run.log") == b"the remote's log\n"  # the rescue is pushed too
    session.close()


def test_a_home_directory_with_only_tool_droppings_counts_as_empty(
    tmp_path: Path, earlier_session: Path, remote_url: str, token: str
) -> None:
    """Under JupyterHub npm (for jupyter-lsp) writes ~/.npm/_logs at start, shells write
    their history: such a home is still empty, the snapshot is restored, and those files are
    neither synced nor touched."""
    home = tmp_path / "home"
    (home / ".npm" / "_logs").mkdir(parents=True)
    (home / ".npm" / "_logs" / "debug-0.log").write_text("npm noise\n")
    (home / ".bash_history").write_text("ls\n")
    (home / "dask-scratch-space").mkdir()
    session = new_repo(home)
    result = session.restore(remote_url, lambda: token)
    assert result.case == "empty"
    assert git(home, "rev-parse", "HEAD") == git(earlier_session, "rev-parse", "HEAD")
    assert (home / ".npm" / "_logs" / "debug-0.log").read_text() == "npm noise\n"
    (home / "new.txt").write_text("new\n")
    snapshot = session.snapshot(None)
    assert snapshot is not None
    tip = git(home, "rev-parse", f"refs/heads/{BRANCH}")
    listed = git(home, "ls-tree", "-r", "--name-only", tip).splitlines()
    assert "new.txt" in listed
    assert not any(p.startswith((".npm", ".bash_history", "dask-scratch")) for p in listed)


def test_the_session_whose_version_was_displaced_is_told(
    tmp_path: Path,
    clone_into: Callable[[Path], Path],
    git_server: GitHTTPServer,
    remote: str,
    remote_url: str,
    token: str,
) -> None:
    """A and B edit the same file; A pushes first, B's merge keeps B's version and puts A's
    on a rescue branch. When A takes that merge in, A is told too, and where its version is."""
    a = LocalSession(clone_into(tmp_path / "a"), BRANCH)
    b = LocalSession(clone_into(tmp_path / "b"), BRANCH)
    (a.workspace / "README.md").write_text("A's version\n")
    a.snapshot(None)
    a.push(remote_url, lambda: token)
    (b.workspace / "README.md").write_text("B's version\n")
    b.snapshot(None)
    merged = b.restore(remote_url, lambda: token)
    assert merged.conflicts == ["README.md"] and merged.rescue_branch is not None
    b.push(remote_url, lambda: token)

    told = a.restore(remote_url, lambda: token)
    assert told.case == "fast-forward"
    assert told.conflicts == ["README.md"]
    assert told.rescue_branch == merged.rescue_branch
    assert "Another session saved README.md" in told.message
    assert merged.rescue_branch in told.message
    assert (a.workspace / "README.md").read_text() == "B's version\n"
    rescue = f"refs/heads/{merged.rescue_branch}"
    assert show(git_server.repo_path(remote), rescue, "README.md") == b"A's version\n"
    assert told.notice() is not None


def test_the_displaced_session_is_told_also_when_it_has_saved_again(
    tmp_path: Path,
    clone_into: Callable[[Path], Path],
    remote_url: str,
    token: str,
) -> None:
    """As above, but A saved another file meanwhile: A's push is refused, A merges, and the
    message still says that B's version of README.md replaced A's, and where A's is."""
    a = LocalSession(clone_into(tmp_path / "a"), BRANCH)
    b = LocalSession(clone_into(tmp_path / "b"), BRANCH)
    (a.workspace / "README.md").write_text("A's version\n")
    a.snapshot(None)
    a.push(remote_url, lambda: token)
    (b.workspace / "README.md").write_text("B's version\n")
    b.snapshot(None)
    merged = b.restore(remote_url, lambda: token)
    b.push(remote_url, lambda: token)
    (a.workspace / "other.txt").write_text("A saved something else\n")
    a.snapshot(None)
    told = a.restore(remote_url, lambda: token)
    assert told.case == "merged"
    assert told.conflicts == ["README.md"] and told.rescue_branch == merged.rescue_branch
    assert "Another session saved README.md" in told.message
    assert (a.workspace / "README.md").read_text() == "B's version\n"
    assert (a.workspace / "other.txt").exists()


# -- at scale: the tip, not the history -------------------------------------------------------

LONG_HISTORY = 200


def long_history(session: LocalSession, remote_url: str, token: str, n: int = LONG_HISTORY) -> str:
    """`n` snapshots, each a new version of a notebook (and now and then of other files),
    pushed as one session leaves them; returns the tip."""
    ws = session.workspace
    (ws / "shared.txt").write_text("as it was\n")
    (ws / "conflict.txt").write_text("as it was\n")
    for i in range(n):
        (ws / "notebook.ipynb").write_text(f'{{"cells": ["version {i}"], "out": "{i * 7}"}}\n')
        if i % 50 == 0:
            (ws / "data" / f"part{i}.csv").parent.mkdir(exist_ok=True)
            (ws / "data" / f"part{i}.csv").write_text(f"part,{i}\n")
        assert session.snapshot(None) is not None
    heads = session.push(remote_url, lambda: token)
    assert heads.head is not None and heads.head == heads.remote_head
    return heads.head


def launch_clone(bare: Path, target: Path) -> Path:
    """A clone of main alone, over git's transport (as Binder clones the launch ref; a clone
    from a local path would copy every object of the remote)."""
    subprocess.run(
        ["git", "clone", "-q", "--single-branch", "--branch", "main", f"file://{bare}",
         str(target)],
        check=True,
    )  # fmt: skip
    git(target, "config", "user.name", "Test User")
    git(target, "config", "user.email", "test@example.org")
    return target


def local_objects(workspace: Path) -> int:
    out = git(workspace, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)")
    return len(out.splitlines())


def reachable_commits(workspace: Path, ref: str) -> int:
    """Commits git can walk from `ref` here (a shallow history stops where the fetch did)."""
    return int(git(workspace, "rev-list", "--count", ref))


def test_a_restore_after_200_snapshots_fetches_the_tip_not_the_history(
    tmp_path: Path,
    clone_into: Callable[[Path], Path],
    git_server: GitHTTPServer,
    remote: str,
    remote_url: str,
    token: str,
) -> None:
    a = LocalSession(clone_into(tmp_path / "a"), BRANCH)
    tip = long_history(a, remote_url, token)
    bare = git_server.repo_path(remote)
    history_objects = len(git(bare, "rev-list", "--objects", tip).splitlines())

    b = new_repo(tmp_path / "b")
    result = b.restore(remote_url, lambda: token)
    assert result.case == "empty"
    assert files(b.workspace) == files(a.workspace)
    assert git(b.workspace, "rev-parse", "--is-shallow-repository") == "true"
    assert reachable_commits(b.workspace, f"refs/heads/{BRANCH}") == 1
    assert local_objects(b.workspace) < history_objects / 20
    # the tip and the commit it was based on came in one fetch (the tip's commit read first)
    assert len(list((b.workspace / ".git" / "objects" / "pack").glob("*.pack"))) == 1
    # HEAD is on the launch commit, and git status shows the session's work
    assert git(b.workspace, "rev-parse", "HEAD") == git(a.workspace, "rev-parse", "HEAD")
    assert git(b.workspace, "status", "--porcelain") == git(a.workspace, "status", "--porcelain")
    assert b.restore(remote_url, lambda: token).case == "up-to-date"
    # the repository object opened anew for the shallow history carries on snapshotting, also
    # once the one before it is gone (it took the sync index along when it was freed)
    gc.collect()
    (b.workspace / "after.txt").write_text("saved after the restore\n")
    assert b.snapshot(None) is not None and b.skipped == {}
    assert show(b.workspace, f"refs/heads/{BRANCH}", "after.txt") == b"saved after the restore\n"


def launch_commit_dated(bare: Path, seconds_ahead: int) -> None:
    """Put a new commit on the remote's main (the launch commit of the sessions that clone it
    afterwards), committed by a machine whose clock runs `seconds_ahead` of this one's."""
    when = f"@{int(time.time()) + seconds_ahead} +0000"
    env = {**os.environ, "GIT_COMMITTER_DATE": when, "GIT_AUTHOR_DATE": when}
    for name in ("AUTHOR", "COMMITTER"):
        env[f"GIT_{name}_NAME"], env[f"GIT_{name}_EMAIL"] = "Launcher", "launch@example.org"
    commit = subprocess.run(
        ["git", "-C", str(bare), "commit-tree", "main^{tree}", "-p", "main", "-m", "Launch"],
        check=True, capture_output=True, text=True, env=env,
    ).stdout.strip()  # fmt: skip
    git(bare, "update-ref", "refs/heads/main", commit)


# A shallow history hides the parents of the commit where it was cut, so libgit2 sees two common
# ancestors of the two sync tips that it cannot order: their last common snapshot and the launch
# commit (every snapshot's second parent), and picks the one with the later commit date. Dates
# come from clocks (this machine's, the launcher's, anyone who pushes): with the launch commit
# dated later, or in the same second, the merge took it as its base. Both clocks are tried.
CLOCKS = pytest.mark.parametrize("launch_clock_ahead_seconds", [0, 86_400], ids=["same", "ahead"])


@CLOCKS
def test_after_a_shallow_restore_a_refused_push_merges_on_the_right_base_and_pushes(
    tmp_path: Path,
    clone_into: Callable[[Path], Path],
    git_server: GitHTTPServer,
    remote: str,
    remote_url: str,
    token: str,
    launch_clock_ahead_seconds: int,
) -> None:
    """B restores 200 snapshots shallow. A saves three more (a file both change, and one only
    A changes); B saves too (that file, one only B changes, and the notebook A changed all
    along). B's push is refused; B takes A's snapshots in: the merge finds their common
    snapshot although B never fetched the history (taking the launch commit as the base would
    call B's notebook a conflict), keeps B's version of the shared file and puts A's on a rescue
    branch, and the push after it is accepted. Nothing of either side is lost."""
    launch_commit_dated(git_server.repo_path(remote), launch_clock_ahead_seconds)
    a = LocalSession(clone_into(tmp_path / "a"), BRANCH)
    long_history(a, remote_url, token)
    b = new_repo(tmp_path / "b")
    assert b.restore(remote_url, lambda: token).case == "empty"

    for i in range(3):
        (a.workspace / "a-only.txt").write_text(f"A's work {i}\n")
        (a.workspace / "conflict.txt").write_text(f"A's version {i}\n")
        a.snapshot(None)
    a.push(remote_url, lambda: token)

    (b.workspace / "b-only.txt").write_text("B's work\n")
    (b.workspace / "conflict.txt").write_text("B's version\n")
    (b.workspace / "notebook.ipynb").write_text('{"cells": ["B edited the notebook"]}\n')
    b.snapshot(None)
    with pytest.raises(PushRejected):
        b.push(remote_url, lambda: token)

    merged = b.restore(remote_url, lambda: token)
    assert merged.case == "conflict", merged.message
    assert merged.conflicts == ["conflict.txt"]
    assert (b.workspace / "conflict.txt").read_text() == "B's version\n"
    assert (b.workspace / "notebook.ipynb").read_text() == '{"cells": ["B edited the notebook"]}\n'
    assert (b.workspace / "a-only.txt").read_text() == "A's work 2\n"
    assert (b.workspace / "b-only.txt").read_text() == "B's work\n"
    # only what the merge needed came: A's three snapshots, not the 200 before them
    assert git(b.workspace, "rev-parse", "--is-shallow-repository") == "true"
    assert reachable_commits(b.workspace, f"refs/heads/{BRANCH}") < 12

    heads = b.push(remote_url, lambda: token)
    bare = git_server.repo_path(remote)
    assert heads.remote_head == ref_or_none(bare, f"refs/heads/{BRANCH}")
    tip = f"refs/heads/{BRANCH}"
    assert show(bare, tip, "conflict.txt") == b"B's version\n"
    assert show(bare, tip, "a-only.txt") == b"A's work 2\n"
    assert show(bare, tip, "b-only.txt") == b"B's work\n"
    assert show(bare, f"refs/heads/{merged.rescue_branch}", "conflict.txt") == b"A's version 2\n"
    git(bare, "fsck", "--connectivity-only", "--no-dangling")  # what B pushed is complete

    # and A, with its whole history, takes B's merge in as a fast-forward
    told = a.restore(remote_url, lambda: token)
    assert told.case == "fast-forward"
    assert (a.workspace / "b-only.txt").read_text() == "B's work\n"


@CLOCKS
def test_after_a_shallow_restore_one_snapshot_of_another_session_merges_on_their_common_one(
    tmp_path: Path,
    clone_into: Callable[[Path], Path],
    git_server: GitHTTPServer,
    remote: str,
    remote_url: str,
    token: str,
    launch_clock_ahead_seconds: int,
) -> None:
    """B restores shallow; A saves once on top of the snapshot B restored, so A's snapshot
    joins B's history at once (nothing deeper is fetched) while that snapshot stays cut off.
    B's own saves (the notebook among them) merge with A's on that snapshot, not on the launch
    commit: only the file both changed is a conflict, whatever the clocks say."""
    launch_commit_dated(git_server.repo_path(remote), launch_clock_ahead_seconds)
    a = LocalSession(clone_into(tmp_path / "a"), BRANCH)
    long_history(a, remote_url, token, n=30)
    b = new_repo(tmp_path / "b")
    assert b.restore(remote_url, lambda: token).case == "empty"
    (a.workspace / "conflict.txt").write_text("A's version\n")
    a.snapshot(None)
    a.push(remote_url, lambda: token)
    (b.workspace / "conflict.txt").write_text("B's version\n")
    (b.workspace / "notebook.ipynb").write_text('{"cells": ["B edited the notebook"]}\n')
    b.snapshot(None)

    merged = b.restore(remote_url, lambda: token)
    assert (merged.case, merged.conflicts) == ("conflict", ["conflict.txt"]), merged.message
    assert (b.workspace / "notebook.ipynb").read_text() == '{"cells": ["B edited the notebook"]}\n'
    assert (b.workspace / "conflict.txt").read_text() == "B's version\n"
    assert git(b.workspace, "rev-parse", "--is-shallow-repository") == "true"
    rescue = f"refs/heads/{merged.rescue_branch}"
    assert show(b.workspace, rescue, "conflict.txt") == b"A's version\n"


def test_a_workspace_with_its_whole_history_keeps_it(
    tmp_path: Path,
    clone_into: Callable[[Path], Path],
    remote_url: str,
    token: str,
) -> None:
    """A persistent home has the branch's whole history. Another session saves several times;
    the restore fetches the new snapshots a level deeper at a time, and no commit this
    workspace had in full is left cut off (libgit2 marks where a deeper fetch stops, even at
    commits whose whole history is here)."""
    home = LocalSession(clone_into(tmp_path / "home"), BRANCH)
    long_history(home, remote_url, token, n=20)
    other = LocalSession(clone_into(tmp_path / "other"), BRANCH)
    assert other.restore(remote_url, lambda: token).case == "fresh"
    for i in range(5):
        (other.workspace / "other.txt").write_text(f"{i}\n")
        other.snapshot(None)
    other.push(remote_url, lambda: token)

    assert home.restore(remote_url, lambda: token).case == "fast-forward"
    assert (home.workspace / "other.txt").read_text() == "4\n"
    assert git(home.workspace, "rev-parse", "--is-shallow-repository") == "false"
    assert reachable_commits(home.workspace, "refs/heads/main") == 1
    assert reachable_commits(home.workspace, f"refs/heads/{BRANCH}") == 20 + 5 + 1


def test_a_fresh_clone_receives_only_what_the_snapshots_changed(
    tmp_path: Path,
    clone_into: Callable[[Path], Path],
    git_server: GitHTTPServer,
    remote: str,
    remote_url: str,
    token: str,
) -> None:
    a = LocalSession(clone_into(tmp_path / "a"), BRANCH)
    for _ in range(4):
        (a.workspace / "big.bin").write_bytes(os.urandom(20_000))  # a new version each time
        a.snapshot(None)
    a.push(remote_url, lambda: token)
    launched = launch_clone(git_server.repo_path(remote), tmp_path / "launched")
    before = local_objects(launched)
    result = LocalSession(launched, BRANCH).restore(remote_url, lambda: token)
    assert result.case == "fresh"
    assert files(launched) == files(a.workspace)
    # the tip's commit, its root tree and the one blob it changed: not the three versions before
    assert local_objects(launched) - before == 3
    assert git(launched, "rev-parse", "HEAD") == git(a.workspace, "rev-parse", "HEAD")


def test_a_forged_base_that_no_one_has_ends_the_search_at_its_bound(
    tmp_path: Path,
    clone_into: Callable[[Path], Path],
    git_server: GitHTTPServer,
    remote: str,
    remote_url: str,
    token: str,
) -> None:
    """The tip names a base commit that exists nowhere: the restore asks for it (by a branch
    at it, by id, a few levels deeper), gives up within its bounds, restores the files and
    leaves HEAD alone. Both with and without a remote that hands out commits by id."""
    a = LocalSession(clone_into(tmp_path / "a"), BRANCH)
    long_history(a, remote_url, token, n=30)
    bare = git_server.repo_path(remote)
    tip = git(bare, "rev-parse", f"refs/heads/{BRANCH}")
    env = {"GIT_COMMITTER_NAME": "Jupyter GitSync", "GIT_COMMITTER_EMAIL": "gitsync@localhost"}
    message = (
        "Update notebook.ipynb\n\nGitsync-Base: " + "5" * 40 + "\nGitsync-Head: refs/heads/main\n"
    )
    forged = subprocess.run(
        ["git", f"--git-dir={bare}", "commit-tree", f"{tip}^{{tree}}", "-p", tip, "-m", message],
        capture_output=True, text=True, check=True, env={**os.environ, **env},
    ).stdout.strip()  # fmt: skip
    git(bare, "update-ref", f"refs/heads/{BRANCH}", forged)
    for by_id in (False, True):
        git_server.allow_fetch_by_id(remote, by_id)
        git_server.clear_requests()
        fresh = new_repo(tmp_path / f"fresh-{by_id}")
        result = fresh.restore(remote_url, lambda: token)
        assert result.case == "empty"
        assert files(fresh.workspace) == files(a.workspace)
        assert ref_or_none(fresh.workspace, "HEAD") is None  # no base to put it on
        fetches = [r for r in git_server.requests if r.path.endswith("/git-upload-pack")]
        assert len(fetches) <= 12
        assert reachable_commits(fresh.workspace, f"refs/heads/{BRANCH}") <= 5


def test_the_base_comes_by_its_id_when_no_branch_is_at_it_any_more(
    tmp_path: Path,
    clone_into: Callable[[Path], Path],
    git_server: GitHTTPServer,
    remote: str,
    remote_url: str,
    token: str,
) -> None:
    a = LocalSession(clone_into(tmp_path / "a"), BRANCH)
    long_history(a, remote_url, token, n=10)
    launch = git(a.workspace, "rev-parse", "HEAD")
    mover = clone_into(tmp_path / "mover")  # main moves on: no branch is at the base now
    (mover / "later.txt").write_text("later\n")
    git(mover, "add", "later.txt")
    git(mover, "commit", "-qm", "later")
    git(mover, "push", "-q", "origin", "main")
    for by_id in (True, False):
        git_server.allow_fetch_by_id(remote, by_id)
        fresh = new_repo(tmp_path / f"fresh-{by_id}")
        assert fresh.restore(remote_url, lambda: token).case == "empty"
        assert git(fresh.workspace, "rev-parse", "HEAD") == launch
        assert git(fresh.workspace, "status", "--porcelain") == git(
            a.workspace, "status", "--porcelain"
        )
        # by id: the base alone; without: the tip one level deeper (its parents)
        assert reachable_commits(fresh.workspace, f"refs/heads/{BRANCH}") == (1 if by_id else 3)


async def test_resume_from_a_long_branch_fetches_its_tip_and_lists_branches_without_files(
    tmp_path: Path,
    clone_into: Callable[[Path], Path],
    git_server: GitHTTPServer,
    remote: str,
    remote_url: str,
    token: str,
) -> None:
    """The branch list reads each tip's commit, not its files nor its history; a resume from a
    branch of 200 snapshots brings its tip and the commit it was based on."""
    a = LocalSession(clone_into(tmp_path / "a"), "gitsync/long")
    long_history(a, remote_url, token)
    a.close()
    bare = git_server.repo_path(remote)
    tip = git(bare, "rev-parse", "refs/heads/gitsync/long")
    workspace = launch_clone(bare, tmp_path / "now")
    engine = engine_for(workspace, remote_url, token, "gitsync/other")
    await engine.start()
    await async_wait_until(lambda: engine.status.state == State.SYNCED, what="started")

    before = local_objects(workspace)
    branches = {b["name"]: b for b in await engine.branches()}
    assert branches["gitsync/long"]["sync"] and branches["gitsync/long"]["sha"] == tip
    assert branches["gitsync/long"]["message"] == "Update notebook.ipynb"
    assert branches["gitsync/long"]["last_snapshot_at"] is not None
    assert not branches["main"]["sync"]
    assert local_objects(workspace) == before  # not even the tips' commits are stored
    assert subprocess.run(["git", "-C", str(workspace), "cat-file", "-e", f"{tip}^{{tree}}"],
                          capture_output=True).returncode != 0  # fmt: skip

    answer = await engine.resume("gitsync/long")
    assert answer["branch"] == "gitsync/long"
    assert files(workspace) == files(a.workspace)
    assert git(workspace, "rev-parse", "HEAD") == git(a.workspace, "rev-parse", "HEAD")
    assert git(workspace, "rev-parse", "--is-shallow-repository") == "true"
    assert reachable_commits(workspace, tip) == 1
    assert local_objects(workspace) - before < 20
    await engine.stop(10)


async def test_the_branch_list_where_the_remote_cannot_send_commits_alone(
    tmp_path: Path,
    clone_into: Callable[[Path], Path],
    git_server: GitHTTPServer,
    remote: str,
    remote_url: str,
    token: str,
) -> None:
    """A remote without filtered fetches: the tips come through libgit2 at depth 1, with
    their files but without their history, and their refs are dropped again."""
    a = LocalSession(clone_into(tmp_path / "a"), "gitsync/long")
    long_history(a, remote_url, token, n=30)
    a.close()
    bare = git_server.repo_path(remote)
    git(bare, "config", "uploadpack.allowFilter", "false")
    tip = git(bare, "rev-parse", "refs/heads/gitsync/long")
    workspace = launch_clone(bare, tmp_path / "now")
    engine = engine_for(workspace, remote_url, token, "gitsync/other")
    await engine.start()
    await async_wait_until(lambda: engine.status.state == State.SYNCED, what="started")
    branches = {b["name"]: b for b in await engine.branches()}
    assert branches["gitsync/long"]["message"] == "Update notebook.ipynb"
    assert git(workspace, "for-each-ref", "refs/gitsync/fetched/") == ""
    await engine.stop(10)
    # only the tip of the branch came, not the 29 snapshots before it
    parent = git(bare, "rev-parse", f"{tip}~1")
    assert subprocess.run(["git", "-C", str(workspace), "cat-file", "-e", parent],
                          capture_output=True).returncode != 0  # fmt: skip


# -- filters: a checkout skips the attribute lookups only where no filter can apply ------------


def test_a_restore_writes_files_through_the_filters_the_snapshot_names(
    tmp_path: Path, clone_into: Callable[[Path], Path], remote_url: str, token: str
) -> None:
    """A `.gitattributes` deep in the snapshot asks for CRLF line ends: the restored files
    have them, as git's own checkout writes them; next to it, a file no attribute names is
    written as its blob holds it."""
    a = LocalSession(clone_into(tmp_path / "a"), BRANCH)
    (a.workspace / "docs" / "deep").mkdir(parents=True)
    (a.workspace / "docs" / "deep" / ".gitattributes").write_text("*.txt text eol=crlf\n")
    (a.workspace / "docs" / "deep" / "notes.txt").write_bytes(b"one\ntwo\n")
    (a.workspace / "docs" / "raw.dat").write_bytes(b"one\r\ntwo\n")
    a.snapshot(None)
    a.push(remote_url, lambda: token)

    b = new_repo(tmp_path / "b")
    assert b.restore(remote_url, lambda: token).case == "empty"
    assert (b.workspace / "docs" / "deep" / "notes.txt").read_bytes() == b"one\r\ntwo\r\n"
    assert (b.workspace / "docs" / "raw.dat").read_bytes() == b"one\r\ntwo\n"
    assert git(b.workspace, "show", f"{BRANCH}:docs/deep/notes.txt") == "one\ntwo"
