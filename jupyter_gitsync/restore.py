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

What comes over the network is the remote tip and as little of its history as these cases need
(`History`), so a restore costs what the tip costs, not what the branch's thousands of
snapshots cost.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from pygit2 import Oid

from . import filters, inbound, versions
from .errors import ConfigError, GitSyncError
from .merging import Displaced, displaced_by_merges, merge_snapshots, rescue_branch_name
from .repository import (
    FETCHED_PREFIX,
    Progress,
    SyncRepository,
    base_trailer,
    iso_time,
    sanitize_ref_component,
    validate_branch,
)
from .rescues import belongs_to
from .snapshots import Snapshotter
from .transport import Fetch, RemoteHeads, TokenGetter, Transport
from .watch import Watch

log = logging.getLogger(__name__)

NOTHING_NEW = ("up-to-date", "nothing-to-restore")
BASE_REF = f"{FETCHED_PREFIX}base"  # where a snapshot's base commit is fetched to, if it must be
MAX_HISTORY_DEPTH = 256  # commits of a remote tip's history fetched at most to meet ours
_BASE_DEPTH = 4  # a snapshot's base is its second parent: depth 2 (3 under a merge snapshot)
_MAX_HISTORY_FETCHES = 12
MAX_OLDER_DEPTH = 100_000  # snapshots deep a history page may have fetched
OLDER_REF = f"{FETCHED_PREFIX}history"  # where the sync branch is fetched to, deeper


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

    def add_note(self, note: str | None) -> None:
        """Add a sentence to the message (e.g. that a branch was left where it is)."""
        if note:
            self.message = f"{self.message} {note}"

    def keep_local(self, paths: dict[str, str], rescue: str) -> None:
        """Local files that were never synced were kept where the remote has something else;
        its side is on the branch `rescue`."""
        self.add_note(
            f"Your local {_listed(sorted(paths))} (never synced) kept; the remote's versions"
            f" are on the branch {rescue}."
        )
        self.conflicts = sorted({*self.conflicts, *paths})
        self.rescue_branch = rescue

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
class HistoryFetch:
    """One more fetch a restore needs (see `History`): refspecs, and how many commits deep.
    An `optional` one may be refused (a remote that hands out no commits by id)."""

    refspecs: list[str]
    depth: int
    optional: bool = False


class History:
    """How much of a remote tip's history a restore needs, fetched a step at a time.

    First the tip alone (`fetch_tip`: depth 1, negotiated against what is here, so a clone at
    the launch commit receives only what the snapshots changed; an empty workspace gets the
    tip's base in the same fetch). Then, decided on the git thread with what has arrived
    (`next`), and only when needed:

    - the commit the tip records as its base (HEAD goes there): usually here already (a Binder
      clone is at it); else from a remote branch whose tip it is, else by its id where the
      remote allows that, else by fetching the tip a level deeper (a snapshot's base is its
      second parent), at most `_BASE_DEPTH` deep;
    - where this workspace has snapshots of its own and knew an earlier remote tip (`known`,
      its tracking ref): deeper, doubling, until the tip's history reaches that earlier tip,
      so the merge base is here (merging in a history cut short would take the old base commit
      and report false conflicts), at most `max_depth` deep.

    Bounded: a forged base trailer, or a remote that rewrote its branch, ends at those depths
    and the restore goes on with what is here (see `merging._merge_base`).
    """

    def __init__(
        self,
        tip: Fetch,
        heads: RemoteHeads,
        known: Oid | None,
        max_depth: int = MAX_HISTORY_DEPTH,
    ) -> None:
        self.tip = tip
        self.depth = 1
        self.fetches = 0
        self._heads = heads
        self._known = known
        self._max_depth = max_depth
        self._tried: set[str] = set()

    def next(self, repo: SyncRepository) -> HistoryFetch | None:
        """The next fetch, or None when what is here is enough (or a bound is reached)."""
        repo.refresh_history()
        if self.fetches >= _MAX_HISTORY_FETCHES or self.tip.oid not in repo.repo:
            return None
        step = self._for_base(repo) or self._for_merge(repo)
        if step is not None:
            self.fetches += 1
        return step

    def _deeper(self, depth: int) -> HistoryFetch | None:
        if depth <= self.depth:
            return None
        self.depth = depth
        return HistoryFetch([self.tip.refspec], depth)

    def _for_base(self, repo: SyncRepository) -> HistoryFetch | None:
        tip = self.tip.oid
        recorded = repo.recorded_base(tip)
        base = recorded.base
        if recorded.cut or (base is not None and base in repo.repo):
            if base is not None and repo.is_ancestor(base, tip):
                return None
            return self._deeper(min(self.depth + 1, _BASE_DEPTH))
        if base is None:
            return None
        if "branch" not in self._tried:
            self._tried.add("branch")
            refs = sorted(ref for ref, oid in self._heads.refs.items() if oid == base)
            if refs:
                return HistoryFetch([f"+{refs[0]}:{BASE_REF}"], 1)
        if "id" not in self._tried:
            self._tried.add("id")
            return HistoryFetch([f"{base}:{BASE_REF}"], 1, optional=True)
        return self._deeper(min(self.depth + 1, _BASE_DEPTH))

    def _for_merge(self, repo: SyncRepository) -> HistoryFetch | None:
        tip, local, known = self.tip.oid, repo.tip(), self._known
        if local is None or known is None or known == tip or known not in repo.repo:
            return None
        if (
            repo.is_ancestor(tip, local)
            or repo.is_ancestor(local, tip)
            or repo.descends(tip, known)
        ):
            return None  # up to date, a fast-forward, or the merge base is in sight
        return self._deeper(min(self.depth * 2, self._max_depth))


