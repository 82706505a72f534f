"""The workspace's repository as the engine sees it: opening (or creating) it, the one-engine
lock, the sync branch's refs, the user's HEAD, and packing.

Blocking; the engine calls it on its git thread. The sync branch lives here and only here
(`branch`); the engine changes it through `switch_branch` / `rename_branch` in its jobs.

Ref ownership, so that two threads never write the same ref:
- the git thread (this class, `snapshots`, `merging`) writes `refs/heads/<sync branch>` and
  rescue branches;
- the transport thread (`transport`) writes what it learned from the remote:
  `refs/gitsync/remote/<branch>` and `refs/gitsync/fetched/*`.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pygit2

from .errors import ConfigError, WorkspaceError
from .rescues import RescueBranches

log = logging.getLogger(__name__)

SIGNATURE_NAME = "Jupyter GitSync"
SIGNATURE_EMAIL = "gitsync@localhost"  # a commit with this committer is a snapshot
BASE_TRAILER = "Gitsync-Base"
HEAD_TRAILER = "Gitsync-Head"
TRACKING_PREFIX = "refs/gitsync/remote/"
FETCHED_PREFIX = "refs/gitsync/fetched/"

_TRAILER_SEARCH_DEPTH = 1000  # snapshots walked back from a merge to find its base
_FULL_SHA = re.compile(r"[0-9a-f]{40}")
_STAGED_KEPT = "You have staged changes, so your HEAD and index were left as they are."

# progress(phase, done, total, bytes): called on a worker thread during long work
Progress = Callable[[str, int, int, int], None]


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


def tracking_ref(branch: str) -> str:
    """Where the remote's tip of `branch` is kept once seen (written by the transport)."""
    return f"{TRACKING_PREFIX}{branch}"


