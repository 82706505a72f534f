"""Reading history (jupyter_gitsync.history) from real snapshots in a real workspace clone."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pygit2
import pytest

from jupyter_gitsync import history
from jupyter_gitsync.errors import ConfigError, NotFound
from jupyter_gitsync.merging import merge_snapshots
from jupyter_gitsync.repository import MAX_MESSAGE_CHARS, SIGNATURE_EMAIL, session_label, session_of
from jupyter_gitsync.snapshots import Snapshot
from tests.helpers import LocalSession, git

BRANCH = "gitsync/ada"


def nb(*sources: str) -> str:
    cells = [
        {
            "id": f"c{i}",
            "cell_type": "code",
            "source": s,
            "metadata": {},
            "outputs": [],
            "execution_count": None,
        }
        for i, s in enumerate(sources)
    ]
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


@pytest.fixture
def session(workspace: Path) -> LocalSession:
    return LocalSession(workspace, BRANCH, session="ada-host 2026-12-01T09:00:00Z")


def save(session: LocalSession, path: str, text: str) -> Snapshot:
    target = session.workspace / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    made = session.snapshot([path])
    assert made is not None
    return made


def page(session: LocalSession, path: str | None = None, **kwargs: object) -> history.Page:
    repo = session.repo
    return history.read_history(repo.repo, repo.gitdir, BRANCH, path, **kwargs)  # type: ignore[arg-type]


def test_three_snapshots_of_a_file_are_three_entries_newest_first(session: LocalSession) -> None:
    made = [save(session, "work/a.ipynb", nb(f"x = {i}")) for i in range(3)]
    save(session, "other.txt", "not this file")
    entries = page(session, "work/a.ipynb").entries
    assert [e.sha for e in entries] == [m.commit for m in reversed(made)]
    assert all(e.path == "work/a.ipynb" for e in entries)
    assert entries[0].session == "ada-host 2026-12-01T09:00:00Z"
    assert entries[0].author == "Test User"
    assert entries[-1].message == "Add work/a.ipynb"  # trailers are not part of the message
    assert entries[0].time is not None and entries[0].time.endswith("+00:00")
    assert entries[0].to_json("ada-host 2026-12-01T09:00:00Z")["this_session"] is True
    assert entries[0].to_json("someone else")["this_session"] is False


def test_a_file_that_came_with_the_clone_starts_at_its_first_change(
    session: LocalSession,
) -> None:
    """README.md is in the launch commit: its first snapshot is compared with that commit."""
    save(session, "new.txt", "n")
    changed = save(session, "README.md", "# changed\n")
    assert [e.sha for e in page(session, "README.md").entries] == [changed.commit]
    # the launch commit (the base) and main's own history are not sync history
    whole = page(session).entries
    assert len(whole) == 2 and git(session.workspace, "rev-parse", "HEAD") not in {
        e.sha for e in whole
    }


def test_a_rename_is_followed(session: LocalSession) -> None:
    first = save(session, "draft.ipynb", nb("a = 1"))
    second = save(session, "draft.ipynb", nb("a = 2"))
    (session.workspace / "final").mkdir()
    (session.workspace / "draft.ipynb").rename(session.workspace / "final" / "paper.ipynb")
    moved = session.snapshot(None)
    assert moved is not None
    last = save(session, "final/paper.ipynb", nb("a = 3"))
    entries = page(session, "final/paper.ipynb").entries
    assert [e.sha for e in entries] == [last.commit, moved.commit, second.commit, first.commit]
    assert [e.path for e in entries] == [
        "final/paper.ipynb",
        "final/paper.ipynb",
        "draft.ipynb",
        "draft.ipynb",
    ]
    # the old name's history ends with its deletion
    old = page(session, "draft.ipynb").entries
    assert [e.sha for e in old] == [moved.commit, second.commit, first.commit]
    assert old[0].path is None


def test_a_renamed_and_edited_file_is_followed_by_similarity(session: LocalSession) -> None:
    lines = "".join(f"line {i} of a long enough text file\n" for i in range(60))
    first = save(session, "notes.md", lines)
    (session.workspace / "notes.md").unlink()
    (session.workspace / "journal.md").write_text(lines + "one more line\n")
    moved = session.snapshot(None)
    assert moved is not None
    entries = page(session, "journal.md").entries
    assert [(e.sha, e.path) for e in entries] == [
        (moved.commit, "journal.md"),
        (first.commit, "notes.md"),
    ]


def test_pagination_with_before(session: LocalSession) -> None:
    made = [save(session, "a.txt", f"{i}\n").commit for i in range(7)]
    newest_first = list(reversed(made))
    first = page(session, "a.txt", limit=3)
    assert [e.sha for e in first.entries] == newest_first[:3] and first.more
    second = page(session, "a.txt", limit=3, before=first.entries[-1].sha)
    assert [e.sha for e in second.entries] == newest_first[3:6] and second.more
    third = page(session, "a.txt", limit=3, before=second.entries[-1].sha)
    assert [e.sha for e in third.entries] == newest_first[6:] and not third.more
    # whole-branch history pages the same way
    whole = page(session, limit=5)
    rest = page(session, limit=5, before=whole.entries[-1].sha)
    assert [e.sha for e in whole.entries + rest.entries] == newest_first


def test_whole_branch_history_includes_another_sessions_merged_snapshots(
    tmp_path: Path, session: LocalSession, clone_into: Callable[[Path], Path]
) -> None:
    """Two workspaces on one branch: the merge's other side is listed with its session."""
    mine = save(session, "mine.txt", "m")
    other_ws = clone_into(tmp_path / "other")
    other = LocalSession(other_ws, BRANCH, session="bob-laptop 2026-12-01T10:00:00Z")
    theirs = save(other, "theirs.txt", "t")
    # bring their snapshot over as the engine would after a refused push
    other.repo.repo.references.create("refs/heads/theirs", pygit2.Oid(hex=theirs.commit))
    git(session.workspace, "fetch", "-q", str(other_ws), "+refs/heads/theirs:refs/gitsync/x")

    tip = session.repo.tip()
    assert tip is not None
    merged = merge_snapshots(
        session.repo, tip, pygit2.Oid(hex=theirs.commit), session=session.snaps.session
    )
    session.snaps.take(merged.commit)
    entries = page(session).entries
    assert [e.sha for e in entries][:1] == [str(merged.commit)]
    shas = {e.sha: e for e in entries}
    assert mine.commit in shas and theirs.commit in shas
    assert shas[theirs.commit].session == "bob-laptop 2026-12-01T10:00:00Z"
    assert entries[0].session == "ada-host 2026-12-01T09:00:00Z"  # the merge is this session's
    # the merge made no version of theirs.txt neither side had: only their snapshot changed it
    assert [e.sha for e in page(session, "theirs.txt").entries] == [theirs.commit]


