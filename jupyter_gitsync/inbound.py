"""What comes from a remote is untrusted: the screen every tree passes before a restore, a
resume or a merge writes it into the workspace.

Anyone who can push to a branch the user restores from (a collaborator, the upstream of a fork,
a leaked token elsewhere) chooses that tree. Never written from it:

- paths that run code at start (`filters.RUNS_CODE_AT_START`), whatever `excludes` says;
- excluded paths (`excludes`: never synced this way, so never synced the other way either);
- blobs over `max_file_size_bytes`, judged from the object header, so a small pack that
  inflates to gigabytes is never inflated;
- submodule links (nothing to write, and nothing we would push).

Local files the sync never owned win every collision (`local_collisions`): the remote's side
goes to a rescue branch instead.

Withheld paths keep their place in the sync index and in the snapshots made here, as the
remote has them (`Snapshotter.take`): they are only not on disk. So nothing is deleted from the
branch because this session would not write it, and a session with other settings keeps its
files. A local file at such a path is never touched.

Blocking; runs on the engine's git thread.
"""

from __future__ import annotations

import os

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


def screen(
    repo: SyncRepository,
    baseline: pygit2.Index,
    commit: pygit2.Oid,
    excludes: tuple[str, ...],
    max_file_size_bytes: int,
    already: dict[str, str],
) -> dict[str, str]:
    """The paths of `commit`'s tree that must not be written here, with the reason for each.
    A blob this workspace already holds (same path and id in `baseline`) is not looked up
    again; one withheld before (`already`) stays withheld."""
    git = repo.repo
    index = pygit2.Index()
    index.read_tree(git[commit].peel(pygit2.Tree))
    withheld: dict[str, str] = {}
    for entry in index:
        known = entry.path in baseline and baseline[entry.path].id == entry.id
        if known and entry.path in already:
            withheld[entry.path] = already[entry.path]
            continue
        size = None
        if entry.mode in (FileMode.BLOB, FileMode.BLOB_EXECUTABLE) and not known:
            size = git.odb.read_header(entry.id)[1]
        reason = withheld_reason(entry.path, entry.mode, size, excludes, max_file_size_bytes)
        if reason is not None:
            withheld[entry.path] = reason
    return withheld


def local_collisions(
    repo: SyncRepository, baseline: pygit2.Index, commit: pygit2.Oid
) -> dict[str, str]:
    """Paths of `commit`'s tree where this workspace has something the sync never owned: a
    file or folder at that path, or a file where the remote has a folder. Not in `baseline`
    means never synced (untracked, ignored or excluded here); such local files always win."""
    index = pygit2.Index()
    index.read_tree(repo.repo[commit].peel(pygit2.Tree))
    root = repo.workspace
    kept: dict[str, str] = {}
    blocked_dirs: dict[str, bool] = {}  # parent folder -> a non-folder is there locally
    for entry in index:
        path = entry.path
        if path in baseline:
            continue
        if os.path.lexists(root / path):
            kept[path] = "kept: a local file that was never synced is there"
            continue
        parent = os.path.dirname(path)
        while parent:
            if parent not in blocked_dirs:
                full = root / parent
                blocked_dirs[parent] = os.path.lexists(full) and not (
                    full.is_dir() and not full.is_symlink()
                )
            if blocked_dirs[parent]:
                kept[path] = f"kept: a local file {parent} is where the remote has a folder"
                break
            parent = os.path.dirname(parent)
    return kept