def fetch_tip(
    transport: Transport,
    url: str,
    token: TokenGetter,
    heads: RemoteHeads,
    tip: Fetch,
    with_base: bool,
    progress: Progress | None = None,
    watch: Watch | None = None,
) -> Fetch:
    """Fetch the remote tip without its history (on the transport thread; see `History`).
    `with_base` (a workspace without commits, where the base cannot be here): read the tip's
    commit alone first, and fetch the base it records in the same fetch when a remote branch
    is at it: one fetch of both, with deltas between them, instead of two."""
    wanted = [tip]
    if with_base and not transport.has(tip.oid):
        raw = (transport.read_commits(url, token, [tip.oid], watch) or {}).get(tip.oid)
        base = base_trailer(raw) if raw is not None else None
        refs = sorted(ref for ref, oid in heads.refs.items() if oid == base)
        if base is not None and refs and not transport.has(base):
            wanted.append(Fetch(refs[0], BASE_REF, base, is_sync_branch=False))
    return transport.fetch_tips(url, token, wanted, progress, watch)[0]


def fetch_history(
    transport: Transport,
    url: str,
    token: TokenGetter,
    step: HistoryFetch,
    progress: Progress | None = None,
    watch: Watch | None = None,
) -> None:
    """Run one step of `History` (on the transport thread)."""
    try:
        transport.fetch(url, token, step.refspecs, progress, watch, step.depth)
    except GitSyncError as exc:
        if not step.optional:
            raise
        log.info("gitsync: the remote did not hand out a commit by its id: %s", exc.message)


def fetch_older(
    transport: Transport,
    url: str,
    token: TokenGetter,
    branch_ref: str,
    depth: int,
    watch: Watch | None = None,
) -> None:
    """Fetch the remote's sync branch `depth` commits deep, so that history reaches further
    back than a shallow restore left it (on the transport thread; only objects that are not
    here come). A `watch` cancelled before the call starts (it waited behind another) ends it
    at once."""
    watch = watch or Watch()
    watch.touch()
    try:
        transport.fetch(url, token, [f"+{branch_ref}:{OLDER_REF}"], None, watch, depth)
    finally:
        transport.forget(OLDER_REF)