def test_unknown_sha_and_bad_input(session: LocalSession) -> None:
    save(session, "a.txt", "a")
    with pytest.raises(NotFound):
        page(session, "a.txt", before="0" * 40)
    with pytest.raises(NotFound):
        page(session, "no-such-file.txt")
    for bad in ("../x", "/etc/passwd", "a/../b", "./a", "a//b", "", ".git/config", "x\x00y"):
        with pytest.raises(ConfigError):
            page(session, bad)
    for sha in ("abc", "G" * 40, "A" * 40, "0" * 39, "0" * 41):
        with pytest.raises(ConfigError):
            history.validate_sha(sha)
    for limit in ("0", "501", "-1", "ten", "1.5", " 5"):
        with pytest.raises(ConfigError):
            history.validate_limit(limit)
    assert history.validate_limit(None) == 50 and history.validate_limit("500") == 500


def test_file_at_a_snapshot_as_notebook_text_and_binary(session: LocalSession) -> None:
    save(session, "a.ipynb", nb("print(1)"))
    save(session, "notes.txt", "plain words\n")
    binary = bytes(range(256))
    (session.workspace / "data.bin").write_bytes(binary)
    made = session.snapshot(["data.bin"])
    assert made is not None
    repo, sha = session.repo.repo, made.commit
    notebook = history.file_at(repo, sha, "a.ipynb", 10**7)
    assert notebook["type"] == "notebook" and notebook["format"] == "json"
    assert notebook["content"]["cells"][0]["source"] == "print(1)"
    text = history.file_at(repo, sha, "notes.txt", 10**7)
    assert (text["type"], text["format"], text["content"]) == ("file", "text", "plain words\n")
    raw = history.file_at(repo, sha, "data.bin", 10**7)
    assert raw["format"] == "base64" and base64.b64decode(raw["content"]) == binary
    with pytest.raises(NotFound):
        history.file_at(repo, sha, "missing.txt", 10**7)
    with pytest.raises(NotFound):
        history.file_at(repo, "1" * 40, "a.ipynb", 10**7)
    with pytest.raises(ConfigError):
        history.file_at(repo, sha, "data.bin", 100)  # larger than the limit given


