"""Snapshots: the engine's own index, what is staged (the staging policy of `filters`), the
commit and its message, and moving the workspace to another snapshot.

The sync index (`.git/gitsync/index`) records the tree this workspace holds, with stat data so
unchanged files are not reread. It is attached to the repository object with libgit2's
`git_repository_set_index`, so the user's `.git/index` is never read or written.

**Invariant: a snapshot's parent is a commit whose tree this workspace has held.** The sync
branch moves in exactly two ways, both here: `snapshot` commits what the workspace holds on top
of the current tip (or of the user's HEAD when there is none), and `take` first checks a commit
out into the workspace and only then points the branch at it. Nothing else writes the sync
branch, so a remote tip is never adopted without its files being here. The one exception is
deliberate: paths the inbound screen withheld (`inbound`) are held in the index as the remote
has them but never written to disk, and staging leaves them alone while they are absent.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pygit2
from pygit2.enums import CheckoutStrategy, DiffOption

from . import _native, filters
from .errors import WorkspaceError
from .packs import BlobPack
from .repository import (
    BASE_TRAILER,
    HEAD_TRAILER,
    SESSION_TRAILER,
    SIGNATURE_EMAIL,
    SIGNATURE_NAME,
    Progress,
    SyncRepository,
    session_label,
    valid_session_label,
)

log = logging.getLogger(__name__)

_SCAN_FLAGS = (
    DiffOption.INCLUDE_UNTRACKED
    | DiffOption.RECURSE_UNTRACKED_DIRS
    | DiffOption.INCLUDE_TYPECHANGE
    | DiffOption.UPDATE_INDEX
)
_MESSAGE_PATHS = 3
_READ_ATTEMPTS = 3  # reads of a file that changes while it is hashed, before waiting for it
_UNREADABLE_RETRIES = 100  # full-scan retries, each setting one unreadable file aside
# A snapshot that looks at this many paths writes its new blobs as packs (`packs`), reading each
# file once, instead of a loose object each through libgit2's `index.add`: a first full
# snapshot of 50k files took 25 s that way against 6 s for `git add -A && git commit`.
PACKED_SNAPSHOT_PATHS = 1000
_EXECUTABLE = 0o100755
_REGULAR = 0o100644


@dataclass(frozen=True)
class Snapshot:
    """A snapshot commit that was just written to the sync branch."""

    commit: str
    message: str
    paths: int


class Snapshotter:
    """Stages changed paths into the sync index and commits them to the sync branch."""

    def __init__(
        self,
        repo: SyncRepository,
        excludes: Iterable[str] = filters.DEFAULT_EXCLUDES,
        max_file_size_bytes: int = filters.DEFAULT_MAX_FILE_SIZE_BYTES,
        session: str | None = None,
        packed_from_paths: int = PACKED_SNAPSHOT_PATHS,
    ) -> None:
        self.repo = repo
        self.packed_from_paths = packed_from_paths
        # written into every snapshot (`Gitsync-Session`), so history can say which session
        # made it; a label that would not read back as one is left out
        self.session = valid_session_label(session or session_label())
        self._bound = repo.repo  # the repository object the index and ignore rules are on
        self.excludes = tuple(excludes)
        self.max_file_size_bytes = max_file_size_bytes
        self.skipped: dict[str, str] = {}  # path -> why it is not synced
        self.index_path = repo.private_dir / "index"
        self._index = self._load_index()
        self._withheld_path = repo.private_dir / "withheld.json"
        self.withheld = self._load_withheld()  # path -> why restore did not write it
        self._staged: list[tuple[str, str]] = []  # (A|M|D, path) of this snapshot, for its message
        self._links_seen: dict[str, bool] = {}  # folder -> is a symbolic link, per snapshot
        self._pack: BlobPack | None = None  # while a large snapshot stages: its new blobs
        self._packed: list[tuple[str, bytes, _native.IndexStat]] = []  # their index entries
        self._folders: set[str] = set()  # while a large snapshot stages: the index's folders
        self._not_ignored: set[str] = set()  # this snapshot's paths libgit2's scan found
        self.snapshots_since_pack = 0
        self.bytes_since_pack = 0  # what went into loose objects since the last packing
        _native.add_ignore_rules(self.git, filters.as_ignore_rules(self.excludes))

    @property
    def git(self) -> pygit2.Repository:
        """The repository object, with the sync index and the ignore rules; a new one once
        `SyncRepository.refresh_history` opened the repository anew."""
        if self.repo.repo is not self._bound:
            # A fresh index object from the file: freeing the old repository object detaches
            # the index it held, even when another repository object uses it too.
            self._index.write()
            self._bound = self.repo.repo
            self._index = self._load_index()
            _native.add_ignore_rules(self._bound, filters.as_ignore_rules(self.excludes))
        return self._bound

    @property
    def index(self) -> pygit2.Index:
        """The sync index (see the module's docstring)."""
        self.git  # noqa: B018 (follows a new repository object)
        return self._index

    def _load_withheld(self) -> dict[str, str]:
        try:
            saved = json.loads(self._withheld_path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(saved, dict):
            return {}
        return {str(p): str(r) for p, r in saved.items() if str(p) in self.index}

    def _save_withheld(self) -> None:
        if self.withheld or self._withheld_path.exists():
            self._withheld_path.write_text(json.dumps(self.withheld, sort_keys=True))

    def _load_index(self) -> pygit2.Index:
        try:
            on_disk = pygit2.Index(str(self.index_path))
        except (pygit2.GitError, OSError) as exc:
            raise WorkspaceError(f"Cannot write to {self.index_path.parent}: {exc}") from exc
        _native.use_index(self.git, on_disk)
        index: pygit2.Index = self.git.index  # the same index, now bound to the repository
        if len(index) == 0:
            start = self.repo.tip() or self.repo.user_head()
            if start is not None:
                index.read_tree(self.git[start].peel(pygit2.Tree))
        return index

    def scan(self) -> set[str]:
        """Paths to look at in a full snapshot: those that differ between the sync index and
        the workspace (`differing`), odd entries libgit2 passes over, and the skipped ones."""
        return self._scan(self.differing())

    def _scan(self, differing: set[str]) -> set[str]:
        changed = differing | self._odd_entries()
        changed |= set(self.skipped)  # looked at again: gone, renamed or fixed meanwhile
        return changed

    def differing(self) -> set[str]:
        """Paths that differ between the sync index and the workspace, using the stat cache
        (unchanged files are not reread): what the engine polls where inotify cannot watch.

        libgit2 gives up the whole scan at the first tracked file it cannot read (mode 000,
        another user's file): such a file is set aside for the scan (reported as a change, so
        that staging lists it as unreadable and keeps what the index has) and the scan runs
        again, so that one unreadable file never stops the others from being saved.
        """
        set_aside: dict[str, pygit2.IndexEntry] = {}
        try:
            for _ in range(_UNREADABLE_RETRIES):
                try:
                    diff = self.index.diff_to_workdir(flags=_SCAN_FLAGS)
                    break
                except pygit2.GitError as exc:
                    path = self._unreadable_in(str(exc))
                    if path is None or path in set_aside or path not in self.index:
                        raise
                    set_aside[path] = self.index[path]
                    self.index.remove(path)
            else:
                raise WorkspaceError("Too many files here cannot be read.")
        finally:
            for entry in set_aside.values():
                self.index.add(entry)
        changed: set[str] = set(set_aside)
        for delta in diff.deltas:
            changed.add(delta.old_file.path)
            changed.add(delta.new_file.path)
        return changed

    def _odd_entries(self) -> set[str]:
        """Pipes, sockets, devices, and names that are not UTF-8: libgit2's scan passes them
        over in silence, so the full scan looks for them here, to list them as skipped. Reads
        only directory entries (no stat per file); skips excluded and ignored folders."""
        found: set[str] = set()
        folders = [""]
        while folders:
            folder = folders.pop()
            try:
                entries = list(os.scandir(self.repo.workspace / folder))
            except OSError:
                continue  # an unreadable folder is listed by staging
            for entry in entries:
                path = f"{folder}{entry.name}"
                if path == ".git" or filters.is_excluded(path, self.excludes):
                    continue
                try:
                    if not _utf8(path):
                        found.add(path)
                    elif entry.is_dir(follow_symlinks=False):
                        if not self.git.path_is_ignored(f"{path}/"):
                            folders.append(f"{path}/")
                    elif not (
                        entry.is_file(follow_symlinks=False) or entry.is_symlink()
                    ) and not self.git.path_is_ignored(path):
                        found.add(path)
                except OSError:
                    continue
        return found

    def _unreadable_in(self, message: str) -> str | None:
        """The workspace path named in a libgit2 error about a file it could not open."""
        if "permission denied" not in message.lower():
            return None
        root = f"{self.repo.workspace}/"
        for quoted in re.findall(r"'([^']+)'", message):
            if isinstance(quoted, str) and quoted.startswith(root):
                return quoted.removeprefix(root)
        return None

    def snapshot(self, paths: Iterable[str] | None, message: str | None = None) -> Snapshot | None:
        """Stage `paths` (None: scan the whole workspace) and commit if the tree changed;
        `message` (one line) stands in for the one made from what changed."""
        try:
            if paths is None:
                # libgit2's scan leaves ignored files out: staging need not ask again for each
                self._not_ignored = self.differing()
                candidates = self._scan(self._not_ignored)
            else:
                candidates = set(paths)
            self._staged = []
            self._links_seen.clear()
            self._pack = self._pack_for(candidates)
            try:
                for relpath in sorted(candidates):
                    self._stage(relpath)
                self._write_packed()
            finally:
                if self._pack is not None:
                    self._pack.close()
                self._pack = None
                self._packed = []
                self._folders = set()
                self._not_ignored = set()
            tree = self.index.write_tree()
            commit = self._commit(tree, len(candidates), message)
            self.index.write()
        except OSError as exc:
            raise WorkspaceError(
                f"Cannot write the snapshot into {self.repo.gitdir}: {exc}"
            ) from exc
        except pygit2.GitError as exc:
            raise WorkspaceError(f"Cannot write the snapshot: {exc}") from exc
        return commit

    def _stage(self, relpath: str) -> None:
        """Bring one path's state into the sync index. An odd path never stops the others:
        it is left out and listed in `skipped` with the reason."""
        if filters.is_excluded(relpath, self.excludes):
            return
        if not _utf8(relpath):  # bytes the file system allowed but no UTF-8 name spells
            shown = relpath.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            if os.path.lexists(self.repo.workspace / relpath):
                self.skipped[shown] = "its name is not valid UTF-8, which git cannot store here"
            else:  # renamed or deleted: no longer a problem
                self.skipped.pop(shown, None)
            return
        linked = self._linked_parent(relpath)
        if linked is not None:  # the folder became a link: store the link, never follow it
            self._stage(linked)
            return
        full = os.path.join(self.repo.workspace, relpath)  # a str: pathlib costs 50k snapshots 1 s
        try:
            st = os.lstat(full)
        except (FileNotFoundError, NotADirectoryError):  # gone, or a folder became a file
            if relpath not in self.withheld:  # withheld: in the index, deliberately not here
                self._unstage(relpath)
            return
        except OSError as exc:
            self.skipped[relpath] = f"cannot be read: {(exc.strerror or str(exc)).lower()}"
            return
        if stat.S_ISDIR(st.st_mode):
            self._stage_tree(relpath)
            return
        tracked = relpath in self.index
        if not tracked and relpath not in self._not_ignored and self.git.path_is_ignored(relpath):
            return
        why = self._why_not_synced(relpath, full, st, tracked)
        if why is None and self._pack is not None and stat.S_ISREG(st.st_mode):
            why = self._add_packed(relpath, full, st)
            if why is None:
                return
        if why is not None:
            self.skipped[relpath] = why
            return
        self._add(relpath, full, st)

    def _why_not_synced(
        self, relpath: str, full: str, st: os.stat_result, tracked: bool
    ) -> str | None:
        """The staging policy for one file: what kind, how large, whether it holds a secret."""
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            return "not a regular file (a pipe, a socket or a device)"
        if stat.S_ISREG(st.st_mode) and filters.too_large(st.st_size, self.max_file_size_bytes):
            return f"larger than {self.max_file_size_bytes / 1e6:g} MB"
        secret = filters.secret_file_reason(relpath) if not tracked else None
        if secret is None and stat.S_ISREG(st.st_mode) and self._pack is None:
            secret = self._secret_in(full)  # a packed snapshot scans the bytes it stores
        return secret

    def _add(self, relpath: str, full: str, st: os.stat_result) -> None:
        """Stage a file or link the policy allows; record it for the commit message."""
        previous = self.index[relpath] if relpath in self.index else None  # noqa: SIM401 (Index has no get)
        if previous is None:  # a file or link where a folder was: the folder's entries go
            count = len(self.index)
            self.index.remove_directory(relpath)
            if len(self.index) != count:
                self._staged.append(("D", f"{relpath}/"))
        try:
            whole = self._add_whole(relpath, full, st)
        except (pygit2.GitError, ValueError, PermissionError) as exc:
            unreadable = isinstance(exc, PermissionError) or "permission denied" in str(exc).lower()
            self.skipped[relpath] = (
                "cannot be read: permission denied"
                if unreadable
                else f"cannot be stored in git: {exc}"
            )
            whole = False
        except FileNotFoundError:
            self._unstage(relpath)
            return
        if not whole:
            # Unreadable, or still being written after a few reads: the index keeps what it
            # had (a write in progress brings another change event; the next snapshot takes it).
            if previous is not None:
                self.index.add(previous)
            elif relpath in self.index:
                self.index.remove(relpath)
            return
        self.skipped.pop(relpath, None)
        if self.withheld.pop(relpath, None) is not None:  # the user's own file took its place
            self._save_withheld()
        self.bytes_since_pack += st.st_size
        if previous is None:
            self._staged.append(("A", relpath))
        elif previous.id != self.index[relpath].id:
            self._staged.append(("M", relpath))

    def _pack_for(self, candidates: set[str]) -> BlobPack | None:
        """A pack for this snapshot's new blobs when it looks at many paths and a file's
        blob is its bytes (no filter applies, see `no_filters`) and its mode is trusted."""
        if len(candidates) < self.packed_from_paths or not no_filter_settings(self.git):
            return None
        config = self.git.config
        if "core.filemode" in config and not config.get_bool("core.filemode"):
            return None  # libgit2 would keep each file's recorded mode
        attributes = f"/{_ATTRIBUTES}"
        if any(path == _ATTRIBUTES or path.endswith(attributes) for path in candidates):
            return None
        paths = [entry.path for entry in self.index]
        if any(path == _ATTRIBUTES or path.endswith(attributes) for path in paths):
            return None
        self._folders = {path[:end] for path in paths for end in _slashes(path)}
        return BlobPack(Path(self.git.path) / "objects" / "pack")

    def _add_packed(self, relpath: str, full: str, st: os.stat_result) -> str | None:
        """Stage a regular file through the pack: read it once, screen its bytes for secrets,
        store its blob; its index entry is added once the pack is written. Returns why it is
        not synced, or None."""
        assert self._pack is not None
        previous = self.index[relpath] if relpath in self.index else None  # noqa: SIM401 (Index has no get)
        try:
            read = _read_settled(full, st)
        except FileNotFoundError:
            self._unstage(relpath)
            return None
        except OSError as exc:
            return f"cannot be read: {(exc.strerror or str(exc)).lower()}"
        if read is None:
            return None  # still being written: the index keeps what it had (see `_add`)
        content, st = read
        secret = filters.secret_content_reason(content[: filters.SECRET_SCAN_BYTES])
        if secret is not None:
            return secret
        blob = self._pack.add(content)
        if previous is None and relpath in self._folders:  # a file where a folder was
            self.index.remove_directory(relpath)
            self._staged.append(("D", f"{relpath}/"))
        mode = _EXECUTABLE if st.st_mode & stat.S_IXUSR else _REGULAR
        self._packed.append((relpath, blob, _native.index_stat(st, mode)))
        if self._pack.full:
            self._write_packed()
        self.skipped.pop(relpath, None)
        if self.withheld.pop(relpath, None) is not None:
            self._save_withheld()
        if previous is None:
            self._staged.append(("A", relpath))
        elif previous.id.raw != blob:
            self._staged.append(("M", relpath))
        return None

    def _stop_packing(self) -> None:
        """Store what is packed so far; the rest of this snapshot stages through libgit2."""
        if self._pack is not None:
            self._write_packed()
            self._pack.close()
            self._pack = None

    def _write_packed(self) -> None:
        """Write the pending pack, then add its files to the index (libgit2 checks that an
        entry's blob is stored)."""
        if self._pack is None or not self._packed:
            return
        self._pack.flush()
        for relpath, blob, recorded in self._packed:
            _native.add_index_entry(self.index, relpath, blob, recorded)
        self._packed = []

    def _add_whole(self, relpath: str, full: str, st: os.stat_result) -> bool:
        """Add `relpath` to the index; False if it kept changing while it was read (a file
        rewritten while it is hashed would otherwise be committed torn)."""
        for _ in range(_READ_ATTEMPTS):
            self.index.add(relpath)
            after = os.lstat(full)
            if (after.st_size, after.st_mtime_ns, after.st_ino) == (
                st.st_size,
                st.st_mtime_ns,
                st.st_ino,
            ):
                return True
            st = after
        return False

    @staticmethod
    def _secret_in(path: str) -> str | None:
        try:
            with open(path, "rb") as handle:
                return filters.secret_content_reason(handle.read(filters.SECRET_SCAN_BYTES))
        except OSError:
            return None  # index.add reports unreadable files

    def _linked_parent(self, relpath: str) -> str | None:
        """The first folder on `relpath`'s way that is a symbolic link now, if any (each
        folder is looked at once per snapshot)."""
        parts = relpath.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            parent = "/".join(parts[:depth])
            linked = self._links_seen.get(parent)
            if linked is None:
                linked = self._links_seen[parent] = os.path.islink(self.repo.workspace / parent)
            if linked:
                return parent
        return None

    def _stage_tree(self, relpath: str) -> None:
        """A directory appeared or moved in: stage what is in it (and drop a file it replaced)."""
        self._unstage_file(relpath)
        self.skipped.pop(relpath, None)  # listed again below if it still cannot be read

        def unreadable(exc: OSError) -> None:  # a folder that cannot be listed: say so
            where = Path(exc.filename or relpath)
            if where.is_absolute():
                where = where.relative_to(self.repo.workspace)
            reason = (exc.strerror or str(exc)).lower()
            self.skipped[where.as_posix()] = f"cannot be read: {reason}"

        for root, dirs, files in os.walk(self.repo.workspace / relpath, onerror=unreadable):
            rel_root = Path(root).relative_to(self.repo.workspace).as_posix()
            kept = []
            for name in dirs:
                child = f"{rel_root}/{name}"
                if os.path.islink(os.path.join(root, name)):
                    self._stage(child)  # a link to a directory is stored as a link
                elif not filters.is_excluded(child, self.excludes) and not (
                    child not in self.index and self.git.path_is_ignored(f"{child}/")
                ):
                    kept.append(name)
            dirs[:] = kept
            if _ATTRIBUTES in files:  # a filter may apply from here down: libgit2 stages it
                self._stop_packing()
            for name in files:
                self._stage(f"{rel_root}/{name}")

    def _unstage_file(self, relpath: str) -> None:
        if relpath in self.index:
            self.index.remove(relpath)
            self._staged.append(("D", relpath))

    def _unstage(self, relpath: str) -> None:
        self._unstage_file(relpath)
        before = len(self.index)
        self.index.remove_directory(relpath)
        if len(self.index) != before:
            self._staged.append(("D", f"{relpath}/"))
        self.skipped.pop(relpath, None)

    def _commit(self, tree: pygit2.Oid, touched: int, summary: str | None) -> Snapshot | None:
        tip = self.repo.tip()
        base = self.repo.user_head()
        previous = tip if tip is not None else base
        previous_tree = self.git[previous].peel(pygit2.Commit).tree if previous else None
        if previous_tree is not None and previous_tree.id == tree:
            return None
        if previous_tree is None and len(self.index) == 0:
            return None
        described = f"{summary}\n" if summary else self._describe(self._staged)
        message = described + self._trailers(base)
        parents = [p for p in (tip, base) if p is not None]
        if len(parents) == 2 and parents[0] == parents[1]:
            parents.pop()
        author = pygit2.Signature(*self.repo.author())
        committer = pygit2.Signature(SIGNATURE_NAME, SIGNATURE_EMAIL)
        oid = self.git.create_commit(None, author, committer, message, tree, parents)
        self.git.references.create(self.repo.sync_ref, oid, force=True)
        self.snapshots_since_pack += 1
        log.debug("snapshot %s: %s", oid, message)
        return Snapshot(commit=str(oid), message=message, paths=touched)

    def _trailers(self, base: pygit2.Oid | None) -> str:
        """Record where the user's HEAD was, so a restore can put it back there, and which
        session made the snapshot."""
        lines = []
        if base is not None:
            lines.append(f"{BASE_TRAILER}: {base}")
            head_ref = self.repo.user_head_ref()
            if head_ref is not None:
                lines.append(f"{HEAD_TRAILER}: {head_ref}")
        if self.session is not None:
            lines.append(f"{SESSION_TRAILER}: {self.session}")
        return "\n" + "\n".join(lines) + "\n" if lines else ""

    @staticmethod
    def _describe(staged: list[tuple[str, str]]) -> str:
        """A commit message that says what changed, e.g. 'Update a.ipynb, b.csv (+3 more)'.

        Built from what this snapshot staged, not from a diff of two whole trees, which costs
        more than the rest of a one-file snapshot in a large workspace.
        """
        kinds = {kind for kind, _ in staged}
        verb = {frozenset("A"): "Add", frozenset("D"): "Delete"}.get(frozenset(kinds), "Update")
        paths = [path for _, path in staged] or ["the workspace"]
        listed = ", ".join(paths[:_MESSAGE_PATHS])
        more = len(paths) - _MESSAGE_PATHS
        return f"{verb} {listed}" + (f" (+{more} more)" if more > 0 else "") + "\n"

    # -- moving to another snapshot -------------------------------------------------------------

    def take(
        self,
        commit: pygit2.Oid,
        progress: Progress | None = None,
        withheld: dict[str, str] | None = None,
        dropped: list[str] | None = None,
    ) -> None:
        """Make `commit` this workspace's snapshot: check its tree out, then point the sync
        branch at it (in that order: see the module's invariant).

        Paths in `withheld` (see `inbound`) are not written: where this workspace has no file
        there, the index takes the commit's entry, so snapshots keep it as it is; a local file
        there stays as it is and is what the next snapshot records. Paths in `dropped` (local
        files the sync never owned are in the way) are neither written nor kept: the next
        snapshot records that this workspace does not sync them.
        """
        self.write_tree_of(commit, progress, withheld, dropped)
        self.git.references.create(self.repo.sync_ref, commit, force=True)

    def write_tree_of(
        self,
        commit: pygit2.Oid,
        progress: Progress | None = None,
        withheld: dict[str, str] | None = None,
        dropped: list[str] | None = None,
    ) -> None:
        """Check `commit`'s tree out over the files the sync owns, with `withheld` and
        `dropped` as `take` says, leaving the sync branch where it is (a restore of an earlier
        snapshot then commits the result on top)."""
        withheld = withheld or {}
        skipped = [*withheld, *(dropped or [])]
        target = self.git[commit].peel(pygit2.Commit).tree_id
        if skipped:
            target = self._tree_without(commit, skipped)
        self.checkout(target, progress)
        if withheld:
            tree = self.git[commit].peel(pygit2.Tree)
            for path, reason in withheld.items():
                if not os.path.lexists(self.repo.workspace / path):
                    entry = tree[path]
                    self.index.add(pygit2.IndexEntry(path, entry.id, entry.filemode))
                    self.withheld[path] = reason
            self.index.write()
            self._save_withheld()

    def _tree_without(self, commit: pygit2.Oid, paths: list[str]) -> pygit2.Oid:
        """`commit`'s tree less `paths`, each replaced by this workspace's own file where
        there is one, so that the checkout neither writes nor deletes anything there."""
        index = pygit2.Index()
        index.read_tree(self.git[commit].peel(pygit2.Tree))
        for path in paths:
            index.remove(path)
            on_disk = os.path.lexists(self.repo.workspace / path)
            if on_disk and path in self.index:
                index.add(self.index[path])
        tree: pygit2.Oid = index.write_tree(self.git)
        return tree

    def checkout(self, target: pygit2.Oid, progress: Progress | None = None) -> None:
        """Make the workspace match `target`'s tree, moving from what the sync index holds.

        SAFE: a file that differs from the index (the user's unsaved work) is never
        overwritten; libgit2 then refuses the whole checkout before touching anything. Files
        that neither side tracks are left alone. The sync index ends up equal to `target` (a
        commit or a tree), with fresh stat data.
        """
        tree = self.git[target].peel(pygit2.Tree)
        try:
            _native.checkout_tree_from_index(
                self.git,
                tree,
                self.index,
                CheckoutStrategy.SAFE
                | CheckoutStrategy.RECREATE_MISSING
                | CheckoutStrategy.DONT_OVERWRITE_IGNORED,
                _CheckoutProgress(progress) if progress else None,
                disable_filters=no_filters(self.git, tree),
            )
        except pygit2.GitError as exc:
            raise WorkspaceError(f"Cannot restore the workspace: {exc}") from exc
        self.index.read(force=True)
        self.index.write()

    # -- packing ----------------------------------------------------------------------------------

    def wants_packing(self, every_snapshots: int, every_bytes: int) -> bool:
        """Time to pack: after so many snapshots, or sooner when large files were saved."""
        return self.snapshots_since_pack >= every_snapshots or self.bytes_since_pack >= every_bytes

    def maintain(self) -> None:
        """Pack loose objects (see `SyncRepository.maintain`) and start counting again."""
        self.repo.maintain()
        self.snapshots_since_pack = 0
        self.bytes_since_pack = 0


_EOL_SETTINGS = ("core.autocrlf", "core.eol", "core.attributesFile")
_ATTRIBUTES = ".gitattributes"
_OFF = ("false", "no", "off", "0")


def no_filters(git: pygit2.Repository, tree: pygit2.Tree) -> bool:
    """Whether no git filter (end-of-line conversion, `ident`, a clean/smudge driver such as
    Git LFS) can apply to the files of `tree` here: no attributes file in the tree, in
    `.git/info` or in the user's or the system's git configuration, and no end-of-line
    setting. Then a file is its blob's bytes, and a checkout need not look up the attributes
    of every file it writes (libgit2 resolves each file's folder with `realpath` for that: 18
    system calls a file, most of a restore's CPU time at 50k files)."""
    if not no_filter_settings(git):
        return False
    trees = [tree]
    while trees:
        for entry in trees.pop():
            if entry.name == _ATTRIBUTES:
                return False
            if entry.type == pygit2.enums.ObjectType.TREE:
                trees.append(git[entry.id].peel(pygit2.Tree))
    return True


def no_filter_settings(git: pygit2.Repository) -> bool:
    """No end-of-line setting and no attributes file outside the workspace's own
    `.gitattributes` files (`.git/info/attributes`, the user's, the system's)."""
    config = git.config
    for key in _EOL_SETTINGS:
        if key in config and not (key == "core.autocrlf" and str(config[key]).lower() in _OFF):
            return False
    places = [Path(git.path) / "info" / "attributes", Path("/etc/gitattributes")]
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    places.append(Path(xdg) / "git" / "attributes")
    return not any(place.exists() for place in places)


class _CheckoutProgress(pygit2.CheckoutCallbacks):
    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self._progress = progress

    def checkout_progress(self, path: str, completed_steps: int, total_steps: int) -> None:
        self._progress("checkout", completed_steps, total_steps, 0)


def _read_settled(full: str, st: os.stat_result) -> tuple[bytes, os.stat_result] | None:
    """The whole of the regular file `full` and its stat data, read once with as few system
    calls as git makes (open, read, fstat, close); None if it changed while it was read, on
    every one of a few attempts (a file rewritten while it is hashed would be stored torn)."""
    for _ in range(_READ_ATTEMPTS):
        fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            # One byte more than expected, so that a file that grew shows; a short read (a
            # large file) reads on. A file that changes after this read shows in fstat.
            chunks = [os.read(fd, st.st_size + 1)]
            while chunks[-1] and sum(map(len, chunks)) < st.st_size:
                chunks.append(os.read(fd, st.st_size + 1))
            after = os.fstat(fd)
        finally:
            os.close(fd)
        content = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if (
            stat.S_ISREG(after.st_mode)
            and len(content) == after.st_size
            and (
                after.st_size,
                after.st_mtime_ns,
                after.st_ino,
            )
            == (st.st_size, st.st_mtime_ns, st.st_ino)
        ):
            return content, after
        st = os.lstat(full)
        if not stat.S_ISREG(st.st_mode):
            return None
    return None


def _slashes(path: str) -> Iterable[int]:
    """Where each of `path`'s folders ends: `path[:end]` is the folder."""
    end = path.find("/")
    while end != -1:
        yield end
        end = path.find("/", end + 1)


def _utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