def fetch_versions(
    transport: Transport, url: str, token: TokenGetter, heads: RemoteHeads, branch: str
) -> None:
    """Bring the remote's versions of `branch` that are not here (see `versions.wanted`); a
    failure leaves them for the next restore."""
    wanted = versions.wanted(heads, transport.repository(), branch)
    if not wanted:
        return
    try:
        transport.fetch_tips(url, token, wanted)
    except GitSyncError as exc:
        log.warning("gitsync: could not fetch the branch's versions: %s", exc.message)


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
    repo.refresh_history()
    if fetched is None:
        return RestoreResult("nothing-to-restore", "The remote has no snapshots yet.")
    remote_tip = fetched.oid
    local_tip = repo.tip()
    if not fetched.is_sync_branch:
        if local_tip is not None or not workspace_is_empty(repo, snaps.excludes):
            return RestoreResult("nothing-to-restore", "The remote has no snapshots yet.")
        result = RestoreResult("default-branch", f"Checked out {fetched.remote_ref} of the remote.")
        _take(repo, snaps, remote_tip, progress, result, keep_branch=False)
        result.add_note(repo.set_user_head(remote_tip, fetched.remote_ref))
        return result
    user_head = repo.user_head()
    if local_tip is None and user_head is not None and not repo.is_ancestor(user_head, remote_tip):
        # The user's HEAD has commits the snapshot was not based on (unpushed work in a
        # clone): that is this workspace's state, to merge with, not to check out over.
        return _merge(repo, snaps, user_head, remote_tip, progress)
    if local_tip is None:
        case = "empty" if workspace_is_empty(repo, snaps.excludes) else "fresh"
        result = RestoreResult(case, "Restored the latest snapshot.", snapshot=str(remote_tip))
        _take(repo, snaps, remote_tip, progress, result)
        base, head_ref = repo.base_of(remote_tip)
        if base is not None:
            result.add_note(repo.set_user_head(base, head_ref or repo.user_head_ref()))
        return result
    if repo.is_ancestor(remote_tip, local_tip):
        return RestoreResult("up-to-date", "The workspace already has the latest snapshot.")
    if repo.is_ancestor(local_tip, remote_tip):
        result = RestoreResult("fast-forward", "Restored the newer snapshot from the remote.")
        displaced = displaced_by_merges(repo, local_tip, remote_tip, remote_tip)
        if displaced.paths:
            result.message = (
                f"Another session saved {_listed(displaced.paths)} at the same time, and its"
                f" version is here now; yours is on the branch {displaced.rescue}."
            )
            result.conflicts, result.rescue_branch = displaced.paths, displaced.rescue
            _record_displaced(repo, displaced)
        _take(repo, snaps, remote_tip, progress, result)
        return result
    return _merge(repo, snaps, local_tip, remote_tip, progress)


def _take(
    repo: SyncRepository,
    snaps: Snapshotter,
    commit: Oid,
    progress: Progress | None,
    result: RestoreResult,
    keep_branch: bool = True,
) -> None:
    """Write `commit` into the workspace through the screens of `inbound`, and say so in
    `result`:

    - what must not come from a remote is withheld: listed as skipped, kept in the index as
      the remote has it, never written;
    - a local file the sync never owned (untracked, ignored, or a file where the remote has a
      folder) is kept: the remote's side goes to a rescue branch and the notice says so.

    `keep_branch`: the sync branch moves to `commit` (a plain branch's commit is only checked
    out, unless something was withheld: then the sync branch starts there).
    """
    screened = inbound.screen(
        repo, snaps.index, commit, snaps.excludes, snaps.max_file_size_bytes, snaps.withheld
    )
    withheld, kept = screened.withheld, screened.kept
    if kept:
        rescue = result.rescue_branch or rescue_branch_name(repo.branch, commit)
        if result.rescue_branch is None:
            repo.create_rescue_branch(rescue, commit, kept)
        result.keep_local(kept, rescue)
    if keep_branch or withheld or kept:
        snaps.take(commit, progress, withheld, dropped=list(kept))
    else:
        snaps.checkout(commit, progress)
    snaps.skipped.update(withheld)
    result.withheld = withheld


def _merge(
    repo: SyncRepository,
    snaps: Snapshotter,
    local_tip: Oid,
    remote_tip: Oid,
    progress: Progress | None,
) -> RestoreResult:
    rescue = rescue_branch_name(repo.branch, remote_tip)
    merged = merge_snapshots(repo, local_tip, remote_tip, rescue, snaps.session)
    if merged.conflicts:
        repo.create_rescue_branch(rescue, remote_tip, merged.conflicts)
        message = (
            f"This workspace and the remote both changed {_listed(merged.conflicts)}."
            f" Your files were kept; the remote's versions are on the branch {rescue}."
        )
        result = RestoreResult("conflict", message, conflicts=merged.conflicts)
        result.rescue_branch = rescue
    else:
        result = RestoreResult("merged", "Merged the remote's snapshot with your local changes.")
    displaced = displaced_by_merges(repo, local_tip, remote_tip, merged.commit)
    paths = [path for path in displaced.paths if path not in merged.conflicts]
    if paths:
        result.add_note(
            f"Another session saved {_listed(paths)} at the same time, and its version is"
            f" here now; yours is on the branch {displaced.rescue}."
        )
        result.conflicts = sorted({*result.conflicts, *paths})
        result.rescue_branch = result.rescue_branch or displaced.rescue
        _record_displaced(repo, displaced)
    _take(repo, snaps, merged.commit, progress, result)
    result.snapshot = str(merged.commit)
    return result


