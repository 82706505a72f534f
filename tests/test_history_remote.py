"""History in a workspace restored shallow (the Binder case): older snapshots are fetched on
demand, a hung remote leaves the local part answering, and what another session's commits say
is not echoed raw. A real Jupyter server on an empty directory, the real git server."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pygit2
import pytest

from jupyter_gitsync.repository import SIGNATURE_EMAIL
from tests.gitserver import GitHTTPServer
from tests.helpers import LocalSession, async_wait_until
from tests.helpers import start_extensions as start
from tests.test_app import (  # noqa: F401 (fixtures)
    BRANCH,
    gitsync_token,
    jp_server_config,
    state_is,
)
from tests.test_history_api import call

SNAPSHOTS = 8


@pytest.fixture
def gitsync_settings(remote_url: str) -> dict[str, Any]:
    return {
        "remote_url": remote_url,
        "branch": BRANCH,
        "commit_delay_seconds": 0.2,
        "push_interval_seconds": 0.0,
        "retry_initial_seconds": 0.2,
        "retry_max_seconds": 1.0,
        "history_fetch_seconds": 2.0,
        "network_stall_timeout_seconds": 3.0,
    }


@pytest.fixture
def history_on_remote(
    tmp_path: Path, clone_into: Callable[[Path], Path], remote_url: str, token: str
) -> list[str]:
    """An earlier session's SNAPSHOTS snapshots of notes.txt on BRANCH, pushed; the last one
    with a hostile session trailer (as any pusher could write). Newest first."""
    earlier = LocalSession(clone_into(tmp_path / "earlier"), BRANCH, session="old-pod 2026-11-30")
    made = []
    for i in range(SNAPSHOTS):
        (earlier.workspace / "notes.txt").write_text(f"line {i}\n")
        snapshot = earlier.snapshot(None)
        assert snapshot is not None
        made.append(snapshot.commit)
    repo = earlier.repo.repo
    tip = earlier.repo.tip()
    assert tip is not None
    (earlier.workspace / "notes.txt").write_text("hostile\n")
    blob = repo.create_blob(b"hostile\n")
    builder = repo.TreeBuilder(repo[tip].peel(pygit2.Commit).tree)
    builder.insert("notes.txt", blob, pygit2.enums.FileMode.BLOB)
    sig = pygit2.Signature("Mallory \x1b[31m", SIGNATURE_EMAIL)
    message = "Update notes.txt\n\nGitsync-Session: " + "\x1b]8;;http://evil\x07" + "x" * 10_000
    hostile = repo.create_commit(None, sig, sig, message, builder.write(), [tip])
    repo.references.create(f"refs/heads/{BRANCH}", hostile, force=True)
    earlier.push(remote_url, lambda: token)
    earlier.close()
    return [str(hostile), *reversed(made)]


@pytest.fixture
def jp_root_dir(tmp_path: Path, history_on_remote: list[str]) -> Path:
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    return fresh


async def restored(jp_serverapp: Any, jp_fetch: Any) -> Path:
    await start(jp_serverapp)
    await async_wait_until(lambda: state_is(jp_fetch, "synced"), what="the restore")
    root = Path(jp_serverapp.root_dir)
    assert (root / "notes.txt").read_text() == "hostile\n"
    assert pygit2.Repository(str(root)).is_shallow  # the restore fetched little history
    return root


async def test_older_snapshots_are_fetched_when_asked_for(
    jp_serverapp: Any, jp_fetch: Any, history_on_remote: list[str]
) -> None:
    await restored(jp_serverapp, jp_fetch)
    answer = await call(jp_fetch, "history", path="notes.txt")
    assert [e["sha"] for e in answer["entries"]] == history_on_remote
    assert answer["more"] is False and "message" not in answer
    assert all(e["this_session"] is False for e in answer["entries"])
    assert answer["entries"][1]["session"] == "old-pod 2026-11-30"
    # the hostile trailer: no label, and nothing of it in the answer
    hostile = answer["entries"][0]
    assert hostile["session"] is None
    raw = json.dumps(answer)
    assert "evil" not in raw and "\\u001b" not in raw and "x" * 100 not in raw
    assert "\x1b" not in hostile["author"]
    # an older snapshot's content is here now
    first = await call(jp_fetch, "file", path="notes.txt", sha=history_on_remote[-1])
    assert first["content"] == "line 0\n"


async def test_a_hung_remote_leaves_the_local_part_answering(
    jp_serverapp: Any, jp_fetch: Any, git_server: GitHTTPServer, history_on_remote: list[str]
) -> None:
    await restored(jp_serverapp, jp_fetch)
    git_server.delay_seconds = 60  # accepts, then says nothing
    answer = await call(jp_fetch, "history", path="notes.txt")
    here = [e["sha"] for e in answer["entries"]]
    assert here and here == history_on_remote[: len(here)] and len(here) < SNAPSHOTS + 1
    assert answer["more"] is True
    assert "could not be fetched" in answer["message"] and "Traceback" not in answer["message"]
    git_server.delay_seconds = 0

    async def everything() -> bool:  # the remote is back: the rest arrives
        full = await call(jp_fetch, "history", path="notes.txt")
        return [e["sha"] for e in full["entries"]] == history_on_remote

    await async_wait_until(everything, what="the whole history once the remote answers")
