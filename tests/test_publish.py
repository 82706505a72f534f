"""Publish as a pull request, through the REST API of a real Jupyter server (pytest-jupyter),
with the real git server behind the GitHub stand-in (or alone, as a remote off GitHub)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pygit2
import pytest
from tornado.httpclient import HTTPClientError

from jupyter_gitsync import filters
from jupyter_gitsync.app import GitSync
from jupyter_gitsync.auth import github as github_api
from jupyter_gitsync.publish import (
    PUBLISHED_TRAILER,
    Base,
    Request,
    make_commit,
    published_from,
    published_tree,
)
from tests.github_stub import GitHubStub
from tests.gitserver import GitHTTPServer
from tests.helpers import (
    LocalSession,
    async_wait_until,
    files,
    git,
    ref_or_none,
    show,
    user_git_state,
)
from tests.helpers import start_extensions as start

ROOT = Path(__file__).resolve().parent.parent
BRANCH = "gitsync/ada"
UPSTREAM = "octo/project"
BASE_FILES = {"README.md": b"# Project\n", "old.txt": b"to be deleted\n"}
_ENV = (
    "GITSYNC_TOKEN",
    "GITHUB_TOKEN",
    "JUPYTERHUB_API_URL",
    "JUPYTERHUB_API_TOKEN",
    "GITSYNC_CLIENT_ID",
    "GITSYNC_GITHUB_URL",
    "GITSYNC_GITHUB_API_URL",
    "GITSYNC_EXCLUDES",
)


@pytest.fixture
def github(git_server: GitHTTPServer, token: str) -> Any:
    """GitHub's stand-in, its repositories in the real git server; the test's token is ada's."""
    stub = GitHubStub().start()
    stub.git = git_server
    stub.add_user_token("ada", token=token)
    yield stub
    stub.stop()


@pytest.fixture
def upstream_pushers() -> set[str]:
    return {"ada"}


@pytest.fixture
def remote(git_server: GitHTTPServer, github: GitHubStub, upstream_pushers: set[str]) -> str:
    git_server.create_repo(UPSTREAM, BASE_FILES)
    github.add_repo("octo", "project", pushers=upstream_pushers)
    return UPSTREAM


@pytest.fixture
def on_github() -> bool:
    return True


@pytest.fixture
def remote_url(git_server: GitHTTPServer, github: GitHubStub, remote: str, on_github: bool) -> str:
    return f"{github.url}/{remote}.git" if on_github else git_server.repo_url(remote)


@pytest.fixture
def settings() -> dict[str, Any]:
    """GitSync settings a test adds."""
    return {}


@pytest.fixture
def jp_root_dir(workspace: Path) -> Path:
    return workspace


@pytest.fixture
def jp_server_config(
    remote_url: str,
    github: GitHubStub,
    token: str,
    settings: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GITSYNC_TOKEN", token)
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_gitsync": True},
            "allow_unauthenticated_access": False,
        },
        "GitSync": {
            "remote_url": remote_url,
            "branch": BRANCH,
            "commit_delay_seconds": 0.2,
            "push_interval_seconds": 0.0,
            "retry_initial_seconds": 0.2,
            "retry_max_seconds": 1.0,
            "github_url": github.url,
            "github_api_url": github.url,
            "excludes": [*filters.DEFAULT_EXCLUDES, "*.log"],
            **settings,
        },
    }


class Api:
    """jp_fetch for our routes; keeps every answer for the token check."""

    def __init__(self, jp_fetch: Any) -> None:
        self.fetch = jp_fetch
        self.answers: list[str] = []

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if method == "GET" else (body if isinstance(body, str) else json.dumps(body))
        try:
            response = await self.fetch("gitsync", path, method=method, body=data)
        except HTTPClientError as exc:
            assert exc.response is not None
            text = exc.response.body.decode()
            self.answers.append(text)
            return exc.code, json.loads(text)
        text = response.body.decode()
        self.answers.append(text)
        return response.code, json.loads(text)

    async def publish(self, **fields: Any) -> tuple[int, Any]:
        return await self.call("POST", "publish", fields)

    async def synced(self) -> dict[str, Any] | None:
        _, status = await self.call("GET", "status")
        done = status["state"] == "synced" and status["head"] == status["remote_head"]
        return status if done else None


