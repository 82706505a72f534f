"""Restore and resume: what to fetch, and how to bring the workspace up to it without ever
overwriting local work. This module decides; the engine runs it (network parts on its transport
thread, the rest on its git thread, after it has snapshotted local work itself). The cases
(README, "Restore"):

- empty workspace: check out the sync branch's latest snapshot (or, without a sync branch, the
  remote's default branch), with HEAD on the snapshot's recorded base commit;
- freshly launched clone (clean tree at the launch commit): the same, on top of the clone;
- local snapshots (a persistent home, a crashed session, or work done while the remote was
  down): merge them with the remote snapshot; where both changed a file keep the local one and
  put the remote snapshot on a rescue branch.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass, field

from pygit2 import Oid

from . import filters, inbound
from .errors import ConfigError
from .merging import merge_snapshots, rescue_branch_name
from .repository import (
    FETCHED_PREFIX,
    Progress,
    SyncRepository,
    sanitize_ref_component,
    validate_branch,
)
from .snapshots import Snapshotter
from .transport import RemoteHeads, TokenGetter, Transport
from .workers import Watch

log = logging.getLogger(__name__)

NOTHING_NEW = ("up-to-date", "nothing-to-restore")


@dataclass
class RestoreResult:
    """What a restore or resume did, in words for the user and in facts for tests."""

    case: str
    message: str
    snapshot: str | None = None
    conflicts: list[str] = field(default_factory=list)
    rescue_branch: str | None = None
    branch: str | None = None
    withheld: dict[str, str] = field(default_factory=dict)  # not written: path -> why

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


@dataclass(frozen=True)
class Fetch:
    """One remote ref to fetch into a ref of ours, and the commit the remote said it holds."""

    remote_ref: str
    local_ref: str
    oid: Oid
    is_sync_branch: bool

    @property
    def refspec(self) -> str:
        return f"+{self.remote_ref}:{self.local_ref}"


def workspace_is_empty(repo: SyncRepository, excludes: tuple[str, ...]) -> bool:
    """Nothing in the workspace but `.git` and excluded names, and no commit checked out."""
    for name in os.listdir(repo.workspace):
        if not filters.is_excluded(name, excludes):
            return False
    return repo.user_head() is None


# -- restore: the remote's snapshot of the sync branch -------------------------------------------


def plan_fetch(heads: RemoteHeads, repo: SyncRepository, empty: bool) -> Fetch | None:
    """What to fetch for a restore: the sync branch, or for an empty workspace the remote's
    default branch when there is no sync branch; None when there is nothing to take in."""
    tip = heads.refs.get(repo.sync_ref)
    if tip is not None:
        return Fetch(repo.sync_ref, repo.tracking_ref, tip, is_sync_branch=True)
    default = heads.default_branch
    if empty and default and default in heads.refs:
        return Fetch(default, f"{FETCHED_PREFIX}default", heads.refs[default], False)
    return None


def take_in(
    repo: SyncRepository,
    snaps: Snapshotter,
    fetched: Fetch | None,
    progress: Progress | None = None,
) -> RestoreResult:
    """Bring the workspace up to the fetched remote snapshot. The caller has snapshotted local
    work just before, so every local file is in the sync branch or untouched by checkouts."""
    if fetched is None:
        return RestoreResult("nothing-to-restore", "The remote has no snapshots yet.")
    remote_tip = fetched.oid
    local_tip = repo.tip()
    if not fetched.is_sync_branch:
        if local_tip is not None or not workspace_is_empty(repo, snaps.excludes):
            return RestoreResult("nothing-to-restore", "The remote has no snapshots yet.")
        withheld = _take(repo, snaps, remote_tip, progress, keep_branch=False)
        repo.set_user_head(remote_tip, fetched.remote_ref)
        message = f"Checked out {fetched.remote_ref} of the remote."
        return RestoreResult("default-branch", message, withheld=withheld)
    if local_tip is None:
        case = "empty" if workspace_is_empty(repo, snaps.excludes) else "fresh"
        withheld = _take(repo, snaps, remote_tip, progress)
        base, head_ref = repo.base_of(remote_tip)
        if base is not None and base in repo.repo:
            repo.set_user_head(base, head_ref or repo.user_head_ref())
        message = "Restored the latest snapshot."
        return RestoreResult(case, message, snapshot=str(remote_tip), withheld=withheld)
    if repo.is_ancestor(remote_tip, local_tip):
        return RestoreResult("up-to-date", "The workspace already has the latest snapshot.")
    if repo.is_ancestor(local_tip, remote_tip):
        withheld = _take(repo, snaps, remote_tip, progress)
        message = "Restored the newer snapshot from the remote."
        return RestoreResult("fast-forward", message, withheld=withheld)
    return _merge(repo, snaps, local_tip, remote_tip, progress)


def _take(
    repo: SyncRepository,
    snaps: Snapshotter,
    commit: Oid,
    progress: Progress | None,
    keep_branch: bool = True,
) -> dict[str, str]:
    """Write `commit` into the workspace through the screen (`inbound`); return what was
    withheld, which is also listed as skipped. `keep_branch`: the sync branch moves to it (a
    plain branch's commit is only checked out, unless something was withheld: then the sync
    branch starts there, so that its snapshots keep those paths)."""
    withheld = inbound.screen(
        repo, snaps.index, commit, snaps.excludes, snaps.max_file_size_bytes, snaps.withheld
    )
    if keep_branch or withheld:
        snaps.take(commit, progress, withheld)
    else:
        snaps.checkout(commit, progress)
    snaps.skipped.update(withheld)
    return withheld


def _merge(
    repo: SyncRepository,
    snaps: Snapshotter,
    local_tip: Oid,
    remote_tip: Oid,
    progress: Progress | None,
) -> RestoreResult:
    merged = merge_snapshots(repo, local_tip, remote_tip)
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
    result.withheld = _take(repo, snaps, merged.commit, progress)
    result.snapshot = str(merged.commit)
    return result


def run_restore(
    repo: SyncRepository,
    snaps: Snapshotter,
    url: str,
    token: TokenGetter,
    progress: Progress | None = None,
) -> RestoreResult:
    """A whole restore in one thread, for the command line (the engine runs the same steps
    with the network on its own thread)."""
    transport = Transport(repo.gitdir)
    heads = transport.list_remote(url, token)
    fetched = plan_fetch(heads, repo, workspace_is_empty(repo, snaps.excludes))
    if fetched is not None:
        transport.fetch(url, token, [fetched.refspec], progress=progress)
    snaps.snapshot(None)
    return take_in(repo, snaps, fetched, progress)


# -- resume: switch to another branch ------------------------------------------------------------


@dataclass(frozen=True)
class ResumePlan:
    """Where a resume goes: the branch asked for, the sync branch that continues it, and the
    commits to fetch."""

    branch: str
    new_branch: str
    target: Fetch  # the branch asked for
    start: Fetch | None  # an earlier sync branch resumed from that branch, if there is one


def plan_resume(heads: RemoteHeads, repo: SyncRepository, branch: str) -> ResumePlan:
    """A sync branch is continued; any other branch (say `main`) is restored and a new sync
    branch, named after the current one and that branch, starts from it."""
    ref = validate_branch(branch)
    if ref not in heads.refs:
        raise ConfigError(f"The remote has no branch named {branch!r}.")
    target = Fetch(ref, f"{FETCHED_PREFIX}resume", heads.refs[ref], is_sync_branch=False)
    new_branch = f"{repo.branch.split('-from-')[0]}-from-{sanitize_ref_component(branch)}"
    start_oid = heads.refs.get(f"refs/heads/{new_branch}")
    start = None
    if start_oid is not None:
        start = Fetch(f"refs/heads/{new_branch}", f"{FETCHED_PREFIX}resume-start", start_oid, True)
    return ResumePlan(branch, new_branch, target, start)


def apply_resume(
    repo: SyncRepository, snaps: Snapshotter, plan: ResumePlan, progress: Progress | None = None
) -> RestoreResult:
    """Switch the workspace to the planned branch (the caller saved and pushed the current
    work and fetched the plan's commits)."""
    if repo.is_snapshot_commit(plan.target.oid):
        new_branch, start = plan.branch, plan.target.oid
        head_ref = None
    else:
        new_branch = plan.new_branch
        start = plan.start.oid if plan.start is not None else plan.target.oid
        head_ref = None if plan.start is not None else plan.target.remote_ref
    repo.switch_branch(new_branch)
    # A new sync branch starts at the branch's commit, so it exists on the remote at once.
    withheld = _take(repo, snaps, start, progress)
    base, recorded_ref = repo.base_of(start)
    if base is not None and base in repo.repo:
        repo.set_user_head(base, recorded_ref or head_ref)
    return RestoreResult(
        "resumed",
        f"Resumed from {plan.branch}; syncing to {new_branch}.",
        snapshot=str(start),
        branch=new_branch,
        withheld=withheld,
    )


def list_branches(
    transport: Transport, url: str, token: TokenGetter, current: str, watch: Watch | None = None
) -> list[dict[str, object]]:
    """The remote's branches a user can resume from: sync branches first, newest first."""
    heads = transport.list_remote(url, token, watch)
    branches = {name: oid for name, oid in heads.refs.items() if name.startswith("refs/heads/")}
    fetched = f"{FETCHED_PREFIX}branches/"
    if branches:
        transport.fetch(url, token, [f"+refs/heads/*:{fetched}*"], None, watch)
    listed: list[dict[str, object]] = []
    try:
        for ref, oid in branches.items():
            when, summary, snapshot = transport.describe(oid)
            name = ref.removeprefix("refs/heads/")
            listed.append(
                {
                    "name": name,
                    "sync": snapshot or name.startswith("gitsync/"),
                    "current": name == current,
                    "sha": str(oid),
                    "last_snapshot_at": _iso_time(when),
                    "message": summary,
                }
            )
    finally:
        transport.forget(fetched)  # only the tips' dates and messages were needed
    listed.sort(key=lambda b: str(b["last_snapshot_at"] or ""), reverse=True)
    listed.sort(key=lambda b: not b["sync"])  # stable: sync branches first, each newest first
    return listed


def _iso_time(unix_seconds: int | None) -> str | None:
    """A commit's time for the API, or None when the commit claims one no calendar has (any
    push may write any date)."""
    if unix_seconds is None:
        return None
    try:
        return dt.datetime.fromtimestamp(unix_seconds, dt.timezone.utc).isoformat()
    except (OverflowError, OSError, ValueError):
        return None