def test_diff_of_two_notebook_snapshots_has_cell_level_changes(session: LocalSession) -> None:
    old = save(session, "a.ipynb", nb("x = 1", "y = 2"))
    new = save(session, "a.ipynb", nb("x = 1", "y = 3", "z = 4"))
    repo = session.repo
    sides = history.read_sides(repo.repo, repo.workspace, "a.ipynb", old.commit, new.commit, 10**7)
    answer = history.compare(sides)
    assert answer["format"] == "notebook"
    assert [c["source"] for c in answer["base"]["cells"]] == ["x = 1", "y = 2"]
    cells = next(d for d in answer["diff"] if d["key"] == "cells")
    ops = {d["op"] for d in cells["diff"]}
    assert ops & {"addrange", "patch", "removerange"}, cells
    json.dumps(answer)  # plain JSON, as the API sends it
    # against the file on disk now, and a side that is missing counts as empty
    (session.workspace / "a.ipynb").write_text(nb("on disk"))
    now = history.compare(
        history.read_sides(repo.repo, repo.workspace, "a.ipynb", old.commit, None, 10**7)
    )
    assert now["format"] == "notebook"
    (session.workspace / "a.ipynb").unlink()
    gone = history.compare(
        history.read_sides(repo.repo, repo.workspace, "a.ipynb", old.commit, None, 10**7)
    )
    removed = next(d for d in gone["diff"] if d["key"] == "cells")["diff"]
    assert removed[0]["op"] == "removerange"


def test_diff_across_a_rename_reads_each_side_under_its_own_name(session: LocalSession) -> None:
    old = save(session, "a.ipynb", nb("x = 1", "y = 2"))
    (session.workspace / "a.ipynb").rename(session.workspace / "b.ipynb")
    moved = session.snapshot(None)
    assert moved is not None
    new = save(session, "b.ipynb", nb("x = 1", "y = 3"))
    repo = session.repo

    def cells(**names: str) -> list[dict[str, object]]:
        sides = history.read_sides(
            repo.repo, repo.workspace, "b.ipynb", old.commit, names.pop("remote", None),
            10**7, **names,
        )  # fmt: skip
        answer = history.compare(sides)
        assert answer["format"] == "notebook"
        assert [c["source"] for c in answer["base"]["cells"]] == (
            ["x = 1", "y = 2"] if "base_path" in names else []
        )
        found = [d["diff"] for d in answer["diff"] if d["key"] == "cells"]
        return found[0] if found else []

    # under the current name only, the old snapshot has no such file: all of it is added
    assert [d["op"] for d in cells()] == ["addrange"]
    # under its name there, only the changed cell differs (against disk, and a snapshot)
    for changed in (cells(base_path="a.ipynb"), cells(base_path="a.ipynb", remote=new.commit)):
        assert [(d["op"], d["key"]) for d in changed] == [("patch", 1)]
    # remote_path names the file at the newer side; the same file both sides: no change
    assert cells(base_path="a.ipynb", remote=old.commit, remote_path="a.ipynb") == []
    # a name given for a side must be there; bad names are refused
    for names in (
        {"base_path": "b.ipynb"},
        {"base_path": "nowhere.ipynb"},
        {"base_path": "a.ipynb", "remote": new.commit, "remote_path": "a.ipynb"},
        {"base_path": "a.ipynb", "remote_path": "a.ipynb"},  # not on disk now
    ):
        with pytest.raises(NotFound):
            cells(**names)
    for bad in ("../a.ipynb", "/etc/passwd", ".git/config", ""):
        with pytest.raises(ConfigError):
            cells(base_path=bad)
        with pytest.raises(ConfigError):
            cells(base_path="a.ipynb", remote_path=bad)