def tree_files(bare: Path, commit: str) -> dict[str, bytes]:
    """Every file of `commit`'s tree in the bare repository, with its bytes."""
    names = git(bare, "ls-tree", "-r", "--name-only", commit).splitlines()
    return {name: show(bare, commit, name) or b"" for name in names}


def parents(bare: Path, commit: str) -> list[str]:
    return git(bare, "rev-list", "--parents", "-n", "1", commit).split()[1:]


def branches(bare: Path) -> dict[str, str]:
    """The remote's branches but the sync branch (which moves by itself)."""
    listed = git(bare, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/")
    refs = dict(line.split() for line in listed.splitlines())
    return {ref: sha for ref, sha in refs.items() if not ref.startswith("refs/heads/gitsync/")}


def pull_requests_asked(github: GitHubStub) -> list[dict[str, str]]:
    return [
        form
        for method, path, form in github.requests
        if method == "POST" and path.endswith("/pulls")
    ]


def excluded_but_synced(workspace: Path) -> None:
    """A file synced by an earlier session that this server's settings exclude (*.log): it
    stays in the sync index, so it is in every snapshot; publishing must leave it out."""
    (workspace / "scratch.log").write_text("synced before it was excluded\n")
    session = LocalSession(workspace, BRANCH)
    assert session.snapshot(None) is not None
    session.close()


async def test_publish_makes_one_commit_on_the_base_and_opens_a_pull_request(
    jp_serverapp: Any,
    jp_fetch: Any,
    extension: GitSync,
    workspace: Path,
    git_server: GitHTTPServer,
    github: GitHubStub,
    token: str,
) -> None:
    """The commit's parent is the commit the work started from, its tree the workspace's
    less excluded files, its author the user; the pull request goes from the branch into
    the user's branch; publishing again adds a commit on top and answers the same pull
    request (GitHub's 422 for an existing one); the user's git state is untouched."""
    bare = git_server.repo_path(UPSTREAM)
    base = git(workspace, "rev-parse", "HEAD")
    excluded_but_synced(workspace)
    (workspace / "old.txt").unlink()
    (workspace / "README.md").write_text("# Project\n\nWith results.\n")
    (workspace / "analysis.ipynb").write_text('{"cells": ["first"]}\n')
    (workspace / "data" / "deep").mkdir(parents=True)
    (workspace / "data" / "deep" / "x.csv").write_bytes(b"a,b\n1,2\n")
    (workspace / "build.log").write_text("never synced\n")
    before = user_git_state(workspace, BRANCH)
    api = Api(jp_fetch)
    await start(jp_serverapp)
    await async_wait_until(api.synced, what="the first sync")
    assert show(bare, f"refs/heads/{BRANCH}", "scratch.log") is not None  # in the snapshots

    code, answer = await api.publish(
        branch="my-analysis", title="My analysis", body="What I found.\n\nWith data."
    )
    assert code == 200, answer
    commit = answer["commit"]
    assert answer["branch"] == "my-analysis"
    assert ref_or_none(bare, "refs/heads/my-analysis") == commit
    assert parents(bare, commit) == [base]
    wanted = {k: v for k, v in files(workspace).items() if not k.endswith(".log")}
    assert tree_files(bare, commit) == wanted
    assert "old.txt" not in wanted and "data/deep/x.csv" in wanted
    assert git(bare, "log", "-1", "--format=%B", commit) == (
        f"My analysis\n\nWhat I found.\n\nWith data.\n\n{PUBLISHED_TRAILER}: {BRANCH}"
    )
    assert git(bare, "log", "-1", "--format=%an <%ae>|%cn <%ce>", commit) == (
        "Test User <test@example.org>|Test User <test@example.org>"
    )
    assert answer["pull_request_url"] == f"{github.url}/{UPSTREAM}/pull/1"
    assert "Opened a pull request into main of octo/project" in answer["message"]
    [pull] = github.pulls
    assert (pull.repo, pull.head_owner, pull.head_ref, pull.base) == (
        UPSTREAM,
        "octo",
        "my-analysis",
        "main",
    )
    assert pull.title == "My analysis" and pull.body == "What I found.\n\nWith data."
    assert pull.head_sha == commit
    assert pull_requests_asked(github)[0]["head"] == "my-analysis"

    # Again, with more work: one more commit on top, and the pull request that is open.
    (workspace / "analysis.ipynb").write_text('{"cells": ["second"]}\n')
    code, again = await api.publish(branch="my-analysis", title="My analysis, updated", body="")
    assert code == 200, again
    assert parents(bare, again["commit"]) == [commit]
    assert show(bare, again["commit"], "analysis.ipynb") == b'{"cells": ["second"]}\n'
    assert again["pull_request_url"] == answer["pull_request_url"]
    assert "Its pull request into main of octo/project shows it" in again["message"]
    assert len(github.pulls) == 1 and len(pull_requests_asked(github)) == 2

    # Nothing new: nothing pushed, the same pull request.
    code, same = await api.publish(branch="my-analysis", title="My analysis")
    assert code == 200 and same["commit"] == again["commit"]
    assert "nothing new was pushed" in same["message"]

    assert user_git_state(workspace, BRANCH) == before
    assert git(workspace, "for-each-ref", "refs/gitsync/publish/", "refs/gitsync/fetched/") == ""
    assert all(token not in text for text in api.answers)


@pytest.mark.parametrize("upstream_pushers", [set()])
async def test_from_a_fork_the_pull_request_goes_upstream_with_the_owner_in_its_head(
    jp_serverapp: Any,
    jp_fetch: Any,
    workspace: Path,
    git_server: GitHTTPServer,
    github: GitHubStub,
) -> None:
    """ada may not push to octo/project and syncs to her fork: the branch goes to the fork,
    the pull request to octo/project with the head ada:<branch>."""
    github.add_fork(UPSTREAM, "ada")
    api = Api(jp_fetch)
    await start(jp_serverapp)
    fork_url = f"{github.url}/ada/project.git"
    (workspace / "work.txt").write_text("mine\n")
    status = await async_wait_until(lambda: _synced_to(api, fork_url), what="syncing to the fork")
    assert status["remote_url"] == fork_url

    code, answer = await api.publish(branch="topic", title="A topic", body="From my fork.")
    assert code == 200, answer
    fork, upstream = git_server.repo_path("ada/project"), git_server.repo_path(UPSTREAM)
    assert ref_or_none(fork, "refs/heads/topic") == answer["commit"]
    assert ref_or_none(upstream, "refs/heads/topic") is None
    [pull] = github.pulls
    assert (pull.repo, pull.head_owner, pull.head_repo, pull.base) == (
        UPSTREAM,
        "ada",
        "ada/project",
        "main",
    )
    assert pull_requests_asked(github)[0]["head"] == "ada:topic"
    assert answer["pull_request_url"] == f"{github.url}/{UPSTREAM}/pull/1"


@pytest.mark.parametrize("upstream_pushers", [set()])
async def test_without_push_access_or_a_fork_publishing_says_to_fork(
    jp_serverapp: Any, jp_fetch: Any, workspace: Path, git_server: GitHTTPServer
) -> None:
    api = Api(jp_fetch)
    (workspace / "work.txt").write_text("mine\n")
    await start(jp_serverapp)
    await async_wait_until(lambda: _error_kind(api, "permission"), what="the refused push")
    bare = git_server.repo_path(UPSTREAM)
    before = branches(bare)
    code, answer = await api.publish(branch="topic", title="A topic")
    assert code == 409 and answer["kind"] == "permission", answer
    assert "cannot push to octo/project" in answer["message"] and "Fork it" in answer["message"]
    assert branches(bare) == before


async def _error_kind(api: Api, kind: str) -> dict[str, Any] | None:
    _, status = await api.call("GET", "status")
    return status if (status["error"] or {}).get("kind") == kind else None


async def _synced_to(api: Api, url: str) -> dict[str, Any] | None:
    status = await api.synced()
    return status if status is not None and status["remote_url"] == url else None


@pytest.mark.parametrize("on_github", [False])
async def test_off_github_the_branch_is_pushed_and_no_pull_request_is_opened(
    jp_serverapp: Any,
    jp_fetch: Any,
    workspace: Path,
    git_server: GitHTTPServer,
    github: GitHubStub,
    remote_url: str,
) -> None:
    api = Api(jp_fetch)
    (workspace / "work.txt").write_text("mine\n")
    await start(jp_serverapp)
    await async_wait_until(api.synced, what="the first sync")
    code, answer = await api.publish(branch="results", title="Results")
    assert code == 200, answer
    assert answer["pull_request_url"] is None
    assert f"Pushed the branch results to {remote_url}" in answer["message"]
    assert "not on GitHub, so no pull request was opened" in answer["message"]
    bare = git_server.repo_path(UPSTREAM)
    assert ref_or_none(bare, "refs/heads/results") == answer["commit"]
    assert show(bare, answer["commit"], "work.txt") == b"mine\n"
    assert pull_requests_asked(github) == [] and github.pulls == []


async def test_bad_requests_are_refused_and_nothing_is_pushed(
    jp_serverapp: Any,
    jp_fetch: Any,
    workspace: Path,
    git_server: GitHTTPServer,
    github: GitHubStub,
    token: str,
) -> None:
    bare = git_server.repo_path(UPSTREAM)
    git(bare, "branch", "taken", "main")  # someone else's branch
    who = {"GIT_AUTHOR_NAME": "Eve", "GIT_AUTHOR_EMAIL": "eve@example.org"}
    who |= {"GIT_COMMITTER_NAME": "Eve", "GIT_COMMITTER_EMAIL": "eve@example.org"}
    message = f"Someone's\n\n{PUBLISHED_TRAILER}: gitsync/eve"
    forged = subprocess.run(
        ["git", "-C", str(bare), "commit-tree", "main^{tree}", "-p", "main", "-m", message],
        env={**os.environ, **who},
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    git(bare, "branch", "eves", forged)  # published from another sync branch
    api = Api(jp_fetch)
    (workspace / "work.txt").write_text("mine\n")
    await start(jp_serverapp)
    await async_wait_until(api.synced, what="the first sync")
    remote_before = branches(bare)
    ok = {"title": "A title", "body": ""}
    refused: list[tuple[dict[str, Any], str]] = [
        ({"branch": "", **ok}, "not a name git takes"),
        ({"branch": "two..dots", **ok}, "not a name git takes"),
        ({"branch": "with space", **ok}, "not a name git takes"),
        ({"branch": "-dash", **ok}, "not a name git takes"),
        ({"branch": "ends.lock", **ok}, "not a name git takes"),
        ({"branch": "a/", **ok}, "not a name git takes"),
        ({"branch": BRANCH, **ok}, "the branch this workspace syncs to"),
        ({"branch": "gitsync/other", **ok}, "belong to the sync"),
        ({"branch": f"{BRANCH}-rescue-1", **ok}, "belong to the sync"),
        ({"branch": "main", **ok}, "the branch your work is based on"),
        ({"branch": "taken", **ok}, "exists on the remote and was not published from"),
        ({"branch": "eves", **ok}, "exists on the remote and was not published from"),
        ({"branch": "fine", "title": ""}, "needs a title"),
        ({"branch": "fine", "title": "   "}, "needs a title"),
        ({"branch": "fine", "title": "x" * 257}, "longer than 256"),
        ({"branch": "fine", "title": "two\nlines"}, "one line"),
        ({"branch": "fine", "title": "t", "body": "a\0b"}, "NUL"),
        ({"branch": "fine", "title": "t", "body": 3}, "Send JSON like"),
        ({"branch": "fine"}, "Send JSON like"),
        ({"branch": ["fine"], "title": "t"}, "Send JSON like"),
    ]
    for fields, why in refused:
        code, answer = await api.publish(**fields)
        assert code == 400, (fields, answer)
        assert why in answer["message"], (fields, answer)
    for body in ("not json", "[1, 2]", '"just a string"'):
        code, answer = await api.call("POST", "publish", body)
        assert code == 400 and "Send JSON like" in answer["message"]
    for source in ("0" * 40, "nope", "main", "../x"):
        code, answer = await api.publish(branch="fine", title="t", source=source)
        assert code == 404, (source, answer)
        assert "no snapshot or version" in answer["message"]
    assert branches(bare) == remote_before
    assert pull_requests_asked(github) == []
    assert all(token not in text for text in api.answers)
    assert (await api.synced()) is not None  # and syncing goes on


async def test_a_version_or_an_earlier_snapshot_is_published_as_it_was(
    jp_serverapp: Any, jp_fetch: Any, workspace: Path, git_server: GitHTTPServer
) -> None:
    api = Api(jp_fetch)
    (workspace / "work.txt").write_text("first\n")
    await start(jp_serverapp)
    first = await async_wait_until(api.synced, what="the first sync")
    git(workspace, "tag", "-a", f"{BRANCH}/v1", "-m", "the first version", first["head"])
    (workspace / "work.txt").write_text("second\n")
    await async_wait_until(
        lambda: _head_holds(api, git_server, "work.txt", b"second\n"), what="the second"
    )
    bare = git_server.repo_path(UPSTREAM)
    code, answer = await api.publish(branch="from-version", title="V1", source="v1")
    assert code == 200, answer
    assert show(bare, answer["commit"], "work.txt") == b"first\n"
    code, answer = await api.publish(branch="from-sha", title="Old", source=first["head"][:10])
    assert code == 200, answer
    assert show(bare, answer["commit"], "work.txt") == b"first\n"
    assert (workspace / "work.txt").read_text() == "second\n"  # the workspace stays as it is


async def _head_holds(
    api: Api, git_server: GitHTTPServer, path: str, content: bytes
) -> dict[str, Any] | None:
    status = await api.synced()
    bare = git_server.repo_path(UPSTREAM)
    return status if status and show(bare, status["head"], path) == content else None


@pytest.mark.parametrize("status", [401, 403, 500])
async def test_when_github_refuses_the_branch_is_pushed_and_the_message_says_so(
    jp_serverapp: Any,
    jp_fetch: Any,
    workspace: Path,
    git_server: GitHTTPServer,
    github: GitHubStub,
    token: str,
    status: int,
) -> None:
    api = Api(jp_fetch)
    (workspace / "work.txt").write_text("mine\n")
    await start(jp_serverapp)
    await async_wait_until(api.synced, what="the first sync")
    if status == 401:
        github.revoke(token)  # GitHub no longer takes it (the git server still does)
    else:
        github.fail[f"POST /repos/{UPSTREAM}/pulls"] = status
    code, answer = await api.publish(branch="results", title="Results")
    assert code == {401: 401, 403: 409, 500: 502}[status], answer
    assert "The branch results was pushed to" in answer["message"]
    assert "the pull request was not opened" in answer["message"]
    said = {401: "refused the token", 403: "does not let this account", 500: "HTTP 500"}
    assert said[status] in answer["message"]
    bare = git_server.repo_path(UPSTREAM)
    pushed = ref_or_none(bare, "refs/heads/results")
    assert pushed is not None and github.pulls == []
    # Once GitHub takes it again, publishing again opens the pull request for that commit.
    github.fail.clear()
    github.add_user_token("ada", token=token)
    code, again = await api.publish(branch="results", title="Results")
    assert code == 200, again
    assert again["commit"] == pushed and again["pull_request_url"] is not None
    assert all(token not in text for text in api.answers)


async def test_a_remote_that_is_down_or_hung_fails_plainly_and_syncing_goes_on(
    jp_serverapp: Any,
    jp_fetch: Any,
    extension: GitSync,
    workspace: Path,
    git_server: GitHTTPServer,
    github: GitHubStub,
    token: str,
) -> None:
    api = Api(jp_fetch)
    (workspace / "work.txt").write_text("mine\n")
    await start(jp_serverapp)
    await async_wait_until(api.synced, what="the first sync")
    bare = git_server.repo_path(UPSTREAM)
    git_server.stop()
    code, answer = await api.publish(branch="results", title="Results")
    assert code == 502 and "could not be reached" in answer["message"], answer
    git_server.start()
    assert ref_or_none(bare, "refs/heads/results") is None

    extension.engine._net.stall_seconds = 1.0  # a remote that stops answering, given up on soon
    git_server.delay_seconds = 30.0
    code, answer = await api.publish(branch="results", title="Results")
    assert code == 502 and "stopped answering" in answer["message"], answer
    git_server.delay_seconds = 0.0
    extension.engine._net.stall_seconds = 30.0
    assert ref_or_none(bare, "refs/heads/results") is None and github.pulls == []

    (workspace / "later.txt").write_text("saved and pushed all the same\n")
    await async_wait_until(
        lambda: _head_holds(api, git_server, "later.txt", b"saved and pushed all the same\n"),
        what="syncing after the failures",
    )
    code, answer = await api.publish(branch="results", title="Results")
    assert code == 200, answer
    assert all(token not in text for text in api.answers)


async def test_snapshots_go_on_while_github_is_slow_and_a_hung_github_is_given_up_on(
    jp_serverapp: Any,
    jp_fetch: Any,
    extension: GitSync,
    workspace: Path,
    git_server: GitHTTPServer,
    github: GitHubStub,
    token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While the publish job waits for GitHub's API, saves are snapshotted (invariant 4); an
    API that never answers ends at its deadline with a plain message, the branch pushed."""
    api = Api(jp_fetch)
    (workspace / "work.txt").write_text("mine\n")
    await start(jp_serverapp)
    await async_wait_until(api.synced, what="the first sync")
    held = github.hold[f"POST /repos/{UPSTREAM}/pulls"] = threading.Event()
    publishing = asyncio.ensure_future(api.publish(branch="results", title="Results"))
    await async_wait_until(lambda: pull_requests_asked(github), what="the pull request asked")
    (workspace / "meanwhile.txt").write_text("saved while GitHub is slow\n")
    await async_wait_until(
        lambda: show(workspace, BRANCH, "meanwhile.txt"), what="a snapshot meanwhile"
    )
    assert not publishing.done()  # still waiting for GitHub (20 s at most)
    held.set()
    code, answer = await publishing
    assert code == 200 and answer["pull_request_url"] is not None, answer

    monkeypatch.setattr(github_api, "TIMEOUT_SECONDS", 1.0)  # GitHub's deadline, made short
    github.hold[f"POST /repos/{UPSTREAM}/pulls"] = threading.Event()  # never answers
    code, answer = await api.publish(branch="more-results", title="More")
    assert code == 502, answer
    assert "The branch more-results was pushed" in answer["message"]
    assert "GitHub could not be reached" in answer["message"]
    assert token not in answer["message"]
    assert ref_or_none(git_server.repo_path(UPSTREAM), "refs/heads/more-results") is not None


# -- the commit, without a server -----------------------------------------------------------


def test_excluded_and_withheld_paths_keep_what_the_base_has(tmp_path: Path) -> None:
    """Only the user's work differs from the base: an excluded path the snapshot changed and
    a withheld one keep the base's version; excluded files the base lacks are left out."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    git(workspace, "init", "-q", "-b", "main")
    git(workspace, "config", "user.name", "Test User")
    git(workspace, "config", "user.email", "test@example.org")
    (workspace / "cache").mkdir()
    (workspace / "cache" / "kept.bin").write_text("base's\n")
    (workspace / ".bashrc").write_text("base's rc\n")
    (workspace / "work.txt").write_text("base\n")
    git(workspace, "add", "-A")
    git(workspace, "commit", "-q", "-m", "base")
    base = pygit2.Oid(hex=git(workspace, "rev-parse", "HEAD"))
    session = LocalSession(workspace, BRANCH)
    (workspace / "cache" / "kept.bin").write_text("changed locally\n")
    (workspace / "cache" / "new.bin").write_text("new\n")
    (workspace / ".bashrc").write_text("the remote's rc\n")
    (workspace / "work.txt").write_text("work\n")
    snapshot = session.snapshot(None)
    assert snapshot is not None
    oid = pygit2.Oid(hex=snapshot.commit)
    tree = published_tree(session.repo, oid, base, ("cache",), {".bashrc": "withheld"})
    published = session.repo.repo[tree].peel(pygit2.Tree)
    based = session.repo.repo[base].peel(pygit2.Commit).tree
    assert published["cache/kept.bin"].id == based["cache/kept.bin"].id
    assert published[".bashrc"].id == based[".bashrc"].id
    assert "cache/new.bin" not in published
    assert published["work.txt"].id != based["work.txt"].id
    made = make_commit(
        session.repo,
        Request("work", "Work"),
        oid,
        Base(base, "main"),
        None,
        ("cache",),
        {".bashrc": "withheld"},
    )
    assert session.repo.repo[made.commit].peel(pygit2.Commit).parent_ids == [base]
    root = make_commit(
        session.repo, Request("alone", "Alone"), oid, Base(None, None), None, ("cache",), {}
    )
    assert root.root and session.repo.repo[root.commit].peel(pygit2.Commit).parent_ids == []
    assert "cache/kept.bin" not in session.repo.repo[root.commit].peel(pygit2.Commit).tree
    session.close()


@pytest.mark.parametrize(
    ("message", "found"),
    [
        (f"T\n\nbody\n\n{PUBLISHED_TRAILER}: {BRANCH}\n", BRANCH),
        (f"T\n\n{PUBLISHED_TRAILER}: {BRANCH}\nSigned-off-by: a <b@c>\n", BRANCH),
        (f"T\n\n{PUBLISHED_TRAILER}: {BRANCH}\n\nmore text after it\n", None),
        (f"{PUBLISHED_TRAILER}: {BRANCH}\n", BRANCH),
        (f"T\n\n{PUBLISHED_TRAILER}: bad..name\n", None),
        (f"T\n\nX-{PUBLISHED_TRAILER}: {BRANCH}\n", None),
        ("T\n\nno trailer\n", None),
    ],
)
def test_the_published_trailer_counts_only_where_git_would_read_it(
    message: str, found: str | None
) -> None:
    raw = b"tree " + b"0" * 40 + b"\nauthor a <b> 0 +0000\n\n" + message.encode()
    assert published_from(raw) == found


async def test_the_cli_publishes_through_the_running_server(
    jp_serverapp: Any,
    jp_fetch: Any,
    jp_http_port: int,
    jp_base_url: str,
    workspace: Path,
    git_server: GitHTTPServer,
    github: GitHubStub,
    token: str,
) -> None:
    """`jupyter gitsync publish BRANCH --title T --body B` asks the running server, prints
    what happened and the pull request's link; a refusal exits with its message."""
    api = Api(jp_fetch)
    (workspace / "work.txt").write_text("mine\n")
    await start(jp_serverapp)
    await async_wait_until(api.synced, what="the first sync")
    where = ["--url", f"http://localhost:{jp_http_port}{jp_base_url}"]
    where += ["--token", jp_serverapp.identity_provider.token]

    async def cli(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "jupyter_gitsync.cli", "publish", *args, *where,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        out, err = await process.communicate()
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    code, out, err = await cli("topic", "--title", "From a terminal", "--body", "Body.")
    assert code == 0, err
    pushed = ref_or_none(git_server.repo_path(UPSTREAM), "refs/heads/topic")
    assert pushed is not None and "Pushed the branch topic" in out
    assert out.strip().endswith(f"{github.url}/{UPSTREAM}/pull/1")
    assert github.pulls[0].title == "From a terminal" and github.pulls[0].body == "Body."
    code, out, err = await cli("main", "--title", "T")
    assert code == 1 and "the branch your work is based on" in err
    code, out, err = await cli("elsewhere", "--title", "T", "--from", "no-such-version")
    assert code == 1 and "no snapshot or version" in err
    assert token not in out + err
