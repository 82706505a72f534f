"""Every pygit2 call the engine makes: snapshot, push, and what they need.

Everything here blocks. The engine runs it on its single git thread and never on the Jupyter
event loop; nothing here knows about asyncio or tornado. Snapshots are written with the engine's
own index (`.git/gitsync/index`) to `refs/heads/<branch>`: the user's HEAD, index, branches and
stash are never written.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pygit2
from pygit2.enums import CheckoutStrategy, DiffOption

from . import _native, filters, notebooks
from .errors import (
    AuthRequired,
    ConfigError,
    GitSyncError,
    PushRejected,
    RemoteNotFound,
    RemoteUnavailable,
    WorkspaceError,
    redact,
)

log = logging.getLogger(__name__)

SIGNATURE_NAME = "Jupyter GitSync"
SIGNATURE_EMAIL = "gitsync@localhost"
TOKEN_USERNAME = "x-access-token"  # what GitHub expects as the Basic-auth user for a token
_SCAN_FLAGS = (
    DiffOption.INCLUDE_UNTRACKED
    | DiffOption.RECURSE_UNTRACKED_DIRS
    | DiffOption.INCLUDE_TYPECHANGE
    | DiffOption.UPDATE_INDEX
)
_MESSAGE_PATHS = 3
BASE_TRAILER = "Gitsync-Base"
HEAD_TRAILER = "Gitsync-Head"

TokenGetter = Callable[[], "str | None"]
# progress(phase, done, total, bytes): called on the git thread during long work
Progress = Callable[[str, int, int, int], None]


@dataclass(frozen=True)
class Snapshot:
    """A snapshot commit that was just written to the sync branch."""

    commit: str
    message: str
    paths: int


@dataclass(frozen=True)
class Merged:
    """The result of merging two snapshots: the merge commit and the paths both changed."""

    commit: pygit2.Oid
    conflicts: list[str]


@dataclass(frozen=True)
class Heads:
    """Where the sync branch stands locally and on the remote, as far as we know."""

    head: str | None
    remote_head: str | None
    unpushed: int


def validate_branch(branch: str) -> str:
    """Return the full ref name of `branch`, or raise ConfigError in plain words."""
    ref = f"refs/heads/{branch}"
    if not branch or not pygit2.reference_is_valid_name(ref):
        raise ConfigError(f"{branch!r} is not a valid git branch name.")
    return ref


def sanitize_ref_component(name: str) -> str:
    """Turn a user name into something that is valid inside a branch name."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip(".-")
    return cleaned or "user"