def test_diff_of_text_and_binary(session: LocalSession) -> None:
    old = save(session, "t.txt", "one\n")
    new = save(session, "t.txt", "two\n")
    repo = session.repo
    text = history.compare(
        history.read_sides(repo.repo, repo.workspace, "t.txt", old.commit, new.commit, 10**7)
    )
    assert text == {"format": "text", "base": "one\n", "remote": "two\n"}
    (session.workspace / "b.bin").write_bytes(b"\x00\x01")
    made = session.snapshot(["b.bin"])
    assert made is not None
    binary = history.compare(
        history.read_sides(repo.repo, repo.workspace, "b.bin", old.commit, made.commit, 10**7)
    )
    assert binary == {"format": "binary", "base_size": 0, "remote_size": 2}


def test_a_link_out_of_the_workspace_is_not_read_for_a_diff(
    session: LocalSession, tmp_path: Path
) -> None:
    old = save(session, "t.txt", "mine\n")
    secret = tmp_path / "outside.txt"
    secret.write_text("not the workspace's\n")
    (session.workspace / "t.txt").unlink()
    (session.workspace / "t.txt").symlink_to(secret)
    repo = session.repo
    answer = history.compare(
        history.read_sides(repo.repo, repo.workspace, "t.txt", old.commit, None, 10**7)
    )
    assert "not the workspace's" not in json.dumps(answer)


def test_a_hostile_trailer_is_not_echoed(session: LocalSession) -> None:
    """Anyone who can push writes commit messages: a Gitsync-Session with control characters,
    or 10 KB of it, is no label; the message is shortened and printable."""
    save(session, "a.txt", "a")
    git_repo = session.repo.repo
    tip = session.repo.tip()
    assert tip is not None
    tree = git_repo[tip].peel(pygit2.Commit).tree_id
    hostile = {
        "control": "Gitsync-Session: evil\x1b[31mred\x07",
        "long": "Gitsync-Session: " + "x" * 10_000,
        "markup": "Gitsync-Session: <img src=x onerror=alert(1)>",
    }
    sig = pygit2.Signature("Jupyter GitSync", SIGNATURE_EMAIL)
    for kind, trailer in hostile.items():
        message = f"Update a.txt \x1b]0;title\x07{'y' * 20_000}\n\n{trailer}\n"
        oid = git_repo.create_commit(None, sig, sig, message, tree, [tip])
        git_repo.references.create(f"refs/heads/{BRANCH}", oid, force=True)
        entry = page(session, limit=1).entries[0]
        assert entry.sha == str(oid)
        assert entry.session is None, kind
        assert "\x1b" not in entry.message and "\x07" not in entry.message
        assert len(entry.message) <= MAX_MESSAGE_CHARS
        tip = oid


def test_session_labels() -> None:
    label = session_label()
    assert session_of(f"x\n\nGitsync-Session: {label}\n".encode()) == label
    assert session_of(b"x\n\nGitsync-Session: \xff\xfe\n") is None
    assert session_of(b"no trailer") is None


def test_a_cut_history_says_so(tmp_path: Path, session: LocalSession) -> None:
    """A shallow clone of a branch of several snapshots: the page reaches the cut and says
    more may be there (the engine then deepens it)."""
    for i in range(5):
        save(session, "data/x.csv", f"{i}\n")
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "2", "--branch", BRANCH,
         f"file://{session.workspace}", str(shallow)],
        check=True,
    )  # fmt: skip
    repo = pygit2.Repository(str(shallow))
    cut = history.read_history(repo, Path(repo.path), BRANCH, "data/x.csv", 50)
    assert cut.cut and cut.more
    whole = page(session, "data/x.csv")
    assert not whole.cut and not whole.more and len(whole.entries) == 5
    assert 0 < len(cut.entries) < 5
    assert {e.sha for e in cut.entries} < {e.sha for e in whole.entries}
