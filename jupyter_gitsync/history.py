"""Reading the sync branch's history: the snapshots that changed a file (renames followed),
the whole branch, a file's content at a snapshot, and the difference between two states of a
file. Blocking, read-only; the engine runs it on its git thread, the command line directly on
the repository (the running server's engine lock does not stop readers).

**Which commits count.** The snapshots of the sync branch (`repository.is_snapshot`): the walk
starts at the branch's tip and follows every parent that is a snapshot, so a merge's other side
(another session's snapshots, taken in by `merging`) is listed too, each with the session that
made it. It never enters a commit that is not a snapshot: a snapshot's base commit (its last
parent, where the user's HEAD was) and that commit's own history are the user's git history,
which `git log` shows; walking it would cost what the project's whole history costs. A
snapshot whose first parent is its base is compared with that base, so the first snapshot of a
file that came with the clone lists the change made to it here.

A file "changed" in a snapshot when its entry (blob and mode) differs from the first parent's;
a merge counts only when the file differs from every snapshot parent (it made a version neither
side had, such as a notebook merged cell by cell), as `git log`'s default simplification does.
A file that appears in a snapshot where its first parent has none is looked up in that
snapshot's diff with libgit2's rename detection; found, the walk follows the old name further
back.

Order: newest first by commit time, a parent never before its child; `before` continues the
same walk after that commit. Where the history here stops (a shallow restore fetched only the
tip), the walk says so (`Page.cut`), so the engine can deepen it and ask again.

Everything a commit says came from whoever pushed it: names, messages and trailers are
shortened and made printable, a session label is shown only when it reads as one.
"""

from __future__ import annotations

import base64
import heapq
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pygit2
from pygit2.enums import DiffFind, FileMode

from . import filters, notebooks
from .errors import ConfigError, NotFound
from .repository import (
    BASE_TRAILER,
    decoded,
    is_snapshot,
    iso_time,
    message_of,
    printable,
    raw_parents,
    session_of,
    shallow_roots,
)

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_NAME_CHARS = 200  # of an author's name
TEXT_DIFF_MAX_BYTES = 2_000_000  # larger text is compared by size only
NOTEBOOK_DIFF_MAX_BYTES = 20_000_000  # nbdime's diff of larger notebooks takes too long
_FULL_SHA = re.compile(r"[0-9a-f]{40}")


# -- input ------------------------------------------------------------------------------------


def validate_path(path: str) -> str:
    """A workspace-relative POSIX path as the API takes it, or ConfigError (400): not empty,
    not absolute, no "." or ".." parts, nothing inside .git, valid UTF-8."""
    if not path or len(path) > 4096 or "\x00" in path:
        raise ConfigError("Give a path relative to the workspace, like notebooks/a.ipynb.")
    if path.startswith("/"):
        raise ConfigError(
            f"{_shown(path)} is an absolute path; give one relative to the workspace."
        )
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise ConfigError(f"{_shown(path)} is not a plain path inside the workspace.")
    if filters.is_git_internal(path):
        raise ConfigError(f"{_shown(path)} is inside .git, which is not part of the history.")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError("The path is not valid UTF-8.") from None
    return path


def validate_sha(sha: str) -> pygit2.Oid:
    """A full commit id (40 lowercase hex characters), or ConfigError (400)."""
    if not isinstance(sha, str) or not _FULL_SHA.fullmatch(sha):
        raise ConfigError(f"{_shown(str(sha))} is not a snapshot id (40 hexadecimal characters).")
    return pygit2.Oid(hex=sha)


def validate_limit(limit: str | None) -> int:
    """How many entries a page holds: a whole number from 1 to MAX_LIMIT (default 50)."""
    if limit is None or limit == "":
        return DEFAULT_LIMIT
    if not re.fullmatch(r"[0-9]{1,3}", limit) or not 1 <= int(limit) <= MAX_LIMIT:
        raise ConfigError(f"limit must be a whole number from 1 to {MAX_LIMIT}.")
    return int(limit)


def commit_at(repo: pygit2.Repository, sha: str) -> pygit2.Commit:
    """The commit `sha` names (validated), or NotFound (404)."""
    oid = validate_sha(sha)
    try:
        obj = repo.get(oid)
    except (ValueError, pygit2.GitError):
        obj = None
    if not isinstance(obj, pygit2.Commit):
        raise NotFound(f"There is no snapshot {sha} here.")
    return obj


# -- history ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One snapshot as history shows it."""

    sha: str
    time: str | None
    message: str
    author: str
    session: str | None
    path: str | None  # the file's name in this snapshot (None: absent, or whole-branch history)
    versions: tuple[str, ...] = ()

    def to_json(self, this_session: str | None) -> dict[str, Any]:
        """The API's form (see README, "History and versions")."""
        return {
            "sha": self.sha,
            "time": self.time,
            "message": self.message,
            "version": self.versions[0] if self.versions else None,
            "versions": list(self.versions),
            "session": self.session,
            "this_session": self.session is not None and self.session == this_session,
            "author": self.author,
            "path": self.path,
        }


