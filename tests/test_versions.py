"""Versions (jupyter_gitsync.versions): names, tags, what is pushed, what a restore brings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pygit2
import pytest

from jupyter_gitsync import history, versions
from jupyter_gitsync.auth import Credentials
from jupyter_gitsync.engine import EngineConfig, SyncEngine
from jupyter_gitsync.errors import ConfigError, NotFound
from jupyter_gitsync.transport import RemoteHeads
from tests.gitserver import GitHTTPServer
from tests.helpers import (
    LocalSession,
    MutableToken,
    async_wait_until,
    git,
    ref_or_none,
    show,
)

BRANCH = "gitsync/ada"


@pytest.fixture
def session(workspace: Path) -> LocalSession:
    return LocalSession(workspace, BRANCH)


def tip_of(session: LocalSession) -> pygit2.Oid:
    (session.workspace / "a.txt").write_text(f"{len(list(session.workspace.iterdir()))}\n")
    assert session.snapshot(None) is not None
    tip = session.repo.tip()
    assert tip is not None
    return tip


def name(session: LocalSession, label: str, message: str = "", at: pygit2.Oid | None = None):
    return versions.create(
        session.repo.repo,
        BRANCH,
        label,
        message,
        at or tip_of(session),
        versions.tagger_now("Test User", "test@example.org"),
    )


@pytest.mark.parametrize(
    "bad",
    ["", " ", "a..b", "x.lock", "a" * 101, "a b", "a/b", "/a", "a/", "-a", ".a", "a~", "a^",
     "a:b", "a?", "a*", "a[", "a\\b", "a\x00", "a\x7f", "@{x}", "a@{1}", "\u00e9\x01"],
)  # fmt: skip
def test_names_git_refuses_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError):
        versions.validate_name(BRANCH, bad)


@pytest.mark.parametrize("good", ["draft-1", "v1.0", "submitted_2026-12-01", "é-accent", "a" * 100])
def test_good_names(good: str) -> None:
    assert versions.validate_name(BRANCH, good) == f"refs/tags/{BRANCH}/{good}"


def test_a_version_is_an_annotated_tag_under_the_branch(session: LocalSession) -> None:
    made = name(session, "draft-1", "First draft\n\nwith details")
    ref = f"refs/tags/{BRANCH}/draft-1"
    assert git(session.workspace, "cat-file", "-t", ref) == "tag"
    assert git(session.workspace, "rev-parse", f"{ref}^{{commit}}") == made.sha
    assert made.message == "First draft\n\nwith details" and made.time is not None
    assert ref_or_none(session.workspace, f"refs/heads/{BRANCH}") == made.sha  # branch intact
    assert [v.name for v in versions.list_versions(session.repo.repo, BRANCH)] == ["draft-1"]
    assert versions.unpushed(session.repo.repo, BRANCH) == {
        ref: f"refs/gitsync/versions/{BRANCH}/draft-1"
    }


def test_an_existing_name_changes_nothing(session: LocalSession) -> None:
    first = name(session, "same", "first")
    tip = tip_of(session)
    with pytest.raises(ConfigError, match="already"):
        name(session, "same", "second", at=tip)
    listed = versions.list_versions(session.repo.repo, BRANCH)
    assert [(v.name, v.sha, v.message) for v in listed] == [("same", first.sha, "first")]
    with pytest.raises(NotFound):
        name(session, "nowhere", at=pygit2.Oid(hex="2" * 40))
    assert [v.name for v in versions.list_versions(session.repo.repo, BRANCH)] == ["same"]


def test_versions_of_other_branches_and_odd_tags_are_not_listed(session: LocalSession) -> None:
    name(session, "mine")
    tip = str(tip_of(session))
    git(session.workspace, "tag", "gitsync/bob/theirs", tip)
    git(session.workspace, "tag", "release", tip)
    git(session.workspace, "tag", f"{BRANCH}/nested/deeper", tip)
    git(session.workspace, "tag", f"{BRANCH}/light", tip)  # lightweight: listed, no message
    listed = {v.name: v for v in versions.list_versions(session.repo.repo, BRANCH)}
    assert set(listed) == {"mine", "light"}
    assert listed["light"].message == "" and listed["light"].sha == tip


def test_a_hostile_tag_message_is_shortened_and_printable(session: LocalSession) -> None:
    tip = tip_of(session)
    hostile = "evil\x1b[2J" + "z" * 20_000
    session.repo.repo.create_tag(
        f"{BRANCH}/loud", tip, pygit2.enums.ObjectType.COMMIT,
        pygit2.Signature("x", "x@example.org"), hostile,
    )  # fmt: skip
    (listed,) = versions.list_versions(session.repo.repo, BRANCH)
    assert "\x1b" not in listed.message and len(listed.message) <= versions.MAX_MESSAGE_CHARS


def test_what_a_restore_fetches(session: LocalSession) -> None:
    here = name(session, "here")
    oid = pygit2.Oid(hex="3" * 40)
    heads = RemoteHeads(
        refs={
            f"refs/tags/{BRANCH}/here": pygit2.Oid(hex="4" * 40),  # same name here: never replaced
            f"refs/tags/{BRANCH}/new": oid,
            f"refs/tags/{BRANCH}/new^{{}}": oid,
            f"refs/tags/{BRANCH}/bad..name": oid,
            f"refs/tags/{BRANCH}/a/b": oid,
            "refs/tags/gitsync/bob/x": oid,
        },
        default_branch=None,
    )
    wanted = versions.wanted(heads, session.repo.repo, BRANCH)
    assert {(w.remote_ref, w.local_ref) for w in wanted} == {
        (f"refs/tags/{BRANCH}/new", f"refs/tags/{BRANCH}/new"),
        (f"refs/tags/{BRANCH}/new", f"refs/gitsync/versions/{BRANCH}/new"),
    }
    assert here.name == "here"


def test_versions_survive_a_restore_into_an_empty_directory(
    tmp_path: Path, session: LocalSession, remote_url: str, token: str, git_server: GitHTTPServer,
    remote: str,
) -> None:  # fmt: skip
    made = name(session, "submitted", "As submitted")
    session.push(remote_url, lambda: token)
    refs = versions.unpushed(session.repo.repo, BRANCH)
    session.transport.push(remote_url, lambda: token, refs)  # as the engine's push does
    assert versions.unpushed(session.repo.repo, BRANCH) == {}
    tag = f"refs/tags/{BRANCH}/submitted"
    assert ref_or_none(git_server.repo_path(remote), tag) is not None
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    restored = LocalSession(fresh, BRANCH)
    restored.restore(remote_url, lambda: token)
    listed = versions.list_versions(restored.repo.repo, BRANCH)
    assert [(v.name, v.sha, v.message, v.pushed) for v in listed] == [
        ("submitted", made.sha, "As submitted", True)
    ]
    marks = versions.by_commit(listed)
    page = history.read_history(
        restored.repo.repo, restored.repo.gitdir, BRANCH, None, 50, None, marks
    )
    assert page.entries[0].versions == ("submitted",)


async def test_a_name_the_remote_holds_otherwise_is_kept_here_and_not_retried(
    tmp_path: Path,
    clone_into: Callable[[Path], Path],
    remote_url: str,
    token: str,
    git_server: GitHTTPServer,
    remote: str,
) -> None:
    """Two sessions named different snapshots alike: the remote keeps the first; the other
    stays local (never forced), and the engine does not push it again and again."""
    other = LocalSession(clone_into(tmp_path / "other"), BRANCH)
    theirs = name(other, "same", "theirs")
    other.push(remote_url, lambda: token)
    other.transport.push(remote_url, lambda: token, versions.unpushed(other.repo.repo, BRANCH))
    other.close()
    bare = git_server.repo_path(remote)
    tag = f"refs/tags/{BRANCH}/same"
    remote_tag = ref_or_none(bare, tag)
    workspace = clone_into(tmp_path / "mine")
    engine = SyncEngine(
        EngineConfig(
            workspace=workspace, branch=BRANCH, remote_url=remote_url,
            commit_delay_seconds=0.1, push_interval_seconds=0.0,
            retry_initial_seconds=0.2, retry_max_seconds=1.0,
        ),
        Credentials([MutableToken(token)]),
    )  # fmt: skip
    await engine.start()
    try:
        await async_wait_until(lambda: engine.status.state.value == "synced", what="start-up")
        # the restore brought their version: the same name is now taken here too
        assert [v["name"] for v in (await engine.list_versions())["versions"]] == ["same"]
        with pytest.raises(ConfigError):
            await engine.save_version("same", "mine", None)
        # a tag made here meanwhile by hand (as an old session would have): never forced
        git(workspace, "tag", "-d", f"{BRANCH}/same")
        git(workspace, "tag", "-a", "-m", "mine", f"{BRANCH}/same", f"refs/heads/{BRANCH}")
        (workspace / "b.txt").write_text("b")
        await async_wait_until(
            lambda: show(bare, f"refs/heads/{BRANCH}", "b.txt"), what="the branch pushed"
        )
        await engine.sync_now()  # after the push job that tried the version too
        assert ref_or_none(bare, tag) == remote_tag
        assert git(bare, "rev-parse", f"{tag}^{{commit}}") == theirs.sha
        git_server.clear_requests()
        await engine.sync_now()
        await engine.sync_now()
        pushes = [r for r in git_server.requests if "receive-pack" in r.path]
        assert pushes == []  # the refused version is not pushed again and again
    finally:
        await engine.stop(5)


def test_a_snapshot_by_its_id_or_a_versions_name(session: LocalSession) -> None:
    made = name(session, "submitted")
    repo = session.repo.repo
    assert str(versions.resolve(repo, BRANCH, "submitted")) == made.sha
    assert str(versions.resolve(repo, BRANCH, made.sha)) == made.sha
    with pytest.raises(NotFound):
        versions.resolve(repo, BRANCH, "no-such-version")
    with pytest.raises(NotFound):
        versions.resolve(repo, BRANCH, "5" * 40)
    for bad in ("a..b", "HEAD~1", "", "abc/def"):
        with pytest.raises(ConfigError):
            versions.resolve(repo, BRANCH, bad)
