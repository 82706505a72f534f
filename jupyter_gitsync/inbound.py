"""What comes from a remote is untrusted: the screen every tree passes before a restore, a
resume or a merge writes it into the workspace.

Anyone who can push to a branch the user restores from (a collaborator, the upstream of a fork,
a leaked token elsewhere) chooses that tree. Never written from it:

- paths that run code at start (`filters.RUNS_CODE_AT_START`), whatever `excludes` says;
- excluded paths (`excludes`: never synced this way, so never synced the other way either);
- blobs over `max_file_size_bytes`, judged from the object header, so a small pack that
  inflates to gigabytes is never inflated;
- submodule links (nothing to write, and nothing we would push).

Local files the sync never owned win every collision (`Screened.kept`): the remote's side
goes to a rescue branch instead.

Withheld paths keep their place in the sync index and in the snapshots made here, as the
remote has them (`Snapshotter.take`): they are only not on disk. So nothing is deleted from the
branch because this session would not write it, and a session with other settings keeps its
files. A local file at such a path is never touched.

Blocking; runs on the engine's git thread.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pygit2
from pygit2.enums import FileMode

from . import filters
from .repository import SyncRepository


def withheld_reason(
    path: str, mode: int, size: int | None, excludes: tuple[str, ...], max_file_size_bytes: int
) -> str | None:
    """Why a remote tree entry must not be written here, or None. Pure: `size` is the blob's
    size from its header (None when not looked up: the same blob is already here)."""
    if filters.runs_code_at_start(path):
        return "not restored: it would run code when a session starts"
    if filters.is_excluded(path, excludes):
        return "not restored: excluded from sync"
    if mode == FileMode.COMMIT:
        return "not restored: a submodule"
    if size is not None and filters.too_large(size, max_file_size_bytes):
        return f"not restored: larger than {max_file_size_bytes / 1e6:g} MB"
    return None


@dataclass(frozen=True)
class Screened:
    """What of a remote tree may not be written here: `withheld` (untrusted, see the module
    docstring) and `kept` (a local file the sync never owned is in the way), path -> why."""

    withheld: dict[str, str]
    kept: dict[str, str]


def screen(
    repo: SyncRepository,
    baseline: pygit2.Index,
    commit: pygit2.Oid,
    excludes: tuple[str, ...],
    max_file_size_bytes: int,
    already: dict[str, str],
) -> Screened:
    """Screen `commit`'s tree against this workspace (`baseline`, the sync index, is what the
    sync owns here), in one pass over the tree. A blob this workspace already holds (same
    path and id) is not looked up again; one withheld before (`already`) stays withheld."""
    git = repo.repo
    index = pygit2.Index()
    index.read_tree(git[commit].peel(pygit2.Tree))
    withheld: dict[str, str] = {}
    kept: dict[str, str] = {}
    collisions = _Collisions(repo.workspace)
    for entry in index:
        tracked = entry.path in baseline
        known = tracked and baseline[entry.path].id == entry.id
        if known and entry.path in already:
            withheld[entry.path] = already[entry.path]
            continue
        size = None
        if entry.mode in (FileMode.BLOB, FileMode.BLOB_EXECUTABLE) and not known:
            size = git.odb.read_header(entry.id)[1]
        reason = withheld_reason(entry.path, entry.mode, size, excludes, max_file_size_bytes)
        if reason is not None:
            withheld[entry.path] = reason
        elif not tracked:
            collision = collisions.at(entry.path)
            if collision is not None:
                kept[entry.path] = collision
    return Screened(withheld, kept)


class _Collisions:
    """Local files the sync never owned, in the way of a path from the remote: a file or
    folder at that path, or a file where the remote has a folder. They always win."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._blocked: dict[str, bool] = {}  # parent folder -> a non-folder is there locally

    def at(self, path: str) -> str | None:
        if os.path.lexists(self._root / path):
            return "kept: a local file that was never synced is there"
        parent = os.path.dirname(path)
        while parent:
            if parent not in self._blocked:
                full = self._root / parent
                self._blocked[parent] = os.path.lexists(full) and not (
                    full.is_dir() and not full.is_symlink()
                )
            if self._blocked[parent]:
                return f"kept: a local file {parent} is where the remote has a folder"
            parent = os.path.dirname(parent)
        return None