class SyncRepo:
    """The workspace's repository as the sync engine sees it: one object, one thread."""

    def __init__(
        self,
        workspace: Path,
        branch: str,
        excludes: Iterable[str] = filters.DEFAULT_EXCLUDES,
        max_file_size_bytes: int = filters.DEFAULT_MAX_FILE_SIZE_BYTES,
    ) -> None:
        self.workspace = workspace.resolve()
        self.tracking_prefix = "refs/gitsync/fetched/"
        self.switch_branch(branch)
        self.rescue_refs: list[str] = []  # rescue branches still to push
        self.excludes = tuple(excludes)
        self.max_file_size_bytes = max_file_size_bytes
        self.skipped: dict[str, str] = {}
        self.repo = self._open_or_init()
        self.index_path = Path(self.repo.path) / "gitsync" / "index"
        self._engine_lock = self._lock_engine()
        self._remove_stale_locks()
        self.index = self._load_index()
        self._staged: list[tuple[str, str]] = []  # (A|M|D, path) of this snapshot, for its message
        self.snapshots_since_pack = 0
        self.bytes_since_pack = 0  # what went into loose objects since the last packing
        _native.add_ignore_rules(self.repo, filters.as_ignore_rules(self.excludes))
        self._remote_known = False
        self.default_branch: str | None = None

    def switch_branch(self, branch: str) -> None:
        """Write and push snapshots to `branch` from now on."""
        self.sync_ref = validate_branch(branch)
        self.branch = branch
        self.tracking_ref = f"refs/gitsync/remote/{branch}"
        self._remote_known = False

    def rename_branch(self, branch: str) -> None:
        """Sync to `branch` from now on, taking along local snapshots that were never pushed."""
        tip = self._tip()
        never_pushed = self._ref_target(self.tracking_ref) is None
        old = self.repo.references.get(self.sync_ref)
        self.switch_branch(branch)
        if tip is not None and self._tip() is None:
            self.repo.references.create(self.sync_ref, tip)
            if never_pushed and old is not None:
                old.delete()

    # -- opening -------------------------------------------------------------------------

    def _open_or_init(self) -> pygit2.Repository:
        if not self.workspace.is_dir():
            raise WorkspaceError(f"The workspace {self.workspace} does not exist.")
        try:
            if (self.workspace / ".git").exists():
                return pygit2.Repository(str(self.workspace))
            log.info("workspace is not a git repository yet; initialising it")
            return pygit2.init_repository(str(self.workspace), initial_head="main")
        except (pygit2.GitError, OSError) as exc:
            raise WorkspaceError(
                f"Cannot open or create a git repository in {self.workspace}: {exc}"
            ) from exc

    def _lock_engine(self) -> IO[bytes]:
        """One engine per repository: an exclusive lock the OS drops when the process dies
        (even by kill -9), so a crashed session never blocks the next one. Held as long as
        this object lives."""
        path = self.index_path.parent / "engine.lock"
        try:
            path.parent.mkdir(exist_ok=True)
            handle = path.open("ab")
        except OSError as exc:
            raise WorkspaceError(f"Cannot write to {path.parent}: {exc.strerror}") from exc
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise ConfigError(
                "Another Jupyter server is already syncing this workspace; this one will not,"
                " so that they do not write over each other."
            ) from None
        return handle

    def close(self) -> None:
        """Release the engine lock (the OS also does when the process ends)."""
        self._engine_lock.close()

    def _remove_stale_locks(self) -> None:
        """Lock files of ours that a killed process left behind. We hold the engine lock, so
        no live process of ours is writing them; the user's own locks are not ours to touch."""
        gitdir = Path(self.repo.path)
        candidates = [self.index_path.with_name("index.lock")]
        for ref in (self.sync_ref, self.tracking_ref):
            candidates.append(gitdir / f"{ref}.lock")
        for lock in candidates:
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
                log.warning("gitsync: removed a stale lock left by a stopped process: %s", lock)

    def wants_packing(self, every_snapshots: int, every_bytes: int) -> bool:
        """Time to pack: after so many snapshots, or sooner when large files were saved."""
        return self.snapshots_since_pack >= every_snapshots or self.bytes_since_pack >= every_bytes

    def maintain(self) -> None:
        """Pack loose objects now and then, so that .git stays bounded (100 saves of a large
        notebook are 100 loose copies until packed, and packed they delta to little). Uses the
        git CLI's own maintenance when git is installed."""
        git = shutil.which("git")
        if git is None:
            return
        env = {**os.environ, "GIT_DIR": self.repo.path}
        for command in (["repack", "-d", "-q"], ["gc", "--auto", "--quiet"]):
            subprocess.run([git, *command], env=env, capture_output=True, check=False)
        self.snapshots_since_pack = 0
        self.bytes_since_pack = 0

    def _load_index(self) -> pygit2.Index:
        try:
            self.index_path.parent.mkdir(exist_ok=True)
            on_disk = pygit2.Index(str(self.index_path))
        except (pygit2.GitError, OSError) as exc:
            raise WorkspaceError(f"Cannot write to {self.index_path.parent}: {exc}") from exc
        _native.use_index(self.repo, on_disk)
        index: pygit2.Index = self.repo.index  # the same index, now bound to the repository
        if len(index) == 0:
            start = self._tip() or self.user_head()
            if start is not None:
                index.read_tree(self.repo[start].peel(pygit2.Commit).tree)
        return index

    def origin_url(self) -> str | None:
        """The URL of the workspace's `origin` remote, if it has one."""
        try:
            return self.repo.remotes["origin"].url
        except (KeyError, ValueError):
            return None

    # -- refs -------------------------------------------------------------------------------

    def _ref_target(self, name: str) -> pygit2.Oid | None:
        ref = self.repo.references.get(name)
        return None if ref is None else pygit2.Oid(hex=str(ref.resolve().target))

    def _tip(self) -> pygit2.Oid | None:
        return self._ref_target(self.sync_ref)

    def user_head(self) -> pygit2.Oid | None:
        """The commit the user's HEAD is on, or None on an unborn branch."""
        try:
            return None if self.repo.head_is_unborn else pygit2.Oid(hex=str(self.repo.head.target))
        except pygit2.GitError:
            return None

    def heads(self) -> Heads:
        """Local snapshot head, the remote head we last saw, and the snapshots in between."""
        tip = self._tip()
        remote = self._ref_target(self.tracking_ref)
        unpushed = 0
        if tip is not None and tip != remote:
            walker = self.repo.walk(tip)
            walker.simplify_first_parent()
            if remote is not None:
                walker.hide(remote)
            for commit in walker:
                if not self._is_snapshot(commit):
                    break
                unpushed += 1
        return Heads(
            head=str(tip) if tip else None,
            remote_head=str(remote) if remote else None,
            unpushed=unpushed,
        )

    @staticmethod
    def _is_snapshot(commit: pygit2.Commit) -> bool:
        return commit.committer.email == SIGNATURE_EMAIL

    # -- snapshots --------------------------------------------------------------------------

    def scan(self) -> set[str]:
        """Paths that differ between the sync index and the workspace, using the stat cache."""
        diff = self.index.diff_to_workdir(flags=_SCAN_FLAGS)
        changed: set[str] = set()
        for delta in diff.deltas:
            changed.add(delta.old_file.path)
            changed.add(delta.new_file.path)
        return changed

    def snapshot(self, paths: Iterable[str] | None) -> Snapshot | None:
        """Stage `paths` (None: scan the whole workspace) and commit if the tree changed."""
        try:
            candidates = self.scan() if paths is None else set(paths)
            self._staged = []
            for relpath in sorted(candidates):
                self._stage(relpath)
            tree = self.index.write_tree()
            commit = self._commit(tree, len(candidates))
            self.index.write()
        except OSError as exc:
            raise WorkspaceError(f"Cannot write the snapshot into {self.repo.path}: {exc}") from exc
        except pygit2.GitError as exc:
            raise WorkspaceError(f"Cannot write the snapshot: {exc}") from exc
        return commit

    def _stage(self, relpath: str) -> None:
        if filters.is_excluded(relpath, self.excludes):
            return
        full = self.workspace / relpath
        try:
            st = full.lstat()
        except FileNotFoundError:
            self._unstage(relpath)
            return
        except OSError as exc:
            self.skipped[relpath] = f"cannot be read: {exc.strerror}"
            return
        if stat.S_ISDIR(st.st_mode):
            self._stage_tree(relpath)
            return
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            return
        tracked = relpath in self.index
        if not tracked and self.repo.path_is_ignored(relpath):
            return
        if stat.S_ISREG(st.st_mode) and filters.too_large(st.st_size, self.max_file_size_bytes):
            limit_mb = self.max_file_size_bytes / 1e6
            self.skipped[relpath] = f"larger than {limit_mb:g} MB"
            return
        secret = filters.secret_file_reason(relpath) if not tracked else None
        if secret is None and stat.S_ISREG(st.st_mode):
            secret = self._secret_in(full)
        if secret is not None:
            self.skipped[relpath] = secret
            return
        before = self.index[relpath].id if tracked else None
        try:
            self.index.add(relpath)
        except (pygit2.GitError, ValueError) as exc:
            self.skipped[relpath] = f"cannot be stored in git: {exc}"
            return
        except PermissionError:
            self.skipped[relpath] = "cannot be read: permission denied"
            return
        except FileNotFoundError:
            self._unstage(relpath)
            return
        self.skipped.pop(relpath, None)
        self.bytes_since_pack += st.st_size
        if before is None:
            self._staged.append(("A", relpath))
        elif before != self.index[relpath].id:
            self._staged.append(("M", relpath))

    @staticmethod
    def _secret_in(path: Path) -> str | None:
        try:
            with path.open("rb") as handle:
                return filters.secret_content_reason(handle.read(filters.SECRET_SCAN_BYTES))
        except OSError:
            return None  # index.add reports unreadable files

    def _stage_tree(self, relpath: str) -> None:
        """A directory appeared or moved in: stage what is in it (and drop a file it replaced)."""
        self._unstage_file(relpath)
        for root, dirs, files in os.walk(self.workspace / relpath):
            rel_root = Path(root).relative_to(self.workspace).as_posix()
            kept = []
            for name in dirs:
                child = f"{rel_root}/{name}"
                if os.path.islink(os.path.join(root, name)):
                    self._stage(child)  # a link to a directory is stored as a link
                elif not filters.is_excluded(child, self.excludes) and not (
                    child not in self.index and self.repo.path_is_ignored(f"{child}/")
                ):
                    kept.append(name)
            dirs[:] = kept
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

    def _commit(self, tree: pygit2.Oid, touched: int) -> Snapshot | None:
        tip = self._tip()
        base = self.user_head()
        previous = tip if tip is not None else base
        previous_tree = self.repo[previous].peel(pygit2.Commit).tree if previous else None
        if previous_tree is not None and previous_tree.id == tree:
            return None
        if previous_tree is None and len(self.index) == 0:
            return None
        message = self._describe(self._staged)
        message += self._trailers(base)
        parents = [p for p in (tip, base) if p is not None]
        if len(parents) == 2 and parents[0] == parents[1]:
            parents.pop()
        signature = pygit2.Signature(*self._author())
        committer = pygit2.Signature(SIGNATURE_NAME, SIGNATURE_EMAIL)
        oid = self.repo.create_commit(None, signature, committer, message, tree, parents)
        self.repo.references.create(self.sync_ref, oid, force=True)
        self.snapshots_since_pack += 1
        log.debug("snapshot %s: %s", oid, message)
        return Snapshot(commit=str(oid), message=message, paths=touched)

    def _trailers(self, base: pygit2.Oid | None) -> str:
        """Record where the user's HEAD was, so a restore can put it back there."""
        if base is None:
            return ""
        lines = [f"{BASE_TRAILER}: {base}"]
        if not self.repo.head_is_detached:
            lines.append(f"{HEAD_TRAILER}: {self.repo.references['HEAD'].target}")
        return "\n" + "\n".join(lines) + "\n"

    def base_of(self, snapshot: pygit2.Oid) -> tuple[pygit2.Oid | None, str | None]:
        """The commit the user's HEAD was on when `snapshot` was made, and the branch name."""
        commit = self.repo[snapshot].peel(pygit2.Commit)
        base = head = None
        for line in commit.message.splitlines():
            key, _, value = line.partition(": ")
            if key == BASE_TRAILER:
                base = pygit2.Oid(hex=value.strip())
            elif key == HEAD_TRAILER:
                head = value.strip()
        if base is None and not self._is_snapshot(commit):
            base = commit.id  # a plain commit (say, main) is its own base
        return base, head

    def _author(self) -> tuple[str, str]:
        config = self.repo.config
        try:
            return str(config["user.name"]), str(config["user.email"])
        except KeyError:
            user = os.environ.get("JUPYTERHUB_USER") or SIGNATURE_NAME
            return user, SIGNATURE_EMAIL

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

    # -- the remote -------------------------------------------------------------------------

    def push(self, url: str, token: TokenGetter) -> Heads:
        """Send the sync branch to `url` without ever forcing; return the heads afterwards."""
        callbacks = _Callbacks(token)
        remote = self.repo.remotes.create_anonymous(url)
        try:
            with _translated_errors(token):
                if not self._remote_known:
                    # Its own connection, since one Remote connects either to fetch or to
                    # push, and its own callbacks, since each connection asks for credentials.
                    self._learn_remote(self.repo.remotes.create_anonymous(url), _Callbacks(token))
                tip = self._tip()
                specs = [f"{ref}:{ref}" for ref in self.rescue_refs]
                if tip is not None and tip != self._ref_target(self.tracking_ref):
                    specs.append(f"{self.sync_ref}:{self.sync_ref}")
                if specs:
                    remote.push(specs, callbacks=callbacks)
                    if callbacks.rejection:
                        raise PushRejected(
                            f"The remote refused the update of {self.branch}: {callbacks.rejection}"
                        )
                    if tip is not None:
                        self.repo.references.create(self.tracking_ref, tip, force=True)
                    self.rescue_refs.clear()
        except PushRejected:
            self._remote_known = False  # look again before the next attempt
            raise
        return self.heads()

    # -- restore primitives (restore.py decides which to use) --------------------------------

    def list_remote(self, url: str, token: TokenGetter) -> dict[str, pygit2.Oid]:
        """The remote's branches (full ref names) and, under 'HEAD', its default branch tip;
        `default_branch` is set to the ref HEAD points at."""
        with _translated_errors(token):
            heads = self.repo.remotes.create_anonymous(url).list_heads(callbacks=_Callbacks(token))
        found = {h.name: h.oid for h in heads if h.name}
        self.default_branch = next(
            (h.symref_target for h in heads if h.name == "HEAD" and h.symref_target), None
        )
        return found

    def fetch(
        self,
        url: str,
        token: TokenGetter,
        refspecs: list[str],
        progress: Progress | None = None,
    ) -> None:
        """Fetch `refspecs` (into refs of our own namespace; the user's remote refs stay)."""
        callbacks = _Callbacks(token, progress)
        with _translated_errors(token):
            self.repo.remotes.create_anonymous(url).fetch(refspecs, callbacks=callbacks)

    def checkout(self, target: pygit2.Oid, progress: Progress | None = None) -> None:
        """Make the workspace match `target`'s tree, moving from what the sync index holds.

        SAFE: a file that differs from the index (the user's unsaved work) is never
        overwritten; libgit2 then refuses the whole checkout before touching anything. Files
        that neither side tracks are left alone. The sync index ends up equal to `target`,
        with fresh stat data.
        """
        tree = self.repo[target].peel(pygit2.Tree)
        callbacks = _CheckoutProgress(progress) if progress else None
        try:
            _native.checkout_tree_from_index(
                self.repo,
                tree,
                self.index,
                CheckoutStrategy.SAFE | CheckoutStrategy.RECREATE_MISSING,
                callbacks,
            )
        except pygit2.GitError as exc:
            raise WorkspaceError(f"Cannot restore the workspace: {exc}") from exc
        self.index.read(force=True)
        self.index.write()

    def set_sync_tip(self, commit: pygit2.Oid | None) -> None:
        """Point the sync branch at `commit` (after a restore or merge) and forget the remote's
        state, so the next push looks again."""
        if commit is None:
            ref = self.repo.references.get(self.sync_ref)
            if ref is not None:
                ref.delete()
        else:
            self.repo.references.create(self.sync_ref, commit, force=True)
        self._remote_known = False

    def set_user_head(self, commit: pygit2.Oid, branch_ref: str | None) -> None:
        """Put the user's HEAD (and its index) on `commit`, on `branch_ref` if given.

        Only restore does this, before the user works: it is what makes `git status` show
        exactly the user's own work as changes against the commit they had.
        """
        user = pygit2.Repository(str(self.workspace))  # its own object: the user's index
        if branch_ref and pygit2.reference_is_valid_name(branch_ref):
            user.references.create(branch_ref, commit, force=True)
            user.set_head(branch_ref)
        else:
            user.set_head(commit)
        index = user.index
        index.read_tree(user[commit].peel(pygit2.Tree))
        index.write()

    def is_snapshot_commit(self, oid: pygit2.Oid) -> bool:
        """True for a commit this extension wrote."""
        return self._is_snapshot(self.repo[oid].peel(pygit2.Commit))

    def merge_snapshots(self, ours: pygit2.Oid, theirs: pygit2.Oid) -> Merged:
        """Three-way merge two snapshots into a commit on top of both.

        Changes that do not overlap are combined. Where both sides changed a file, this
        workspace's version is kept whole and the path is reported (the caller keeps `theirs`
        on a rescue branch). With no merge base in a shallow history, the snapshot's recorded
        base commit stands in, so a shallow clone never turns into a false conflict.
        """
        base = self.repo.merge_base(ours, theirs)
        if base is None:
            # No common history here. The commit the remote snapshot was based on is the
            # right base when this workspace grew from it too: provably, or as far as a
            # shallow clone (whose history stops short) can tell.
            recorded = self.base_of(theirs)[0]
            if (
                recorded is not None
                and recorded in self.repo
                and (self.repo.is_shallow or self.is_ancestor(recorded, ours))
            ):
                base = recorded
        trees = [self.repo[c].peel(pygit2.Tree) for c in (ours, theirs)]
        ancestor = self.repo[base].peel(pygit2.Tree) if base is not None else None
        index = self.repo.merge_trees(ancestor or self._empty_tree(), trees[0], trees[1])
        conflicts: list[str] = []
        if index.conflicts is not None:
            for base_entry, mine, other in list(index.conflicts):
                path = (mine or other).path
                del index.conflicts[path]
                merged = self._merge_notebook(base_entry, mine, other)
                if merged is not None:
                    index.add(merged)
                    continue
                conflicts.append(path)
                if mine is not None:  # keep this workspace's version whole
                    index.add(pygit2.IndexEntry(mine.path, mine.id, mine.mode))
        tree = index.write_tree(self.repo)
        message = (
            f"Merge the remote's snapshots of {self.branch}\n"
            + (f"\nKept this workspace's version of: {', '.join(sorted(conflicts))}\n"
               if conflicts else "")
        )  # fmt: skip
        committer = pygit2.Signature(SIGNATURE_NAME, SIGNATURE_EMAIL)
        author = pygit2.Signature(*self._author())
        commit = self.repo.create_commit(None, author, committer, message, tree, [ours, theirs])
        return Merged(commit=commit, conflicts=sorted(conflicts))

    def _merge_notebook(
        self,
        base: pygit2.IndexEntry | None,
        mine: pygit2.IndexEntry | None,
        other: pygit2.IndexEntry | None,
    ) -> pygit2.IndexEntry | None:
        """Both sides changed a notebook: merge its cells, or None if they really conflict."""
        if mine is None or other is None or not str(mine.path).endswith(".ipynb"):
            return None
        blobs = [self.repo[e.id].peel(pygit2.Blob).data if e else None for e in (base, mine)]
        merged = notebooks.merge(
            blobs[0], blobs[1] or b"", self.repo[other.id].peel(pygit2.Blob).data
        )
        if merged is None:
            return None
        return pygit2.IndexEntry(mine.path, self.repo.create_blob(merged), mine.mode)

    def _empty_tree(self) -> pygit2.Tree:
        return self.repo[self.repo.TreeBuilder().write()].peel(pygit2.Tree)

    def create_rescue_branch(self, name: str, commit: pygit2.Oid) -> None:
        """Keep `commit` on branch `name`, locally and (at the next push) on the remote."""
        ref = validate_branch(name)
        self.repo.references.create(ref, commit, force=True)
        self.rescue_refs.append(ref)

    def describe_commit(self, oid: pygit2.Oid) -> tuple[int, str, bool]:
        """A commit's time (Unix seconds), first message line, and whether it is a snapshot."""
        commit = self.repo[oid].peel(pygit2.Commit)
        summary = commit.message.splitlines()[0] if commit.message else ""
        return commit.commit_time, summary, self._is_snapshot(commit)

    def tip(self) -> pygit2.Oid | None:
        """The local sync branch tip."""
        return self._tip()

    def is_ancestor(self, ancestor: pygit2.Oid, commit: pygit2.Oid) -> bool:
        """True if `ancestor` is `commit` or in its history (False if unknown here)."""
        if ancestor == commit:
            return True
        try:
            return bool(self.repo.descendant_of(commit, ancestor))
        except pygit2.GitError:
            return False

    def _learn_remote(self, remote: pygit2.Remote, callbacks: _Callbacks) -> None:
        """Find where the remote's sync branch is, so that we build on it and never force."""
        heads = remote.list_heads(callbacks=callbacks)
        remote_tip = next((h.oid for h in heads if h.name == self.sync_ref), None)
        if remote_tip is None:
            self._remote_known = True
            ref = self.repo.references.get(self.tracking_ref)
            if ref is not None:
                ref.delete()
            return
        if remote_tip not in self.repo:
            remote.fetch([f"+{self.sync_ref}:{self.tracking_ref}"], callbacks=callbacks)
        self.repo.references.create(self.tracking_ref, remote_tip, force=True)
        tip = self._tip()
        if tip is None:
            # The branch exists only on the remote: continue its history.
            self.repo.references.create(self.sync_ref, remote_tip, force=True)
        elif tip != remote_tip and not self.repo.descendant_of(tip, remote_tip):
            raise PushRejected(
                f"The branch {self.branch} on the remote has snapshots this workspace does not"
                " have (another session is writing to it). Your snapshots are kept locally."
            )
        self._remote_known = True


