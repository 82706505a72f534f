"""Start-up restore and resume: put the workspace where the last session left it, never
overwriting local work.

Blocking; the engine runs these on its git thread before it snapshots anything, so a
half-restored tree is never snapshotted. The cases (README, "Restore"):

- empty workspace: fetch and check out the sync branch's latest snapshot (or, without a sync
  branch, the remote's default branch), with HEAD on the snapshot's recorded base commit;
- freshly launched clone (clean tree at the launch commit): the same, on top of the clone;
- local changes (a persistent home, a crashed session): snapshot them first, then merge with
  the remote snapshot when the changes do not overlap; otherwise keep the local files and put
  the remote snapshot on a rescue branch.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass, field

from pygit2 import Oid

from . import filters
from .errors import ConfigError
from .repo import Progress, SyncRepo, TokenGetter, sanitize_ref_component, validate_branch

log = logging.getLogger(__name__)


@dataclass
class RestoreResult:
    """What a restore or resume did, in words for the user and in facts for tests."""

    case: str
    message: str
    snapshot: str | None = None
    conflicts: list[str] = field(default_factory=list)
    rescue_branch: str | None = None
    branch: str | None = None

    def notice(self) -> dict[str, object] | None:
        """The status `notice` to show, if the user must know about this restore."""
        if not self.conflicts:
            return None
        return {
            "kind": "conflict",
            "message": self.message,
            "paths": self.conflicts[:100],
            "branch": self.rescue_branch,
        }


def workspace_is_empty(repo: SyncRepo) -> bool:
    """Nothing in the workspace but `.git` and excluded names, and no commit checked out."""
    for name in os.listdir(repo.workspace):
        if not filters.is_excluded(name, repo.excludes):
            return False
    return repo.user_head() is None


def restore(
    repo: SyncRepo, url: str, token: TokenGetter, progress: Progress | None = None
) -> RestoreResult:
    """Bring the workspace up to the remote's sync branch at start-up (see the module doc)."""
    heads = repo.list_remote(url, token)
    remote_tip = heads.get(repo.sync_ref)
    empty = workspace_is_empty(repo)
    if remote_tip is None:
        default = repo.default_branch
        if empty and default and default in heads:
            repo.fetch(url, token, [f"+{default}:{repo.tracking_prefix}default"], progress)
            target = heads[default]
            repo.checkout(target, progress)
            repo.set_user_head(target, default)
            return RestoreResult("default-branch", f"Checked out {default} of the remote.")
        return RestoreResult("nothing-to-restore", "The remote has no snapshots yet.")

    repo.fetch(url, token, [f"+{repo.sync_ref}:{repo.tracking_ref}"], progress)
    # Local work first: whatever is here is saved before anything from the remote lands.
    repo.snapshot(None)
    local_tip = repo.tip()
    if local_tip is None:
        return _take_remote_snapshot(repo, remote_tip, progress, "empty" if empty else "fresh")
    if repo.is_ancestor(remote_tip, local_tip):
        return RestoreResult("up-to-date", "The workspace already has the latest snapshot.")
    if repo.is_ancestor(local_tip, remote_tip):
        repo.checkout(remote_tip, progress)
        repo.set_sync_tip(remote_tip)
        return RestoreResult("fast-forward", "Restored the newer snapshot from the remote.")
    return _reconcile(repo, local_tip, remote_tip, progress)


def _take_remote_snapshot(
    repo: SyncRepo, snapshot: Oid, progress: Progress | None, case: str
) -> RestoreResult:
    repo.checkout(snapshot, progress)
    repo.set_sync_tip(snapshot)
    base, head_ref = repo.base_of(snapshot)
    if base is not None and base in repo.repo:
        repo.set_user_head(base, head_ref or repo.default_branch)
    return RestoreResult(case, "Restored the latest snapshot.", snapshot=str(snapshot))


