"""Bringing back an earlier state: one file, or the whole workspace, from a snapshot, as a new
snapshot on top of the current one (history is never rewritten: the new snapshot's first
parent is the branch's tip, and the state before the restore stays one step back).

The engine snapshots anything unsaved first, then runs these on its git thread. A snapshot's
content may have come from a remote, so it passes the same screen as a restore (`inbound`):
nothing is written that runs code at start, is excluded, is too large or is a submodule; and
no file the sync never owned (untracked, ignored, excluded) is overwritten or deleted.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

import pygit2
from pygit2.enums import FileMode

from . import history, inbound
from .errors import ConfigError, NotFound
from .repository import SyncRepository
from .snapshots import Snapshotter


@dataclass(frozen=True)
class Rewound:
    """What a restore from a snapshot did: the snapshot it made (the tip when nothing
    changed), and the paths it did not write, with why."""

    sha: str
    withheld: dict[str, str] = field(default_factory=dict)
    kept: dict[str, str] = field(default_factory=dict)


def restore_file(
    repo: SyncRepository, snaps: Snapshotter, path: str, sha: str, from_path: str | None = None
) -> Rewound:
    """Write `path` as snapshot `sha` holds it, or as it holds `from_path` (the file's name
    there, before a rename): atomically (a temporary file renamed over it, parent folders
    created), then snapshot it. ConfigError (400) where the sync may not write that path or
    the screen would not bring back the file at its old name, NotFound (404) where the
    snapshot has no such file."""
    history.validate_path(path)
    source = history.validate_path(from_path) if from_path is not None else path
    commit = history.commit_at(repo.repo, sha)
    try:
        entry = commit.tree[source]
    except KeyError:
        raise NotFound(f"Snapshot {sha[:8]} has no file {source!r}.") from None
    if not isinstance(entry, pygit2.Blob):
        raise NotFound(f"{source!r} is a folder at snapshot {sha[:8]}, not a file.")
    mode = commit.tree[source].filemode
    size = repo.repo.odb.read_header(entry.id)[1]
    for screened in dict.fromkeys((source, path)):  # where it was, and where it goes
        reason = inbound.withheld_reason(
            screened, mode, size, snaps.excludes, snaps.max_file_size_bytes
        )
        if reason is not None:
            raise ConfigError(
                f"{screened!r} cannot be restored: {reason.removeprefix('not restored: ')}."
            )
    _check_owned(repo.workspace, snaps, path)
    _write(repo.workspace / path, entry.data, mode)
    origin = sha[:8] if source == path else f"{source} at {sha[:8]}"
    made = snaps.snapshot([path], message=f"Restore {path} from {origin}")
    tip = made.commit if made is not None else str(repo.tip())
    return Rewound(tip)


def _check_owned(workspace: Path, snaps: Snapshotter, path: str) -> None:
    """Raise ConfigError unless the sync may write `path`: every folder on the way is a real
    folder (or absent), and what is there is a file the sync owns (or nothing)."""
    parts = path.split("/")
    for depth in range(1, len(parts)):
        folder = workspace.joinpath(*parts[:depth])
        try:
            st = folder.lstat()
        except FileNotFoundError:
            break
        if not stat.S_ISDIR(st.st_mode):
            raise ConfigError(
                f"{'/'.join(parts[:depth])!r} is not a folder here; {path!r} was not restored."
            )
    full = workspace / path
    if not os.path.lexists(full):
        if snaps.git.path_is_ignored(path):
            raise ConfigError(f"{path!r} is ignored (.gitignore), so the sync does not write it.")
        return
    if full.is_dir() and not full.is_symlink():
        raise ConfigError(f"{path!r} is a folder here; it was not replaced.")
    if path not in snaps.index:
        raise ConfigError(
            f"{path!r} here is a file the sync does not save (untracked, ignored or skipped);"
            " it was left as it is."
        )


def _write(full: Path, data: bytes, mode: int) -> None:
    """Put `data` at `full` in one step (a rename over it), creating its folders."""
    full.parent.mkdir(parents=True, exist_ok=True)
    temporary = full.parent / f".{full.name}.gitsync-{secrets.token_hex(4)}"
    try:
        if mode == FileMode.LINK:
            os.symlink(os.fsdecode(data), temporary)
        else:
            permissions = 0o777 if mode == FileMode.BLOB_EXECUTABLE else 0o666  # less umask
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, permissions)
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
        os.replace(temporary, full)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def restore_workspace(repo: SyncRepository, snaps: Snapshotter, sha: str) -> Rewound:
    """Bring the files the sync owns to snapshot `sha`'s tree (files it never owned stay as
    they are; what the screen withholds is not written), then snapshot the result on top."""
    commit = history.commit_at(repo.repo, sha)
    screened = inbound.screen(
        repo, snaps.index, commit.id, snaps.excludes, snaps.max_file_size_bytes, snaps.withheld
    )
    snaps.write_tree_of(commit.id, None, screened.withheld, list(screened.kept))
    snaps.skipped.update(screened.withheld)
    made = snaps.snapshot([], message=f"Restore the workspace to {sha[:8]}")
    tip = made.commit if made is not None else str(repo.tip())
    return Rewound(tip, screened.withheld, screened.kept)
