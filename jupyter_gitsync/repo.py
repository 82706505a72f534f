"""Every pygit2 call the engine makes: snapshot, push, and what they need.

Everything here blocks. The engine runs it on its single git thread and never on the Jupyter
event loop; nothing here knows about asyncio or tornado. Snapshots are written with the engine's
own index (`.git/gitsync/index`) to `refs/heads/<branch>`: the user's HEAD, index, branches and
stash are never written.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pygit2
from pygit2.enums import DiffOption

from . import _native, filters
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

TokenGetter = Callable[[], "str | None"]


@dataclass(frozen=True)
class Snapshot:
    """A snapshot commit that was just written to the sync branch."""

    commit: str
    message: str
    paths: int


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
        self.sync_ref = validate_branch(branch)
        self.branch = branch
        self.tracking_ref = f"refs/gitsync/remote/{branch}"
        self.excludes = tuple(excludes)
        self.max_file_size_bytes = max_file_size_bytes
        self.skipped: dict[str, str] = {}
        self.repo = self._open_or_init()
        self.index_path = Path(self.repo.path) / "gitsync" / "index"
        self.index = self._load_index()
        _native.add_ignore_rules(self.repo, filters.as_ignore_rules(self.excludes))
        self._remote_known = False

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

    def _load_index(self) -> pygit2.Index:
        try:
            self.index_path.parent.mkdir(exist_ok=True)
            index = pygit2.Index(str(self.index_path))
        except (pygit2.GitError, OSError) as exc:
            raise WorkspaceError(f"Cannot write to {self.index_path.parent}: {exc}") from exc
        _native.use_index(self.repo, index)
        index = self.repo.index  # the same index, now bound to the repository
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
        return None if ref is None else ref.resolve().target

    def _tip(self) -> pygit2.Oid | None:
        return self._ref_target(self.sync_ref)

    def user_head(self) -> pygit2.Oid | None:
        """The commit the user's HEAD is on, or None on an unborn branch."""
        try:
            return None if self.repo.head_is_unborn else self.repo.head.target
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

    def _unstage(self, relpath: str) -> None:
        self._unstage_file(relpath)
        self.index.remove_directory(relpath)
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
        message = self._describe(previous_tree, self.repo[tree].peel(pygit2.Tree))
        parents = [p for p in (tip, base) if p is not None]
        if len(parents) == 2 and parents[0] == parents[1]:
            parents.pop()
        signature = pygit2.Signature(*self._author())
        committer = pygit2.Signature(SIGNATURE_NAME, SIGNATURE_EMAIL)
        oid = self.repo.create_commit(None, signature, committer, message, tree, parents)
        self.repo.references.create(self.sync_ref, oid, force=True)
        log.debug("snapshot %s: %s", oid, message)
        return Snapshot(commit=str(oid), message=message, paths=touched)

    def _author(self) -> tuple[str, str]:
        config = self.repo.config
        try:
            return config["user.name"], config["user.email"]
        except KeyError:
            user = os.environ.get("JUPYTERHUB_USER") or SIGNATURE_NAME
            return user, SIGNATURE_EMAIL

    def _describe(self, old: pygit2.Tree | None, new: pygit2.Tree) -> str:
        """A commit message that says what changed, e.g. 'Update a.ipynb, b.csv (+3 more)'."""
        if old is None:
            deltas = [(pygit2.enums.DeltaStatus.ADDED, e.path) for e in self.index]
        else:
            diff = old.diff_to_tree(new)
            diff.find_similar()
            deltas = [(d.status, d.new_file.path) for d in diff.deltas]
        statuses = {status for status, _ in deltas}
        verb = "Update"
        if statuses == {pygit2.enums.DeltaStatus.ADDED}:
            verb = "Add"
        elif statuses == {pygit2.enums.DeltaStatus.DELETED}:
            verb = "Delete"
        elif statuses == {pygit2.enums.DeltaStatus.RENAMED}:
            verb = "Rename"
        paths = [path for _, path in deltas]
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
                if tip is not None and tip != self._ref_target(self.tracking_ref):
                    remote.push([f"{self.sync_ref}:{self.sync_ref}"], callbacks=callbacks)
                    if callbacks.rejection:
                        raise PushRejected(
                            f"The remote refused the update of {self.branch}: {callbacks.rejection}"
                        )
                    self.repo.references.create(self.tracking_ref, tip, force=True)
        except PushRejected:
            self._remote_known = False  # look again before the next attempt
            raise
        return self.heads()

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


class _Callbacks(pygit2.RemoteCallbacks):
    """Hands libgit2 the token once per connection: a refused token must not be retried 15 times."""

    def __init__(self, token: TokenGetter) -> None:
        super().__init__()
        self._token = token
        self.attempts = 0
        self.rejection: str | None = None

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
    if any(s in lowered for s in ("non-fastforward", "non-fast-forward", "rejected")):
        return PushRejected(f"The remote refused the push ({message}).")
    return RemoteUnavailable(f"The remote could not be reached ({message}).")