def _reconcile(
    repo: SyncRepo, local_tip: Oid, remote_tip: Oid, progress: Progress | None
) -> RestoreResult:
    merged = repo.merge_snapshots(local_tip, remote_tip)
    if merged.conflicts:
        rescue = rescue_branch_name(repo.branch, remote_tip)
        repo.create_rescue_branch(rescue, remote_tip)
        listed = ", ".join(merged.conflicts[:5])
        more = len(merged.conflicts) - 5
        message = (
            f"This workspace and the remote both changed {listed}"
            + (f" (+{more} more)" if more > 0 else "")
            + f". Your files were kept; the remote's versions are on the branch {rescue}."
        )
        result = RestoreResult("conflict", message, conflicts=merged.conflicts)
        result.rescue_branch = rescue
    else:
        result = RestoreResult("merged", "Merged the remote's snapshot with your local changes.")
    repo.checkout(merged.commit, progress)
    repo.set_sync_tip(merged.commit)
    result.snapshot = str(merged.commit)
    return result


def rescue_branch_name(branch: str, commit: Oid) -> str:
    """Where a snapshot that could not be merged is kept, e.g.
    gitsync/ada-rescue-20261126-091412-5f3c2a1b. The commit is in the name, so one name always
    means one commit: two sessions rescuing in the same second never collide."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{branch}-rescue-{stamp}-{str(commit)[:8]}"


def resume(
    repo: SyncRepo,
    url: str,
    token: TokenGetter,
    branch: str,
    progress: Progress | None = None,
) -> RestoreResult:
    """Switch the workspace to `branch` (the caller has saved and pushed the current work).

    A sync branch is continued; any other branch (say `main`) is restored and a new sync
    branch, named after the current one and that branch, starts from it.
    """
    ref = validate_branch(branch)
    heads = repo.list_remote(url, token)
    if ref not in heads:
        raise ConfigError(f"The remote has no branch named {branch!r}.")
    tracking = f"{repo.tracking_prefix}resume"
    repo.fetch(url, token, [f"+{ref}:{tracking}"], progress)
    target = heads[ref]
    start: Oid | None
    if repo.is_snapshot_commit(target):
        new_branch, start = branch, target
    else:
        new_branch = f"{repo.branch.split('-from-')[0]}-from-{sanitize_ref_component(branch)}"
        start = heads.get(f"refs/heads/{new_branch}")
        if start is not None:
            repo.fetch(url, token, [f"+refs/heads/{new_branch}:{tracking}"], progress)
    repo.checkout(start or target, progress)
    repo.switch_branch(new_branch)
    # A new sync branch starts at the branch's commit, so it exists on the remote at once.
    repo.set_sync_tip(start or target)
    base, head_ref = repo.base_of(start or target)
    if base is not None and base in repo.repo:
        repo.set_user_head(base, head_ref or (None if start else ref))
    return RestoreResult(
        "resumed",
        f"Resumed from {branch}; syncing to {new_branch}.",
        snapshot=str(start or target),
        branch=new_branch,
    )


def list_branches(repo: SyncRepo, url: str, token: TokenGetter) -> list[dict[str, object]]:
    """The remote's branches a user can resume from: sync branches first, newest first."""
    heads = repo.list_remote(url, token)
    branches = {name: oid for name, oid in heads.items() if name.startswith("refs/heads/")}
    if branches:
        repo.fetch(url, token, [f"+refs/heads/*:{repo.tracking_prefix}branches/*"])
    listed: list[dict[str, object]] = []
    for ref, oid in branches.items():
        when, summary, is_snapshot = repo.describe_commit(oid)
        name = ref.removeprefix("refs/heads/")
        listed.append(
            {
                "name": name,
                "sync": is_snapshot or name.startswith("gitsync/"),
                "current": name == repo.branch,
                "sha": str(oid),
                "last_snapshot_at": dt.datetime.fromtimestamp(when, dt.timezone.utc).isoformat(),
                "message": summary,
            }
        )
    listed.sort(key=lambda b: str(b["last_snapshot_at"]), reverse=True)
    listed.sort(key=lambda b: not b["sync"])  # stable: sync branches first, each newest first
    return listed