@dataclass(frozen=True)
class Page:
    """A page of history: `more` when older entries follow (or may, past `cut`); `cut` when
    the walk reached where the history here stops before the page was full; `depth` how
    many commits deep the walk went (for deepening)."""

    entries: list[Entry]
    more: bool
    cut: bool = False
    depth: int = 0


def read_history(
    repo: pygit2.Repository,
    gitdir: Path,
    branch: str,
    path: str | None = None,
    limit: int = DEFAULT_LIMIT,
    before: str | None = None,
    versions: dict[str, list[str]] | None = None,
) -> Page:
    """A page of the sync branch's snapshots, newest first: those that changed `path` (renames
    followed), or all of them. `before`: continue after that commit. `versions`: commit id ->
    the names of the versions on it."""
    if path is not None:
        validate_path(path)
    after = validate_sha(before) if before is not None else None
    ref = repo.references.get(f"refs/heads/{branch}")
    if ref is None:
        if after is not None:
            raise NotFound(f"There is no snapshot {before} in the history of {branch}.")
        return Page([], more=False)
    tip = repo[ref.resolve().target].peel(pygit2.Commit)
    walk = _Walk(repo, shallow_roots(gitdir), _Trees(repo) if path is not None else None)
    found: list[Entry] = []
    started = after is None
    more = False
    for step in walk.steps(tip, path):
        if not started:
            started = step.commit.id == after
            continue
        if not step.changed:
            continue
        if len(found) == limit:
            more = True
            break
        found.append(_entry(step, versions or {}))
    if not started:
        if walk.cut:
            return Page([], more=True, cut=True, depth=walk.depth)
        raise NotFound(f"There is no snapshot {before} in the history of {branch}.")
    absent = walk.trees is not None and walk.trees.entry(tip.tree_id, str(path)) is None
    if path is not None and not found and after is None and not walk.cut and absent:
        raise NotFound(f"No snapshot of {branch} holds {_shown(path)}.")
    cut = walk.cut and not more
    return Page(found, more=more or cut, cut=cut, depth=walk.depth)


@dataclass(frozen=True)
class _Step:
    commit: pygit2.Commit
    path: str | None  # the file's name in this commit (file history only)
    changed: bool  # this commit changed the file (always True for the whole branch)


class _Walk:
    """Snapshots from a tip, newest first, through every snapshot parent (see the module's
    docstring). Notes where the history here stops (`cut`) and how deep it went."""

    def __init__(
        self, repo: pygit2.Repository, roots: set[pygit2.Oid], trees: _Trees | None
    ) -> None:
        self.repo = repo
        self.roots = roots  # commits whose parents libgit2 hides (.git/shallow)
        self.trees = trees
        self.cut = False
        self.depth = 0
        self._kinds: dict[pygit2.Oid, bool] = {}  # commit -> is a snapshot

    def steps(self, tip: pygit2.Commit, path: str | None) -> Iterator[_Step]:
        if not is_snapshot(tip):
            return
        # (newest first, then the order they were found in) -> commit, the file's name there,
        # and the generation (commits from the tip), for deepening
        queue: list[tuple[int, int, pygit2.Commit, str | None, int]] = []
        heapq.heappush(queue, (-tip.commit_time, 0, tip, path, 1))
        seen = {tip.id}
        count = 1
        while queue:
            _, _, commit, name, generation = heapq.heappop(queue)
            self.depth = max(self.depth, generation)
            parents = self._parents(commit)
            step, older = self._compare(commit, name, parents)
            yield step
            for parent in parents.snapshots:
                if parent.id in seen:
                    continue
                seen.add(parent.id)
                heapq.heappush(
                    queue,
                    (-min(parent.commit_time, commit.commit_time), count, parent, older,
                     generation + 1),
                )  # fmt: skip
                count += 1

    def _parents(self, commit: pygit2.Commit) -> _Parents:
        """The commit's first parent and its snapshot parents. A parent that is not here is a
        cut, unless it is the base commit the snapshot records (that one is no snapshot).
        A parent after the first that is known not to be a snapshot (the base commit, met
        again at every snapshot) is not looked up again."""
        ids = raw_parents(self.repo, commit.id) if commit.id in self.roots else commit.parent_ids
        found = _Parents(None, [], missing_first=False)
        for position, oid in enumerate(ids):
            if position and self._kinds.get(oid) is False:
                continue
            try:
                parent = self.repo[oid]
            except (KeyError, ValueError, pygit2.GitError):
                parent = None
            if not isinstance(parent, pygit2.Commit):
                found.missing_first = found.missing_first or position == 0
                if not _is_recorded_base(commit, oid):
                    self.cut = True
                continue
            snapshot = self._kinds.get(oid)
            if snapshot is None:
                snapshot = self._kinds[oid] = is_snapshot(parent)
            if position == 0:
                found.first = parent
            if snapshot:
                found.snapshots.append(parent)
        return found

    def _compare(
        self, commit: pygit2.Commit, name: str | None, parents: _Parents
    ) -> tuple[_Step, str | None]:
        """Whether `commit` changed the file `name`, and the file's name in its parents."""
        if name is None or self.trees is None:
            return _Step(commit, None, True), None
        here = self.trees.entry(commit.tree_id, name)
        shown = name if here else None
        if len(parents.snapshots) >= 2:  # a merge: a change only if it differs from every side
            changed = all(self.trees.entry(p.tree_id, name) != here for p in parents.snapshots)
            return _Step(commit, shown, changed), name
        first = parents.first
        if parents.missing_first:  # the history here stops: not known until deepened
            return _Step(commit, shown, False), name
        before = self.trees.entry(first.tree_id, name) if first is not None else None
        older = name
        if here is not None and before is None and first is not None:
            older = _renamed_from(self.repo, first, commit, name) or name
        return _Step(commit, shown, here != before), older


