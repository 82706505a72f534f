"""Rescue branches: listed in the status, pushed (also after a restart), deleted by themselves
once their files are back in the sync branch or a later rescue of the same files grew from
them, deleted on request, and never deleted otherwise. Against the real git server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pygit2
import pytest

from jupyter_gitsync.auth import Credentials
from jupyter_gitsync.engine import EngineConfig, SyncEngine
from jupyter_gitsync.errors import ConfigError, RemoteUnavailable
from jupyter_gitsync.merging import KEPT_PREFIX, RESCUE_TRAILER
from jupyter_gitsync.repository import SIGNATURE_EMAIL, SIGNATURE_NAME
from jupyter_gitsync.rescues import RescueBranches
from jupyter_gitsync.state import State
from tests.gitserver import GitHTTPServer
from tests.helpers import (
    LocalSession,
    MutableToken,
    async_wait_until,
    ref_or_none,
    show,
)

BRANCH = "gitsync/shared"


@pytest.fixture
def engines(
    tmp_path: Path, clone_into: Callable[[Path], Path], remote_url: str, token: str
) -> Iterator[Callable[..., SyncEngine]]:
    """Engines on one branch of one remote, each in its own clone (stopped at the end)."""
    made: list[SyncEngine] = []

    def make(name: str, **overrides: Any) -> SyncEngine:
        workspace = tmp_path / name
        if not workspace.exists():
            clone_into(workspace)
        settings: dict[str, Any] = {
            "workspace": workspace,
            "branch": BRANCH,
            "remote_url": remote_url,
            "commit_delay_seconds": 60,  # snapshots come from sync_now
            "push_interval_seconds": 0,
            "retry_initial_seconds": 0.2,
            "retry_max_seconds": 1.0,
        }
        settings.update(overrides)
        engine = SyncEngine(EngineConfig(**settings), Credentials([MutableToken(token)]))
        made.append(engine)
        return engine

    yield make
    # each test stops its engines; a failed one may not have


async def started(engine: SyncEngine) -> SyncEngine:
    await engine.start()
    await async_wait_until(lambda: engine.status.state == State.SYNCED, what="start-up")
    return engine


async def collide(a: SyncEngine, b: SyncEngine, path: str = "notes.txt") -> dict[str, Any]:
    """A and B save different versions of one file, A first: B keeps its own and puts A's on a
    rescue branch. Returns B's status after that sync."""
    wa, wb = a.config.workspace, b.config.workspace
    (wa / path).write_text("A's version\n")
    await a.sync_now()
    (wb / path).write_text("B's version\n")
    return await b.sync_now()


def remote_ref(git_server: GitHTTPServer, remote: str, name: str) -> str | None:
    return ref_or_none(git_server.repo_path(remote), f"refs/heads/{name}")


async def test_both_sessions_list_the_rescue_and_it_goes_once_its_file_is_back(
    engines: Callable[..., SyncEngine], git_server: GitHTTPServer, remote: str
) -> None:
    a, b = await started(engines("a")), await started(engines("b"))
    status = await collide(a, b)
    [rescue] = status["rescue_branches"]
    name = rescue["name"]
    assert name.startswith(f"{BRANCH}-rescue-") and rescue["paths"] == ["notes.txt"]
    assert status["rescue_message"] is None
    assert show(git_server.repo_path(remote), f"refs/heads/{name}", "notes.txt") == (
        b"A's version\n"
    )
    # A, whose version was displaced, is told and lists the same branch
    status = await a.sync_now()
    assert status["notice"]["branch"] == name
    assert [r["name"] for r in status["rescue_branches"]] == [name]
    assert (a.config.workspace / "notes.txt").read_text() == "B's version\n"

    # an unrelated save keeps it: its file differs from the tip
    (b.config.workspace / "other.txt").write_text("other\n")
    status = await b.sync_now()
    assert [r["name"] for r in status["rescue_branches"]] == [name]
    assert remote_ref(git_server, remote, name) is not None

    # the user takes A's version back: the rescue has served its purpose, here and there
    (b.config.workspace / "notes.txt").write_text("A's version\n")
    status = await b.sync_now()
    assert status["rescue_branches"] == []
    assert remote_ref(git_server, remote, name) is None
    assert ref_or_none(b.config.workspace, f"refs/heads/{name}") is None
    # A takes that in; its record goes too, though the remote's branch is gone already
    status = await a.sync_now()
    assert status["rescue_branches"] == [] and status["error"] is None
    assert ref_or_none(a.config.workspace, f"refs/heads/{name}") is None
    await a.stop(10)
    await b.stop(10)