def _record_displaced(repo: SyncRepository, displaced: Displaced) -> None:
    """List the rescue branch another session's merge kept this workspace's version on (the
    remote has it already). Its name comes from a commit message anyone who can push writes:
    taken only when it is a valid rescue branch name of this sync branch."""
    name, commit = displaced.rescue, displaced.commit
    if name is None or commit is None:
        return
    try:
        ref = validate_branch(name)
    except ConfigError:
        ref = ""
    if not belongs_to(ref, repo.branch) or ref == repo.sync_ref:
        log.warning("gitsync: ignored a rescue branch name from the remote: %r", name[:200])
        return
    existing = repo.ref_target(ref)
    if existing is not None and existing != commit:
        return  # a branch of that name holds something else: leave it alone
    repo.create_rescue_branch(name, commit, displaced.paths, pushed=True)


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
    empty = workspace_is_empty(repo, snaps.excludes)
    fetched = plan_fetch(heads, repo, empty)
    try:
        if fetched is not None:
            known = repo.ref_target(repo.tracking_ref)
            fetched = fetch_tip(transport, url, token, heads, fetched, empty, progress)
            history = History(fetched, heads, known)
            while (step := history.next(repo)) is not None:
                fetch_history(transport, url, token, step, progress)
            fetch_versions(transport, url, token, heads, repo.branch)
        snaps.snapshot(None)
        return take_in(repo, snaps, fetched, progress)
    finally:
        transport.forget(BASE_REF)
        if fetched is not None and not fetched.is_sync_branch:
            transport.forget(fetched.local_ref)


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


def resume_start(repo: SyncRepository, plan: ResumePlan) -> Fetch:
    """The commit a resume checks out (once the plan's tips are here): a sync branch's tip,
    else the sync branch that continued that branch before, else the branch's tip."""
    if plan.start is None or repo.is_snapshot_commit(plan.target.oid):
        return plan.target
    return plan.start


def apply_resume(
    repo: SyncRepository, snaps: Snapshotter, plan: ResumePlan, progress: Progress | None = None
) -> RestoreResult:
    """Switch the workspace to the planned branch (the caller saved and pushed the current
    work and fetched the plan's commits)."""
    repo.refresh_history()
    if repo.is_snapshot_commit(plan.target.oid):
        new_branch, start = plan.branch, plan.target.oid
        head_ref = None
    else:
        new_branch = plan.new_branch
        start = plan.start.oid if plan.start is not None else plan.target.oid
        head_ref = None if plan.start is not None else plan.target.remote_ref
    repo.switch_branch(new_branch)
    # A new sync branch starts at the branch's commit, so it exists on the remote at once.
    result = RestoreResult(
        "resumed",
        f"Resumed from {plan.branch}; syncing to {new_branch}.",
        snapshot=str(start),
        branch=new_branch,
    )
    _take(repo, snaps, start, progress, result)
    base, recorded_ref = repo.base_of(start)
    if base is not None:
        result.add_note(repo.set_user_head(base, recorded_ref or head_ref))
    return result


def list_branches(
    transport: Transport, url: str, token: TokenGetter, current: str, watch: Watch | None = None
) -> list[dict[str, object]]:
    """The remote's branches a user can resume from: sync branches first, newest first."""
    heads = transport.list_remote(url, token, watch)
    branches = {name: oid for name, oid in heads.refs.items() if name.startswith("refs/heads/")}
    tips = transport.describe_tips(url, token, branches, watch) if branches else {}
    listed: list[dict[str, object]] = []
    for ref, oid in branches.items():
        tip = tips[oid]
        name = ref.removeprefix("refs/heads/")
        listed.append(
            {
                "name": name,
                "sync": tip.snapshot or name.startswith("gitsync/"),
                "current": name == current,
                "sha": str(oid),
                "last_snapshot_at": None if tip.when is None else iso_time(tip.when),
                "message": tip.summary,
            }
        )
    listed.sort(key=lambda b: str(b["last_snapshot_at"] or ""), reverse=True)
    listed.sort(key=lambda b: not b["sync"])  # stable: sync branches first, each newest first
    return listed


def _listed(paths: list[str], shown: int = 5) -> str:
    """'a, b, c (+2 more)' for a message."""
    more = len(paths) - shown
    return ", ".join(paths[:shown]) + (f" (+{more} more)" if more > 0 else "")