@dataclass
class _Parents:
    first: pygit2.Commit | None  # None: a root commit, or the first parent is not here
    snapshots: list[pygit2.Commit]
    missing_first: bool


def _is_recorded_base(commit: pygit2.Commit, oid: pygit2.Oid) -> bool:
    prefix = f"{BASE_TRAILER}: {oid}".encode()
    return any(line.strip() == prefix for line in commit.raw_message.splitlines())


def _renamed_from(
    repo: pygit2.Repository, parent: pygit2.Commit, commit: pygit2.Commit, path: str
) -> str | None:
    """The name `path` had in `parent`, if `commit` renamed it (libgit2's rename detection:
    the same blob, or a similar one, vanished where this one appeared)."""
    diff = parent.tree.diff_to_tree(commit.tree)
    diff.find_similar(DiffFind.FIND_RENAMES)
    for delta in diff.deltas:
        if delta.status == pygit2.enums.DeltaStatus.RENAMED and delta.new_file.path == path:
            return str(delta.old_file.path)
    return None


class _Trees:
    """Entry lookups by path, remembered per (tree, name): consecutive snapshots share most
    of their trees, so a walk over thousands of them reads each changed tree once."""

    def __init__(self, repo: pygit2.Repository) -> None:
        self.repo = repo
        self._known: dict[tuple[pygit2.Oid, str], tuple[pygit2.Oid, int] | None] = {}

    def entry(self, tree: pygit2.Oid, path: str) -> tuple[pygit2.Oid, int] | None:
        """(id, mode) of the entry at `path` under `tree`, or None."""
        parts = path.split("/")
        found: tuple[pygit2.Oid, int] | None = None
        for depth, name in enumerate(parts):
            if depth:
                if found is None or found[1] != FileMode.TREE:
                    return None
                tree = found[0]
            key = (tree, name)
            if key not in self._known:
                try:
                    folder = self.repo[tree]
                    item = folder[name] if isinstance(folder, pygit2.Tree) else None
                except (KeyError, ValueError, pygit2.GitError):
                    item = None
                self._known[key] = None if item is None else (item.id, int(item.filemode))
            found = self._known[key]
        return found


def _entry(step: _Step, versions: dict[str, list[str]]) -> Entry:
    commit = step.commit
    return Entry(
        sha=str(commit.id),
        time=iso_time(commit.commit_time),
        message=message_of(commit.raw_message),
        author=printable(decoded(commit.author.raw_name), MAX_NAME_CHARS),
        session=session_of(commit.raw_message),
        path=step.path,
        versions=tuple(versions.get(str(commit.id), ())),
    )


def _shown(text: str) -> str:
    return repr(printable(text, 200))


# -- content ------------------------------------------------------------------------------------


def blob_at(commit: pygit2.Commit, path: str) -> pygit2.Blob | None:
    """The file (blob or link) at `path` in `commit`, or None where it has none."""
    try:
        obj = commit.tree[path]
    except KeyError:
        return None
    return obj if isinstance(obj, pygit2.Blob) else None