async def test_a_rescue_is_deleted_on_request_and_only_a_rescue(
    engines: Callable[..., SyncEngine], git_server: GitHTTPServer, remote: str
) -> None:
    a, b = await started(engines("a")), await started(engines("b"))
    [rescue] = (await collide(a, b))["rescue_branches"]
    name = rescue["name"]
    sync_tip = remote_ref(git_server, remote, BRANCH)
    for wrong in (BRANCH, "main", "gitsync/shared-rescue-nothing", "../x"):
        with pytest.raises(ConfigError, match="no rescue branch"):
            await b.delete_rescue(wrong)
    assert remote_ref(git_server, remote, BRANCH) == sync_tip
    assert remote_ref(git_server, remote, "main") is not None

    git_server.fail_status = 503  # the remote is down: nothing changes, here or there
    with pytest.raises(RemoteUnavailable):
        await b.delete_rescue(name)
    assert ref_or_none(b.config.workspace, f"refs/heads/{name}") is not None
    assert [r["name"] for r in b.status_json()["rescue_branches"]] == [name]
    git_server.fail_status = None

    status = await b.delete_rescue(name)
    assert status["rescue_branches"] == []
    assert remote_ref(git_server, remote, name) is None
    assert ref_or_none(b.config.workspace, f"refs/heads/{name}") is None
    assert remote_ref(git_server, remote, BRANCH) == sync_tip  # the sync branch is untouched
    await a.stop(10)
    await b.stop(10)


async def test_a_rescue_made_while_offline_is_pushed_after_a_restart(
    tmp_path: Path,
    clone_into: Callable[[Path], Path],
    engines: Callable[..., SyncEngine],
    git_server: GitHTTPServer,
    remote: str,
    remote_url: str,
    token: str,
) -> None:
    """The merge that made it ran, then the session ended before the push: the next session
    pushes it (it is recorded in the repository, not in memory)."""
    a = LocalSession(clone_into(tmp_path / "a"), BRANCH)
    (a.workspace / "notes.txt").write_text("A's version\n")
    a.snapshot(None)
    a.push(remote_url, lambda: token)
    b = LocalSession(clone_into(tmp_path / "b"), BRANCH)
    (b.workspace / "notes.txt").write_text("B's version\n")
    b.snapshot(None)
    merged = b.restore(remote_url, lambda: token)
    assert merged.rescue_branch is not None
    b.close()  # ended before pushing anything
    assert remote_ref(git_server, remote, merged.rescue_branch) is None

    engine = await started(engines("b"))
    await async_wait_until(
        lambda: remote_ref(git_server, remote, merged.rescue_branch or ""), what="the push"
    )
    rescue = f"refs/heads/{merged.rescue_branch}"
    assert show(git_server.repo_path(remote), rescue, "notes.txt") == b"A's version\n"
    assert [r["name"] for r in engine.status_json()["rescue_branches"]] == [merged.rescue_branch]
    a.close()
    await engine.stop(10)


async def test_past_the_limit_the_user_is_told_and_nothing_is_deleted(
    engines: Callable[..., SyncEngine], git_server: GitHTTPServer, remote: str
) -> None:
    a = await started(engines("a"))
    b = await started(engines("b", max_rescue_branches=1))
    names = []
    for path in ("one.txt", "two.txt"):
        [rescue, *_] = (await collide(a, b, path))["rescue_branches"]
        names.append(rescue["name"])
        await a.sync_now()  # A takes B's version in (and is told)
    status = b.status_json()
    assert [r["name"] for r in status["rescue_branches"]] == names[::-1]  # newest first
    assert "2 rescue branches" in status["rescue_message"]
    assert "never deleted without you" in status["rescue_message"]
    await b.sync_now()
    for name in names:
        assert remote_ref(git_server, remote, name) is not None
    await a.stop(10)
    await b.stop(10)