def sanitize_ref_component(name: str) -> str:
    """Turn a user name into something that is valid inside a branch name."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip(".-")
    return cleaned or "user"


def default_user() -> str:
    """JupyterHub's user name, else the OS user, made safe for a branch name (the default
    sync branch is gitsync/<this>)."""
    user = os.environ.get("JUPYTERHUB_USER")
    if not user:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "user"
    return sanitize_ref_component(user)


def is_snapshot(commit: pygit2.Commit) -> bool:
    """True for a commit this extension wrote."""
    # raw bytes: decoding follows the commit's declared encoding, which any pusher may make up
    try:
        return bool(commit.committer.raw_email == SIGNATURE_EMAIL.encode())
    except ValueError:  # pygit2's InvalidError: a committer line that does not parse
        return False


class SyncRepository:
    """The workspace's git repository, one object per thread that uses it."""

    def __init__(self, workspace: Path, branch: str) -> None:
        self.workspace = workspace.resolve()
        validate_branch(branch)
        self.branch = branch
        self.repo = self._open_or_init()
        self.gitdir = Path(self.repo.path)
        self.private_dir = self.gitdir / "gitsync"
        self._engine_lock = self._lock_engine()
        self._remove_stale_locks()
        self.rescues = RescueBranches(self.repo, self.private_dir)

    # -- the sync branch ------------------------------------------------------------------------

    @property
    def sync_ref(self) -> str:
        return f"refs/heads/{self.branch}"

    @property
    def tracking_ref(self) -> str:
        return tracking_ref(self.branch)

    def switch_branch(self, branch: str) -> None:
        """Write snapshots to `branch` from now on (what is on it locally continues)."""
        validate_branch(branch)
        self.branch = branch

    def rename_branch(self, branch: str) -> None:
        """Sync to `branch` from now on, taking along local snapshots that were never pushed."""
        validate_branch(branch)
        tip = self.tip()
        never_pushed = self.ref_target(self.tracking_ref) is None
        old = self.repo.references.get(self.sync_ref)
        self.branch = branch
        if tip is not None and self.tip() is None:
            self.repo.references.create(self.sync_ref, tip)
            if never_pushed and old is not None:
                old.delete()

    def ref_target(self, name: str) -> pygit2.Oid | None:
        ref = self.repo.references.get(name)
        return None if ref is None else pygit2.Oid(hex=str(ref.resolve().target))

    def tip(self) -> pygit2.Oid | None:
        """The local sync branch tip."""
        return self.ref_target(self.sync_ref)

    def heads(self) -> Heads:
        """Local snapshot head, the remote head we last saw, and the snapshots in between."""
        tip = self.tip()
        remote = self.ref_target(self.tracking_ref)
        unpushed = 0
        if tip is not None and tip != remote:
            walker = self.repo.walk(tip)
            walker.simplify_first_parent()
            if remote is not None:
                walker.hide(remote)
            for commit in walker:
                if not is_snapshot(commit):
                    break
                unpushed += 1
        return Heads(
            head=str(tip) if tip else None,
            remote_head=str(remote) if remote else None,
            unpushed=unpushed,
        )

    def create_rescue_branch(
        self, name: str, commit: pygit2.Oid, paths: Iterable[str], pushed: bool = False
    ) -> None:
        """Keep `commit` on branch `name`, locally and (at the next push, unless the remote
        has it already) on the remote; `paths` are the files it is there for."""
        self.rescues.add(validate_branch(name), commit, paths, pushed)

    @property
    def rescue_refs(self) -> list[str]:
        """Rescue branches still to push."""
        return self.rescues.unpushed()

    # -- commits ------------------------------------------------------------------------------

    def is_snapshot_commit(self, oid: pygit2.Oid) -> bool:
        return is_snapshot(self.repo[oid].peel(pygit2.Commit))

    def is_ancestor(self, ancestor: pygit2.Oid, commit: pygit2.Oid) -> bool:
        """True if `ancestor` is `commit` or in its history (False if unknown here)."""
        if ancestor == commit:
            return True
        try:
            return bool(self.repo.descendant_of(commit, ancestor))
        except pygit2.GitError:
            return False

    def base_of(self, snapshot: pygit2.Oid) -> tuple[pygit2.Oid | None, str | None]:
        """The commit the user's HEAD was on when `snapshot` was made, and the branch name.

        Read from the snapshot's trailers, which whoever pushed it wrote: a base counts only
        as the full id of a commit here in the snapshot's history, a branch only under
        refs/heads/ with a valid name. A merge snapshot (no trailers) takes those of the
        snapshot it continues."""
        commit = self.repo[snapshot].peel(pygit2.Commit)
        for _ in range(_TRAILER_SEARCH_DEPTH):
            trailers = _trailers(commit)
            if trailers or not is_snapshot(commit) or not commit.parent_ids:
                break
            commit = self.repo[commit.parent_ids[0]].peel(pygit2.Commit)
        if not is_snapshot(commit):
            return commit.id, None  # a plain commit (say, main) is its own base
        base_hex, head = trailers.get(BASE_TRAILER), trailers.get(HEAD_TRAILER)
        base = None
        if base_hex is not None and _FULL_SHA.fullmatch(base_hex):
            candidate = pygit2.Oid(hex=base_hex)
            if candidate in self.repo and self.is_ancestor(candidate, snapshot):
                base = candidate
        if head is not None and not (
            head.startswith("refs/heads/") and pygit2.reference_is_valid_name(head)
        ):
            head = None
        return base, head

    def author(self) -> tuple[str, str]:
        """The user's name and e-mail from git config, else the hub user."""
        config = self.repo.config
        try:
            return str(config["user.name"]), str(config["user.email"])
        except KeyError:
            user = os.environ.get("JUPYTERHUB_USER") or SIGNATURE_NAME
            return user, SIGNATURE_EMAIL

    # -- the user's HEAD ------------------------------------------------------------------------

    def user_head(self) -> pygit2.Oid | None:
        """The commit the user's HEAD is on, or None on an unborn branch."""
        try:
            return None if self.repo.head_is_unborn else pygit2.Oid(hex=str(self.repo.head.target))
        except pygit2.GitError:
            return None

    def user_head_ref(self) -> str | None:
        """The branch the user's HEAD is on (None when detached)."""
        if self.repo.head_is_detached:
            return None
        return str(self.repo.references["HEAD"].target)

    def set_user_head(self, commit: pygit2.Oid, branch_ref: str | None) -> str | None:
        """Put the user's HEAD on `commit`, on `branch_ref` if given, so that `git status`
        shows exactly the user's own work as changes against the commit they had. Restore and
        resume do this; the user's refs are the user's, so:

        - a branch is created, or moved only as a fast-forward: one with commits that
          `commit` lacks stays where it is (and HEAD with it);
        - the user's index is rewritten only when nothing is staged in it.

        Returns a sentence for the user when something was left as it was, else None.
        """
        user = pygit2.Repository(str(self.workspace))  # its own object: the user's index
        staged = _has_staged_changes(user)
        if branch_ref and pygit2.reference_is_valid_name(branch_ref):
            existing = user.references.get(branch_ref)
            if existing is not None:
                tip = pygit2.Oid(hex=str(existing.resolve().target))
                if tip != commit and not self.is_ancestor(tip, commit):
                    name = branch_ref.removeprefix("refs/heads/")
                    return (
                        f"Your branch {name} has commits the restored work was not based on;"
                        " it was left where it is."
                    )
                if staged and tip != commit:
                    return (
                        "You have staged changes, so your branch and index were left as they are."
                    )
            elif staged:
                return "You have staged changes, so your branch and index were left as they are."
            user.references.create(branch_ref, commit, force=True)
            user.set_head(branch_ref)
        elif staged:
            return _STAGED_KEPT
        else:
            user.set_head(commit)
        if not staged:
            index = user.index
            index.read_tree(user[commit].peel(pygit2.Tree))
            index.write()
        return None

    def origin_url(self) -> str | None:
        """The URL of the workspace's `origin` remote, if it has one."""
        try:
            return self.repo.remotes["origin"].url
        except (KeyError, ValueError):
            return None

    # -- opening, locking, packing -------------------------------------------------------------

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
        path = self.private_dir / "engine.lock"
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
        candidates = [self.private_dir / "index.lock"]
        for ref in (self.sync_ref, self.tracking_ref):
            candidates.append(self.gitdir / f"{ref}.lock")
        for lock in candidates:
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
                log.warning("gitsync: removed a stale lock left by a stopped process: %s", lock)

    def maintain(self) -> None:
        """Pack loose objects now and then, so that .git stays bounded (100 saves of a large
        notebook are 100 loose copies until packed, and packed they delta to little). Uses the
        git CLI's own maintenance when git is installed."""
        git = shutil.which("git")
        if git is None:
            return
        env = {**os.environ, "GIT_DIR": str(self.gitdir)}
        for command in (["repack", "-d", "-q"], ["gc", "--auto", "--quiet"]):
            subprocess.run([git, *command], env=env, capture_output=True, check=False)


def _trailers(commit: pygit2.Commit) -> dict[str, str]:
    """The Gitsync-* trailers of a commit message (raw: its encoding is the pusher's word)."""
    found: dict[str, str] = {}
    for line in commit.raw_message.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(": ")
        if key in (BASE_TRAILER, HEAD_TRAILER):
            found[key] = value.strip()
    return found


def _has_staged_changes(user: pygit2.Repository) -> bool:
    """Whether the user's index differs from their HEAD (an unborn HEAD: any entry at all)."""
    index = user.index
    if user.head_is_unborn:
        return len(index) > 0
    head_tree = user.head.peel(pygit2.Commit).tree
    return len(index.diff_to_tree(head_tree)) > 0