def file_at(
    repo: pygit2.Repository, sha: str, path: str, max_file_size_bytes: int
) -> dict[str, Any]:
    """The file `path` as snapshot `sha` holds it, as the contents API gives files: notebooks
    as JSON, text as text, anything else base64."""
    validate_path(path)
    commit = commit_at(repo, sha)
    blob = blob_at(commit, path)
    if blob is None:
        raise NotFound(f"Snapshot {sha[:8]} has no file {_shown(path)}.")
    if blob.size > max_file_size_bytes:
        raise ConfigError(
            f"{_shown(path)} is larger than {max_file_size_bytes / 1e6:g} MB at that snapshot."
        )
    data = blob.data
    answer: dict[str, Any] = {"path": path, "sha": sha, "type": "file"}
    if path.endswith(".ipynb"):
        notebook = _json_object(data)
        if notebook is not None:
            return {**answer, "type": "notebook", "format": "json", "content": notebook}
    text = _text(data)
    if text is not None:
        return {**answer, "format": "text", "content": text}
    return {**answer, "format": "base64", "content": base64.b64encode(data).decode("ascii")}


def _json_object(data: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _text(data: bytes) -> str | None:
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


# -- compare ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sides:
    """The two states of a file to compare (None: absent on that side, counted as empty)."""

    path: str
    base: bytes | None
    remote: bytes | None
    base_size: int
    remote_size: int


def read_sides(
    repo: pygit2.Repository,
    workspace: Path,
    path: str,
    base: str,
    remote: str | None,
    max_file_size_bytes: int,
    *,
    base_path: str | None = None,
    remote_path: str | None = None,
) -> Sides:
    """The file at snapshot `base`, and at snapshot `remote` or on disk now (git thread).
    Larger sides than a diff is made of are given by size only. `base_path` and `remote_path`
    are the file's names on each side where it was renamed (default: `path`); a side without
    the file counts as empty, except that a name given for a side must be there (NotFound)."""
    validate_path(path)
    for given in (base_path, remote_path):
        if given is not None:
            validate_path(given)
    limit = min(max_file_size_bytes, NOTEBOOK_DIFF_MAX_BYTES)
    base_data, base_size = _at_snapshot(repo, base, base_path or path, base_path is not None, limit)
    if remote is not None:
        remote_data, remote_size = _at_snapshot(
            repo, remote, remote_path or path, remote_path is not None, limit
        )
    else:
        remote_data, remote_size = _on_disk(workspace, remote_path or path, limit)
        if remote_path is not None and remote_data is None and not remote_size:
            raise NotFound(f"There is no file {_shown(remote_path)} here now.")
    return Sides(path, base_data, remote_data, base_size, remote_size)


def _at_snapshot(
    repo: pygit2.Repository, sha: str, path: str, required: bool, limit: int
) -> tuple[bytes | None, int]:
    """The file's bytes at snapshot `sha` (None when absent or larger than `limit`) and its
    size; NotFound where it is absent and `required`."""
    blob = blob_at(commit_at(repo, sha), path)
    if blob is None:
        if required:
            raise NotFound(f"Snapshot {sha[:8]} has no file {_shown(path)}.")
        return None, 0
    return (blob.data if blob.size <= limit else None), blob.size


def _on_disk(workspace: Path, path: str, limit: int) -> tuple[bytes | None, int]:
    """The file's bytes now (None when absent or larger than `limit`) and its size; a path
    that leads out of the workspace through a link counts as absent."""
    full = workspace / path
    root = os.path.realpath(workspace)
    if not os.path.realpath(full).startswith(f"{root}{os.sep}"):
        return None, 0
    try:
        with open(full, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            return (handle.read() if size <= limit else None), size
    except (FileNotFoundError, NotADirectoryError):
        return None, 0
    except IsADirectoryError:
        raise ConfigError(f"{_shown(path)} is a folder.") from None
    except OSError as exc:
        raise ConfigError(f"{_shown(path)} cannot be read: {exc.strerror}.") from None


def compare(sides: Sides) -> dict[str, Any]:
    """The difference between two states of a file (pure CPU; the engine runs it off the git
    thread): notebooks cell by cell with nbdime, as nbdime's own /api/diff answers; text as
    both texts; anything else, or too large, by size."""
    binary = {"format": "binary", "base_size": sides.base_size, "remote_size": sides.remote_size}
    if (sides.base is None and sides.base_size) or (sides.remote is None and sides.remote_size):
        return binary  # a side too large to read
    base, remote = sides.base or b"", sides.remote or b""
    if sides.path.endswith(".ipynb"):
        compared = notebooks.diff(base, remote)
        if compared is not None:
            return {"format": "notebook", "base": _plain(compared[0]), "diff": _plain(compared[1])}
    texts = [_text(side) for side in (base, remote)]
    if None in texts or max(len(base), len(remote)) > TEXT_DIFF_MAX_BYTES:
        return binary
    return {"format": "text", "base": texts[0], "remote": texts[1]}


def _plain(value: Any) -> Any:
    """nbdime's diff as plain JSON values (its entries are dict subclasses)."""
    return json.loads(json.dumps(value))