class _CheckoutProgress(pygit2.CheckoutCallbacks):
    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self._progress = progress

    def checkout_progress(self, path: str, completed_steps: int, total_steps: int) -> None:
        self._progress("checkout", completed_steps, total_steps, 0)


class _Callbacks(pygit2.RemoteCallbacks):
    """Hands libgit2 the token once per connection: a refused token must not be retried 15 times."""

    def __init__(self, token: TokenGetter, progress: Progress | None = None) -> None:
        super().__init__()
        self._token = token
        self._progress = progress
        self.attempts = 0
        self.rejection: str | None = None

    def transfer_progress(self, stats: pygit2.remotes.TransferProgress) -> None:
        if self._progress is not None:
            self._progress(
                "fetch", stats.received_objects, stats.total_objects, stats.received_bytes
            )

    def credentials(
        self, url: str, username_from_url: str | None, allowed_types: Any
    ) -> pygit2.UserPass:
        self.attempts += 1
        if self.attempts > 1:
            raise AuthRequired("The remote refused the token. Sign in again to keep pushing.")
        secret = self._token()
        if not secret:
            raise AuthRequired("The remote needs a token to accept pushes; none is set.")
        return pygit2.UserPass(TOKEN_USERNAME, secret)

    def push_update_reference(self, refname: str, message: str | None) -> None:
        if message:
            self.rejection = message


@contextmanager
def _translated_errors(token: TokenGetter) -> Iterator[None]:
    """Turn libgit2's errors into GitSyncErrors with plain words and no secrets."""
    try:
        yield
    except GitSyncError as exc:
        exc.message = redact(exc.message, [token()])
        exc.args = (exc.message,)
        raise
    except (pygit2.GitError, OSError) as exc:
        # `from None`: the original text may hold what the redactor removed.
        raise classify(redact(str(exc), [token()])) from None


def classify(message: str) -> GitSyncError:
    """Map a libgit2 error message to the failure the user should hear about."""
    lowered = message.lower()
    if any(s in lowered for s in ("401", "403", "authentication", "credentials")):
        return AuthRequired(f"The remote refused the token ({message}).")
    if any(s in lowered for s in ("404", "not found", "invalid content-type")):
        return RemoteNotFound(f"The remote URL does not lead to a git repository ({message}).")
    if any(
        s in lowered
        for s in ("non-fastforward", "non-fast-forward", "rejected", "not present locally")
    ):
        return PushRejected(f"The remote refused the push ({message}).")
    return RemoteUnavailable(f"The remote could not be reached ({message}).")