def test_a_later_rescue_of_the_same_files_supersedes_an_earlier_one(tmp_path: Path) -> None:
    """Two sessions bouncing one file make one rescue per bounce; one that a later rescue of
    the same files grew from goes (its commit stays in the later one's history). A rescue
    with nothing recorded, or of other files, stays."""
    git = pygit2.init_repository(str(tmp_path / "repo"))
    rescues = RescueBranches(git, tmp_path / "private")
    first = _commit(git, {"f.txt": b"1"}, [])
    second = _commit(git, {"f.txt": b"2"}, [first])
    elsewhere = _commit(git, {"g.txt": b"g"}, [first])
    tip = _commit(git, {"f.txt": b"the tip's"}, [])
    rescues.add(f"refs/heads/{BRANCH}-rescue-1", first, ["f.txt"], pushed=True)
    rescues.add(f"refs/heads/{BRANCH}-rescue-2", second, ["f.txt"], pushed=True)
    rescues.add(f"refs/heads/{BRANCH}-rescue-3", elsewhere, ["g.txt"], pushed=False)
    rescues.add(f"refs/heads/{BRANCH}-rescue-4", first, [], pushed=False)
    rescues.add("refs/heads/other-rescue-1", first, ["f.txt"], pushed=False)
    settled = rescues.settled(BRANCH, tip)
    assert [r.name for r in settled] == [f"{BRANCH}-rescue-1"]
    # all of it is recorded on disk: a new session sees the same
    again = RescueBranches(git, tmp_path / "private")
    assert [r.name for r in again.settled(BRANCH, tip)] == [f"{BRANCH}-rescue-1"]
    assert again.unpushed() == [
        f"refs/heads/{BRANCH}-rescue-3",
        f"refs/heads/{BRANCH}-rescue-4",
        "refs/heads/other-rescue-1",
    ]
    # the tip takes the second version back: that one is merged, the first superseded
    assert {r.name for r in again.settled(BRANCH, second)} == {
        f"{BRANCH}-rescue-1",
        f"{BRANCH}-rescue-2",
    }
    # a ref deleted by hand is forgotten; a broken registry is started afresh
    git.references.delete(f"refs/heads/{BRANCH}-rescue-3")
    assert f"{BRANCH}-rescue-3" not in [
        r.name for r in RescueBranches(git, tmp_path / "private").of(BRANCH)
    ]
    (tmp_path / "private" / "rescues.json").write_text("{not json")
    assert RescueBranches(git, tmp_path / "private").of(BRANCH) == []


def test_a_hostile_rescue_trailer_names_no_branch_of_ours(
    tmp_path: Path,
    clone_into: Callable[[Path], Path],
    git_server: GitHTTPServer,
    remote: str,
    remote_url: str,
    token: str,
) -> None:
    """The displaced session learns the rescue branch's name from the merge's message, which
    anyone who can push writes. A name that is not a rescue branch of this sync branch is not
    taken (so it is never listed, nor deleted later)."""
    a = LocalSession(clone_into(tmp_path / "a"), BRANCH)
    (a.workspace / "notes.txt").write_text("A's version\n")
    a.snapshot(None)
    a.push(remote_url, lambda: token)
    main_before = ref_or_none(a.workspace, "refs/heads/main")
    for hostile in ("main", BRANCH, "../../config", f"{BRANCH}-rescue-x"):
        hostile_merge = _hostile_merge(git_server.repo_path(remote), hostile)
        told = a.restore(remote_url, lambda: token)
        assert told.conflicts == ["notes.txt"], hostile
        assert ref_or_none(a.workspace, "refs/heads/main") == main_before
        names = [r.name for r in a.repo.rescues.of(BRANCH)]
        if hostile == f"{BRANCH}-rescue-x":  # a valid name: listed, pointing at A's commit
            assert names == [hostile]
            assert show(a.workspace, f"refs/heads/{hostile}", "notes.txt") == b"A's version\n"
        else:
            assert names == [], hostile
        # the next round: A saves its version again on top
        (a.workspace / "notes.txt").write_text("A's version\n")
        a.snapshot(None)
        a.push(remote_url, lambda: token)
        assert hostile_merge


def _hostile_merge(bare: Path, rescue: str) -> str:
    """Push to the sync branch a merge that displaces its tip's notes.txt, naming `rescue`."""
    git = pygit2.Repository(str(bare))
    tip = git.references[f"refs/heads/{BRANCH}"].target
    tree = git[tip].peel(pygit2.Tree)
    builder = git.TreeBuilder(tree)
    builder.insert("notes.txt", git.create_blob(b"the other side\n"), pygit2.GIT_FILEMODE_BLOB)
    side = git.create_commit(
        None, *_signatures(), "the other session's snapshot\n", builder.write(), [tip]
    )
    message = f"Merge\n\n{KEPT_PREFIX}notes.txt\n\n{RESCUE_TRAILER}: {rescue}\n"
    merge = git.create_commit(None, *_signatures(), message, builder.write(), [side, tip])
    git.references.create(f"refs/heads/{BRANCH}", merge, force=True)  # a fast-forward
    return str(merge)


def _signatures() -> tuple[pygit2.Signature, pygit2.Signature]:
    return pygit2.Signature("B", "b@example.org"), pygit2.Signature(SIGNATURE_NAME, SIGNATURE_EMAIL)


def _commit(
    git: pygit2.Repository, files: dict[str, bytes], parents: list[pygit2.Oid]
) -> pygit2.Oid:
    builder = git.TreeBuilder()
    for name, data in files.items():
        builder.insert(name, git.create_blob(data), pygit2.GIT_FILEMODE_BLOB)
    return git.create_commit(None, *_signatures(), "snapshot\n", builder.write(), parents)
