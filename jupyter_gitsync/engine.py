"""The one owner of sync work: a single asyncio loop that decides what to do next and runs it.

Work happens on two worker threads (`workers`): the git thread snapshots, checks out and merges;
the transport thread lists, fetches and pushes, each operation with a deadline. The loop runs
one job at a time, in order, and while a job waits for the network it keeps snapshotting, so
a slow or hung remote never delays a local snapshot.

Jobs are named methods (`_job_*`, and the background `_snapshot`, `_restore`, `_push`); the API
queues requests for them with `_request`, so a reader can follow a handler to git by names.
What is due next is `scheduler.next_due`, a pure function; every state change goes through the
`StateTracker`.

Restore is a gate (invariant 2): the engine pushes to a (remote, branch) only after it has taken
in that branch's remote snapshot (`_gate`); until then it snapshots locally and retries the
restore with back-off, at once when a new token may be there.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pygit2 import Oid

from . import filters, history, origin, rescues, restore, rewind, scheduler, versions
from . import publish as publishing
from .auth import Credentials
from .auth.pulls import PullRequest
from .errors import (
    RATE_LIMIT_WAIT_SECONDS,
    AuthRequired,
    ConfigError,
    DeadlineExceeded,
    GitSyncError,
    LoginUnknown,
    NotFound,
    PermissionDenied,
    PushRejected,
    RateLimited,
    TokenMissing,
    redact,
)
from .repository import Heads, SyncRepository
from .scheduler import Backoff, Job, TokenBucket
from .snapshots import Snapshotter
from .state import Phase, State, StateTracker, Status, Watching
from .transport import Fetch, RemoteHeads, Transport, configure_timeouts
from .watch import Watch
from .watcher import ChangeSet, Poller, Watcher, WatchLimit
from .workers import NetworkLane, Worker

log = logging.getLogger(__name__)
T = TypeVar("T")
TWO_SESSIONS_WINDOW_SECONDS = 600.0  # two divergences this close: another live session
_HISTORY_FETCHES = 3  # deeper fetches one history page may ask for


@dataclass
class EngineConfig:
    """What the engine needs to know; `app.GitSync` fills it from traits and env vars."""

    workspace: Path
    branch: str
    remote_url: str | None = None
    commit_delay_seconds: float = 2.0
    push_interval_seconds: float = 10.0
    push_burst: int = 5
    retry_initial_seconds: float = 2.0
    retry_max_seconds: float = 300.0
    auth_recheck_seconds: float = 60.0
    excludes: tuple[str, ...] = filters.DEFAULT_EXCLUDES
    max_file_size_bytes: int = filters.DEFAULT_MAX_FILE_SIZE_BYTES
    enabled: bool = True
    rescan_interval_seconds: float = 600.0
    poll_interval_seconds: float = 5.0  # where the kernel refused inotify: scan this often
    pack_every_snapshots: int = 50
    pack_every_bytes: int = 64 * 1024 * 1024
    network_connect_timeout_seconds: float = 10.0
    network_stall_timeout_seconds: float = 30.0
    network_deadline_seconds: float = 1800.0
    max_rescue_branches: int = rescues.DEFAULT_LIMIT  # per sync branch, before the user is told
    binder_repo_url: str | None = None  # set on Binder
    # The branch only stands in until the GitHub login names it (Binder without GITSYNC_BRANCH:
    # its user name is random at every launch): nothing is restored or pushed until then.
    provisional_branch: bool = False
    watch: bool = True
    # a history page that needs more than a shallow repository holds waits this long for the
    # remote to send older snapshots, then answers with what is here
    history_fetch_seconds: float = 15.0
    session: str | None = None  # the label snapshots record (default: repository.session_label)


class PushPermission(Protocol):
    """Asked before the first push to a remote (may this user push there at all?), and for
    the branch named after the user while the branch is provisional."""

    async def check_push(self) -> str | None:
        """Raise a GitSyncError (PermissionDenied) that says why not; or return the URL of
        the user's own fork to sync to instead (None: push here)."""

    async def login_branch(self) -> str | None:
        """gitsync/<login> for the token in use, or None when no login is known."""


class PullRequests(Protocol):
    """Opens the pull request for a branch the publish job pushed (GitHub's REST API, through
    the auth service, which holds the token)."""

    async def open_pull_request(
        self, pushed_to: str, branch: str, title: str, body: str, base: str | None
    ) -> PullRequest | None:
        """The pull request, opened or found open; None when `pushed_to` is not on GitHub.
        Raise a GitSyncError that says why not."""


@dataclass
class _Request:
    """A job the API asked for: run by the loop in order, answered through `future`."""

    name: str
    run: Callable[[], Awaitable[Any]]
    future: asyncio.Future[Any]


RETRY_JITTER = 0.5  # a retry comes after 50 to 100 % of the doubled wait


def _asked_wait(error: GitSyncError) -> float:
    """How long the remote asked us to wait before trying again (a rate limit), else 0."""
    return RATE_LIMIT_WAIT_SECONDS if isinstance(error, RateLimited) else 0.0


def _published_message(
    branch: str, url: str, made: publishing.Made, pull: PullRequest | None
) -> str:
    """What a publish did, in a sentence or two for the user."""
    if not made.new:
        done = f"{branch} on {url} already holds this work; nothing new was pushed."
    else:
        done = f"Pushed the branch {branch} to {url}."
    if made.root:
        done += " Your work has no commit it started from (the workspace started empty), so"
        done += " the branch starts a history of its own."
    if pull is None:
        return done + " The remote is not on GitHub, so no pull request was opened."
    if pull.existed:
        return done + f" Its pull request into {pull.base} of {pull.repository} shows it."
    return done + f" Opened a pull request into {pull.base} of {pull.repository}."


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class SyncEngine:
    """Debounces changes into snapshots, restores, pushes, retries, and flushes on stop."""

    def __init__(
        self,
        config: EngineConfig,
        credentials: Credentials,
        emit: Callable[[dict[str, Any]], None] = lambda data: None,
        permission: PushPermission | None = None,
        pull_requests: PullRequests | None = None,
    ) -> None:
        self.config = config
        self.credentials = credentials
        self._permission = permission
        self._pull_requests = pull_requests
        self._permission_checked = False  # for the current remote
        self._changes = ChangeSet(self._on_first_change)
        self.tracker = StateTracker(emit, self._changes.peek, config.branch)
        self._git_worker = Worker("gitsync-git")
        self._net = NetworkLane(
            "gitsync-net",
            config.network_stall_timeout_seconds,
            config.network_deadline_seconds,
            lambda: self._stop_deadline,
        )
        self._repo: SyncRepository | None = None
        self._snaps: Snapshotter | None = None
        self._transport: Transport | None = None
        self._url: str | None = None
        self._provisional = config.provisional_branch  # see EngineConfig
        self._gate: tuple[str, str] | None = None  # (remote, branch) whose snapshot we hold
        retry = (
            config.retry_initial_seconds,
            config.retry_max_seconds,
            config.auth_recheck_seconds,
        )
        self._restore_backoff = Backoff(*retry, jitter=RETRY_JITTER)
        self._push_backoff = Backoff(*retry, jitter=RETRY_JITTER)
        self._bucket = TokenBucket(max(1, config.push_burst), config.push_interval_seconds)
        self._heads = Heads(None, None, 0)
        self._waiting = False  # anything (snapshots, rescue branches) is still to push
        self._full_scan_wanted = True  # the first snapshot scans the whole workspace
        self._rescan_next = False  # a failed snapshot is retried as a full scan
        self._last_full_scan = time.monotonic()
        self._divergences: list[float] = []  # when the remote branch moved under us
        self._refused_versions: set[str] = set()  # tag refs the remote holds otherwise
        self._requests: collections.deque[_Request] = collections.deque()
        self._wake = asyncio.Event()
        self._watcher: Watcher | None = None
        self._poller: Poller | None = None  # set once the kernel refused inotify
        self._next_poll = math.inf
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._stop_deadline = math.inf
        self._progress_at = 0.0

    @property
    def remote_url(self) -> str | None:
        """Where snapshots are pushed (None until the repository is open)."""
        return self._url

    @property
    def status(self) -> Status:
        """The status as last published (see `status_json` for an up-to-date copy)."""
        return self.tracker.status

    def status_json(self) -> dict[str, Any]:
        """The status as served by the API."""
        return self.tracker.snapshot()

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the loop; opening the repository happens on the git thread. Never raises."""
        self._loop = asyncio.get_running_loop()
        self.credentials.subscribe(self._credentials_changed_threadsafe)
        self._task = asyncio.create_task(self._main(), name="gitsync-engine")

    async def stop(self, timeout: float) -> None:
        """Snapshot what is pending, then push it with what is left of `timeout`; return by
        the deadline whatever the remote does (the snapshot then waits for the next start)."""
        self._stop_deadline = time.monotonic() + timeout
        self._closing = True
        self._full_scan_wanted = True  # the watcher may not have reported the last save yet
        self._wake.set()
        if self._watcher is not None:
            with contextlib.suppress(Exception):
                await asyncio.get_running_loop().run_in_executor(None, self._watcher.stop)
        if self._task is not None:
            remaining = max(0.0, self._stop_deadline - time.monotonic())
            await asyncio.wait({self._task}, timeout=remaining + 1.0)
            if not self._task.done():
                log.warning("gitsync: shutdown did not finish in %.0f s", timeout)
        if self._repo is not None and self._task is not None and self._task.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._git_worker.run(self._repo.close), 2)
        self._git_worker.retire()
        self._net.retire()

    async def _main(self) -> None:
        try:
            if await self._open():
                await self._run()
        finally:
            for request in self._requests:  # asked for, but the loop stopped
                if not request.future.done():
                    request.future.set_exception(
                        GitSyncError("Sync has stopped; nothing was done.")
                    )
            self._requests.clear()

    async def _open(self) -> bool:
        """Open the repository on the git thread; False when there is nothing to run."""
        try:
            opened = await self._git_worker.run(self._open_repo)
        except GitSyncError as exc:
            self.tracker.set_phase(Phase.FAILED, exc)
            return False
        except Exception as exc:
            log.exception("gitsync: could not start")
            self.tracker.set_phase(Phase.FAILED, GitSyncError(f"Sync could not start: {exc}"))
            return False
        if not opened:
            self.tracker.set_phase(Phase.DISABLED)
            return False
        self._publish_target()
        self.tracker.set_phase(Phase.RUNNING)
        return True

    def _open_repo(self) -> bool:
        """On the git thread: open (or create) the repository and decide where to push."""
        if not self.config.enabled:
            return False
        workspace = self.config.workspace
        fallback = {"BINDER_REPO_URL": self.config.binder_repo_url or ""}
        url = origin.detect(self.config.remote_url, None, fallback)
        if url is None and not (workspace / ".git").exists():
            return False  # nothing to sync to, and not ours to turn into a repository
        repo = SyncRepository(workspace, self.config.branch)
        url = origin.detect(self.config.remote_url, repo.origin_url(), fallback)
        if not url:
            repo.close()
            raise ConfigError(
                "There is no remote to sync to: the workspace has no 'origin' and"
                " GITSYNC_REMOTE_URL is not set."
            )
        self._snaps = Snapshotter(
            repo, self.config.excludes, self.config.max_file_size_bytes, self.config.session
        )
        self._transport = Transport(repo.gitdir)
        configure_timeouts(
            self.config.network_connect_timeout_seconds, self.config.network_stall_timeout_seconds
        )
        self._repo, self._url = repo, url  # normalised: no credentials in it
        return True

    async def _run(self) -> None:
        if self.config.watch and not self._closing:
            assert self._repo is not None
            self._watcher = Watcher(
                self._repo.workspace, self.config.excludes, self._changes, self._limit_threadsafe
            )
            await asyncio.get_running_loop().run_in_executor(None, self._watcher.start)
            if self._poller is None:  # a refusal during the start switched to polling already
                self.tracker.set_watching(Watching.EVENTS)
        while not self._closing:
            try:
                await self._step()
            except Exception:  # a bug must not end syncing for the rest of the session
                log.exception("gitsync: unexpected failure in the sync loop")
                await asyncio.sleep(self.config.retry_initial_seconds)
        await self._flush()

    async def _step(self) -> None:
        """Answer one API request, or run what is due, or wait until something is."""
        if self._requests:
            await self._answer(self._requests.popleft())
            return
        now = time.monotonic()
        due = scheduler.next_due(self._facts(now))
        if due is not None and due[1] <= now:
            await self._run_due(due[0])
            return
        timeout = None if due is None else due[1] - now
        self._wake.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def _run_due(self, job: Job) -> None:
        if job is Job.SNAPSHOT:
            await self._snapshot(full=False)
        elif job is Job.RESCAN:
            await self._snapshot(full=True)
        elif job is Job.POLL:
            await self._poll()
        elif job is Job.RESTORE:
            await self._restore()
        else:
            await self._push()

    async def _flush(self) -> None:
        """At shutdown: snapshot, then push with the time that is left."""
        if self._repo is None:
            return
        self.tracker.set_phase(Phase.STOPPING)
        try:
            await self._snapshot(full=True)
            if self._gate_open() and self._waiting and time.monotonic() < self._stop_deadline:
                await self._push()
        except Exception:
            log.exception("gitsync: the last snapshot or push at shutdown failed")

    def _facts(self, now: float) -> scheduler.Facts:
        epoch = self.credentials.epoch
        return scheduler.Facts(
            now=now,
            changes_pending=bool(self._changes),
            last_change=self._changes.last_change,
            full_scan_wanted=self._full_scan_wanted,
            last_full_scan=self._last_full_scan,
            commit_delay_seconds=0.0 if self._closing else self.config.commit_delay_seconds,
            rescan_interval_seconds=self.config.rescan_interval_seconds,
            has_remote=self._url is not None,
            gate_open=self._gate_open(),
            restore_due=self._restore_backoff.due(epoch),
            unpushed=self._waiting,
            push_due=self._push_backoff.due(epoch),
            bucket_at=self._bucket.available_at(now),
            poll_at=self._next_poll,
        )

    # -- the restore gate -----------------------------------------------------------------------

    def _target(self) -> tuple[str, str]:
        assert self._repo is not None and self._url is not None
        return (self._url, self._repo.branch)

    def _gate_open(self) -> bool:
        return self._gate is not None and self._gate == self._target()

    def _publish_target(self) -> None:
        assert self._repo is not None
        shown = "" if self._provisional else self._repo.branch  # a stand-in is no branch
        self.tracker.set_target(shown, self._url, self._gate_open())

    # -- API requests: queued, run by the loop in order ------------------------------------------

    async def _request(self, name: str, run: Callable[[], Awaitable[T]]) -> T:
        """Run `run` on the engine's loop after the work before it (and after start-up)."""
        if self._task is None or self._task.done() or self._closing:
            raise GitSyncError("Sync is not running.")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._requests.append(_Request(name, run, future))
        self._wake.set()
        return await future

    async def _answer(self, request: _Request) -> None:
        log.debug("gitsync: running %s", request.name)
        try:
            result = await request.run()
        except Exception as exc:
            if not request.future.done():
                request.future.set_exception(exc)
        else:
            if not request.future.done():
                request.future.set_result(result)

    async def sync_now(self) -> dict[str, Any]:
        """Snapshot, push, and bring in what another session pushed, now; answer with the
        status once done."""
        if self._task is None or self._task.done() or self._closing:
            return self.status_json()  # disabled, failed to start, or stopping
        return await self._request("sync now", self._job_sync_now)

    async def branches(self) -> list[dict[str, Any]]:
        """The remote's branches a user can resume from (see restore.list_branches)."""
        return await self._request("list branches", self._job_branches)

    async def resume(self, branch: str) -> dict[str, Any]:
        """Save and push the current work, then switch to `branch` and restore it."""
        return await self._request("resume", lambda: self._job_resume(branch))

    async def set_remote(self, url: str) -> None:
        """Push to `url` from now on (e.g. the user's fork of a repository they cannot push to)."""
        await self._request("switch remote", lambda: self._job_set_remote(url))

    async def adopt_branch(self, branch: str) -> None:
        """Sync to `branch` from now on (the user's GitHub login became known after sign-in):
        unpushed snapshots move along, and that branch's remote snapshots are taken in before
        anything is pushed to it (the gate)."""
        await self._request("switch branch", lambda: self._job_adopt_branch(branch))

    async def delete_rescue(self, name: str) -> dict[str, Any]:
        """Delete rescue branch `name` of the current sync branch, on the remote and here;
        answer with the status."""
        return await self._request("delete rescue branch", lambda: self._job_delete_rescue(name))

    # -- history and versions: reads on the git thread at once, writes as queued jobs ---------

    async def history(self, path: str | None, limit: int, before: str | None) -> dict[str, Any]:
        """A page of the sync branch's history (see `history.read_history`), read on the git
        thread without waiting for queued jobs. Where the history here stops short (a shallow
        restore), older snapshots are fetched for at most `history_fetch_seconds`; when the
        remote does not send them, what is here is the answer, with "more" and a message."""
        repo, snaps = self._opened()
        if path is not None:
            history.validate_path(path)
        if before is not None:
            history.validate_sha(before)

        def read() -> history.Page:
            repo.refresh_history()
            marks = versions.by_commit(versions.list_versions(repo.repo, repo.branch))
            return history.read_history(
                repo.repo, repo.gitdir, repo.branch, path, limit, before, marks
            )

        page = await self._git(read)
        message = None
        for _ in range(_HISTORY_FETCHES):
            if not page.cut:
                break
            depth = min(max(page.depth * 2, page.depth + 4 * limit), restore.MAX_OLDER_DEPTH)
            try:
                await self._fetch_older(depth)
            except GitSyncError as exc:
                message = self._redact(
                    "Older snapshots could not be fetched from the remote, so only those"
                    f" here are listed. {exc.message}"
                )
                log.info("gitsync: could not fetch older history: %s", message)
                break
            deeper = await self._git(read)
            if deeper.depth <= page.depth and deeper.cut:
                page = deeper
                break  # the remote has no more than this either
            page = deeper
        answer: dict[str, Any] = {
            "entries": [entry.to_json(snaps.session) for entry in page.entries],
            "more": page.more,
        }
        if message is not None:
            answer["message"] = message
        return answer

    async def _fetch_older(self, depth: int) -> None:
        """Fetch the sync branch `depth` snapshots deep, on the transport thread, waiting at
        most `history_fetch_seconds` (also while a push holds the thread): the panel answers
        in time whatever the remote does."""
        repo, _ = self._opened()
        assert self._transport is not None
        if self._url is None:
            raise GitSyncError("There is no remote to fetch from.")
        watch = Watch()
        call = asyncio.ensure_future(
            self._net.call(
                restore.fetch_older, self._transport, self._url, self._token, repo.sync_ref,
                depth, watch,
            )
        )  # fmt: skip
        try:
            await asyncio.wait_for(call, self.config.history_fetch_seconds)
        except asyncio.TimeoutError:
            reason = f"the remote did not answer within {self.config.history_fetch_seconds:g} s."
            watch.cancel(reason)  # ends the fetch at its next callback, or before it starts
            raise DeadlineExceeded(reason[0].upper() + reason[1:]) from None

    async def file(self, path: str, sha: str) -> dict[str, Any]:
        """The file `path` as snapshot `sha` holds it (git thread, not queued)."""
        repo, snaps = self._opened()
        history.validate_path(path)
        history.validate_sha(sha)
        limit = snaps.max_file_size_bytes
        return await self._git(lambda: history.file_at(repo.repo, sha, path, limit))

    async def diff(
        self,
        path: str,
        base: str,
        remote: str | None,
        base_path: str | None = None,
        remote_path: str | None = None,
    ) -> dict[str, Any]:
        """The difference between `path` at snapshot `base` and at `remote` (None: on disk
        now); `base_path` / `remote_path`: the file's name on that side, where it was renamed.
        The files are read on the git thread; nbdime compares them on another."""
        repo, snaps = self._opened()
        for name in (path, base_path, remote_path):
            if name is not None:
                history.validate_path(name)
        for sha in (base, remote):
            if sha is not None:
                history.validate_sha(sha)
        limit = snaps.max_file_size_bytes
        sides = await self._git(
            lambda: history.read_sides(
                repo.repo, repo.workspace, path, base, remote, limit,
                base_path=base_path, remote_path=remote_path,
            )
        )  # fmt: skip
        return await asyncio.get_running_loop().run_in_executor(None, history.compare, sides)

    async def list_versions(self) -> dict[str, Any]:
        """The versions of the sync branch, newest first (git thread, not queued)."""
        repo, _ = self._opened()
        listed = await self._git(lambda: versions.list_versions(repo.repo, repo.branch))
        return {"versions": [version.to_json() for version in listed]}

    async def restore_file(
        self, path: str, sha: str, from_path: str | None = None
    ) -> dict[str, Any]:
        """Bring back `path` as snapshot `sha` held it (held `from_path`, the file's name
        there before a rename), after snapshotting anything unsaved; answer with the new
        snapshot (pushed as usual, in the background)."""
        history.validate_path(path)
        if from_path is not None:
            history.validate_path(from_path)
        history.validate_sha(sha)
        return await self._request(
            "restore a file", lambda: self._job_restore_file(path, sha, from_path)
        )

    async def restore_workspace(self, sha: str) -> dict[str, Any]:
        """Bring the files the sync owns back to snapshot `sha`, after snapshotting anything
        unsaved; answer with the new snapshot."""
        history.validate_sha(sha)
        return await self._request("restore the workspace", lambda: self._job_rewind(sha))

    async def save_version(self, name: str, message: str, sha: str | None) -> dict[str, Any]:
        """Name snapshot `sha` (default: a snapshot of now) `name`; pushed with the branch."""
        repo, _ = self._opened()
        versions.validate_name(repo.branch, name)
        if sha is not None:
            history.validate_sha(sha)
        return await self._request(
            "save a version", lambda: self._job_save_version(name, message, sha)
        )

    def _opened(self) -> tuple[SyncRepository, Snapshotter]:
        if self._repo is None or self._snaps is None:
            raise GitSyncError("Sync is not running, so there is no history to read.")
        return self._repo, self._snaps

    async def _saved_first(self) -> None:
        """Snapshot anything unsaved; raise if that failed (a restore would then write over
        work that is in no snapshot)."""
        await self._snapshot(full=True)
        error = self.tracker.facts.local_error
        if error is not None:
            raise type(error)(
                f"Nothing was restored: unsaved work could not be saved first. {error.message}"
            )

    async def _job_restore_file(self, path: str, sha: str, from_path: str | None) -> dict[str, Any]:
        repo, snaps = self._opened()
        await self._saved_first()
        done = await self._git(rewind.restore_file, repo, snaps, path, sha, from_path)
        await self._refresh()
        return {"path": path, "sha": done.sha}

    async def _job_rewind(self, sha: str) -> dict[str, Any]:
        repo, snaps = self._opened()
        await self._saved_first()
        done = await self._git(rewind.restore_workspace, repo, snaps, sha)
        await self._checked_out()
        answer: dict[str, Any] = {"sha": done.sha}
        left = sorted({*done.withheld, *done.kept})
        if left:
            answer["not_restored"] = {p: (done.withheld.get(p) or done.kept[p]) for p in left}
        return answer

    async def _job_save_version(self, name: str, message: str, sha: str | None) -> dict[str, Any]:
        repo, _ = self._opened()
        await self._snapshot(full=True)

        def tag() -> versions.Version:
            target = history.commit_at(repo.repo, sha).id if sha is not None else repo.tip()
            if target is None:
                raise NotFound("There is no snapshot yet to name.")
            tagger = versions.tagger_now(*repo.author())
            return versions.create(repo.repo, repo.branch, name, message, target, tagger)

        version = await self._git(tag)
        log.info("gitsync: saved version %s", name)
        await self._refresh()  # a version to push: the push job is due
        self._wake.set()
        return {k: v for k, v in version.to_json().items() if k != "pushed"}

    async def _fetch_versions(self, heads: RemoteHeads) -> None:
        """Bring the remote's versions of the sync branch that are not here (after a restore:
        cheap, only tags not here, each at depth 1). A failure leaves them for next time."""
        repo, _ = self._opened()
        assert self._transport is not None
        transport, url = self._transport, self._target()[0]
        wanted = await self._git(lambda: versions.wanted(heads, repo.repo, repo.branch))
        if not wanted:
            return
        try:
            await self._network(transport.fetch_tips, url, self._token, wanted, None)
        except GitSyncError as exc:
            log.warning("gitsync: could not fetch the branch's versions: %s", exc.message)

    async def _job_sync_now(self) -> dict[str, Any]:
        # A full scan: the watcher may not have reported the very latest save yet.
        await self._snapshot(full=True)
        if not self._gate_open():
            await self._restore()
        if self._gate_open():
            await self._push()
            if self.tracker.facts.remote_error is None:
                await self._pull()
        return self.status_json()

    async def _job_branches(self) -> list[dict[str, Any]]:
        assert self._transport is not None and self._repo is not None
        transport, url, current = self._transport, self._target()[0], self._repo.branch
        return await self._network(restore.list_branches, transport, url, self._token, current)

    async def _job_resume(self, branch: str) -> dict[str, Any]:
        assert self._repo is not None and self._snaps is not None and self._transport is not None
        repo, snaps, transport, url = self._repo, self._snaps, self._transport, self._target()[0]
        await self._save_everything()
        with self.tracker.doing(State.RESTORING):
            heads = await self._network(transport.list_remote, url, self._token)
            plan = restore.plan_resume(heads, repo, branch)
            wanted = [f for f in (plan.target, plan.start) if f is not None]
            try:
                fetched = await self._network(
                    transport.fetch_tips, url, self._token, wanted, self._progress
                )
                plan = dataclasses.replace(
                    plan, target=fetched[0], start=fetched[1] if plan.start else None
                )
                start = await self._git(restore.resume_start, repo, plan)
                await self._fetch_history(restore.History(start, heads, None))
                await self._save_everything()  # what was saved while fetching
                result = await self._git(restore.apply_resume, repo, snaps, plan, self._progress)
            finally:
                for fetched_ref in (*(f.local_ref for f in wanted), restore.BASE_REF):
                    await self._net.call(transport.forget, fetched_ref)  # served its purpose
        await self._checked_out()
        await self._fetch_versions(heads)  # the versions of the branch resumed
        self._gate = self._target()  # what was just checked out is that branch's snapshot
        self._publish_target()  # heads were read by the snapshot after the checkout
        return {"message": result.message, "branch": result.branch, **self.status_json()}

    async def _save_everything(self) -> None:
        """Snapshot and push until the remote has all of it; raise if it cannot."""
        await self._snapshot(full=True)
        for _ in range(4):
            if not self._gate_open():
                await self._restore()
            elif self._waiting:
                await self._push()
            else:
                return
            error = self.tracker.facts.remote_error
            if error is not None:
                raise type(error)(
                    "Your current work could not be saved to the remote, so nothing was"
                    " switched: " + error.message
                )
        raise GitSyncError("Your current work keeps changing; nothing was switched. Try again.")

    async def _job_set_remote(self, url: str) -> None:
        self._url = origin.normalise(url)
        self._permission_checked = False
        self._restore_backoff.succeeded()
        self._push_backoff.succeeded()
        self.tracker.set_error("remote", None)
        self._publish_target()  # a new target: the gate is closed until it is restored

    async def _job_delete_rescue(self, name: str) -> dict[str, Any]:
        assert self._repo is not None and self._transport is not None
        repo, transport, url = self._repo, self._transport, self._target()[0]
        rescue = await self._git(repo.rescues.get, name)
        if rescue is None or not rescues.belongs_to(rescue.ref, repo.branch):
            raise ConfigError(f"There is no rescue branch {name!r} of {repo.branch} here.")
        if rescue.pushed:  # nothing changes here unless the remote's is gone
            await self._network(transport.delete, url, self._token, [rescue.ref])
        await self._git(repo.rescues.forget, rescue.ref)
        log.info("gitsync: deleted the rescue branch %s", name)
        await self._refresh()
        return self.status_json()

    async def _job_adopt_branch(self, branch: str) -> None:
        assert self._repo is not None
        if self._provisional:
            self._provisional = False
            self._restore_backoff.succeeded()  # the branch is named: restore it now
            self._publish_target()
        if branch == self._repo.branch:
            return
        await self._snapshot(full=True)
        await self._git(self._repo.rename_branch, branch)
        self._restore_backoff.succeeded()
        self._push_backoff.succeeded()
        self.tracker.set_error("remote", None)
        self._publish_target()
        await self._refresh()

    # -- publish: a branch and a pull request (see `publish`) -------------------------------------

    async def publish(self, request: publishing.Request) -> dict[str, Any]:
        """Publish the workspace (or one of its snapshots or versions) as one commit on the
        branch `request.branch`, push it, and open a pull request for it; answer with the
        branch, the commit, the pull request's page (None off GitHub) and a sentence."""
        return await self._request("publish", lambda: self._job_publish(request))

    async def _job_publish(self, request: publishing.Request) -> dict[str, Any]:
        try:
            return await self._publish(request)
        except Exception as exc:  # plain words, secrets redacted, a bug logged
            raise self._as_failure(exc, "Publishing") from None

    async def _publish(self, request: publishing.Request) -> dict[str, Any]:
        assert self._repo is not None and self._snaps is not None and self._transport is not None
        repo, snaps, transport = self._repo, self._snaps, self._transport
        publishing.check_request(request, repo.branch)
        await self._snapshot(full=True)
        await self._may_push_here()  # may move to the user's fork: its snapshot comes in next
        if not self._gate_open():
            await self._restore()
        if not self._gate_open():
            error = self.tracker.facts.remote_error or GitSyncError("It is not reachable.")
            raise type(error)(
                "Nothing was published: this workspace has not taken in the remote's latest"
                " snapshot yet. " + error.message
            )
        url = self._target()[0]
        snapshot = await self._git(publishing.resolve_source, repo, request.source)
        heads = await self._network(transport.list_remote, url, self._token)
        try:  # the base commit, where a shallow restore left it out
            tip = Fetch(repo.sync_ref, repo.tracking_ref, snapshot, is_sync_branch=True)
            await self._fetch_history(restore.History(tip, heads, None))
        finally:
            await self._net.call(transport.forget, restore.BASE_REF)
        base = await self._git(publishing.find_base, repo, snapshot)
        publishing.check_not_base(request.branch, (base.branch, heads.default_branch))
        try:
            on_top = await self._published_tip(request, heads.refs.get(request.ref))
            made = await self._git(
                publishing.make_commit, repo, request, snapshot, base, on_top,
                snaps.excludes, dict(snaps.withheld),
            )  # fmt: skip
            if made.new:
                await self._network(
                    transport.push_to, url, self._token, request.local_ref, request.ref
                )
        finally:
            await self._git(publishing.forget, repo, request)
            await self._net.call(transport.forget, publishing.PUBLISHED_FETCH_REF)
        log.info("gitsync: published %s", request.branch)
        pull = await self._open_pull_request(request, url, base)
        return {
            "branch": request.branch,
            "commit": str(made.commit),
            "pull_request_url": pull.url if pull is not None else None,
            "message": _published_message(request.branch, url, made, pull),
        }

    async def _published_tip(self, request: publishing.Request, tip: Oid | None) -> Oid | None:
        """The remote's tip of the branch to publish to, fetched, when this workspace's sync
        branch published it (see `publish`); None when the branch is new; ConfigError (400)
        when it is someone else's, before anything of it is fetched where the remote can
        send the commit alone."""
        if tip is None:
            return None
        assert self._repo is not None and self._transport is not None
        repo, transport, url = self._repo, self._transport, self._target()[0]
        refused = ConfigError(
            f"The branch {request.branch} exists on the remote and was not published from"
            f" {repo.branch}; choose another name. Nothing was pushed."
        )
        read = await self._network(transport.read_commits, url, self._token, [tip])
        if read is not None and tip in read and publishing.published_from(read[tip]) != repo.branch:
            raise refused
        wanted = [Fetch(request.ref, publishing.PUBLISHED_FETCH_REF, tip, is_sync_branch=False)]
        fetched = await self._network(transport.fetch_tips, url, self._token, wanted, None)
        oid = fetched[0].oid
        if (
            publishing.published_from(await self._git(publishing.raw_commit, repo, oid))
            != repo.branch
        ):
            raise refused
        return oid

    async def _open_pull_request(
        self, request: publishing.Request, url: str, base: publishing.Base
    ) -> PullRequest | None:
        """The pull request for the branch just pushed, through `PullRequests` (snapshots go
        on meanwhile); a failure says that the branch is pushed all the same."""
        if self._pull_requests is None:
            return None
        opening = self._pull_requests.open_pull_request(
            url, request.branch, request.title, request.body, base.branch
        )
        try:
            return await self._meanwhile(opening)
        except GitSyncError as exc:
            exc.message = (
                f"The branch {request.branch} was pushed to {url}, but the pull request was"
                f" not opened: {exc.message}"
            )
            raise

    async def _meanwhile(self, work: Awaitable[T]) -> T:
        """Await `work` (a request with timeouts of its own, on this event loop) and take the
        snapshots that fall due meanwhile, as `_network` does for the transport thread."""
        task = asyncio.ensure_future(work)
        try:
            while not task.done():
                next_local = await self._snapshot_if_due()
                now = time.monotonic()
                if task.done() or next_local <= now:
                    continue
                self._wake.clear()
                waker = asyncio.ensure_future(self._wake.wait())
                timeout = None if math.isinf(next_local) else next_local - now
                await asyncio.wait(
                    {task, waker}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                waker.cancel()
        finally:
            if not task.done():
                task.cancel()
        return task.result()

    # -- the background jobs --------------------------------------------------------------------

    async def _snapshot(self, full: bool) -> None:
        assert self._snaps is not None
        snaps = self._snaps
        paths = self._changes.drain()
        full = full or self._full_scan_wanted or self._rescan_next or self._changes.take_rescan()
        if full:
            self._last_full_scan = time.monotonic()
            self._full_scan_wanted = False
        error: GitSyncError | None = None
        with self.tracker.doing(State.SNAPSHOTTING):
            try:
                snapshot = await self._git(snaps.snapshot, None if full else paths)
                self._rescan_next = False
                if snapshot is not None:
                    log.info("gitsync: snapshot of %d paths", snapshot.paths)
                if snaps.wants_packing(
                    self.config.pack_every_snapshots, self.config.pack_every_bytes
                ):
                    await self._git(snaps.maintain)
            except Exception as exc:
                error = self._as_failure(exc, "The snapshot")
                log.warning("gitsync: snapshot failed: %s", error.message)
                self._rescan_next = True
        self.tracker.set_error("local", error)
        await self._refresh()

    async def _poll(self) -> None:
        """Where inotify cannot watch: find what changed since the last snapshot (the stat
        cache keeps it cheap) and record it like the watcher's events, so it is snapshotted
        after the commit delay; quiet in the status unless something changed."""
        assert self._snaps is not None and self._poller is not None
        snaps, poller = self._snaps, self._poller
        try:
            found = await self._git(poller.poll, snaps.differing)
        except Exception:  # the full snapshot it asks for says what is wrong
            log.debug("gitsync: polling for changes failed", exc_info=True)
            self._changes.request_rescan()
        else:
            if found:
                log.debug("gitsync: polling found %d changed paths", found)
        self._next_poll = time.monotonic() + self.config.poll_interval_seconds

    async def _restore(self) -> None:
        """Take in the remote's snapshot of the current branch, then open the gate."""
        epoch = self.credentials.epoch
        with self.tracker.doing(State.RESTORING):
            try:
                if self._provisional:
                    await self._name_the_branch()
                target = self._target()
                result = await self._take_in_remote()
            except Exception as exc:
                error = self._as_failure(exc, "The restore")
                if not isinstance(error, (TokenMissing, LoginUnknown)):
                    error.message = "Could not restore from the remote: " + error.message
                log.warning("gitsync: %s", error.message)
                self._restore_backoff.failed(
                    time.monotonic(), self._refused_epoch(error, epoch), _asked_wait(error)
                )
                self.tracker.set_error("remote", error)
                await self._after_refusal(error)
                return
        log.info("gitsync: restore: %s", result.case)
        self._restore_backoff.succeeded()
        self._gate = target
        self.tracker.set_synced_at(_now_iso())  # what the remote has, this workspace has
        self.tracker.set_error("remote", None)
        self._show_notice(result.notice())
        self._publish_target()

    async def _take_in_remote(self) -> restore.RestoreResult:
        """Fetch the remote's snapshot of the sync branch and merge it into this workspace:
        local work is snapshotted first, files the user has not touched arrive, a file changed
        on both sides keeps this workspace's version and the remote's goes to a rescue branch.
        The one way remote snapshots come in: at start, after a refused push, on Sync now."""
        assert self._repo is not None and self._snaps is not None and self._transport is not None
        repo, snaps, transport, url = self._repo, self._snaps, self._transport, self._target()[0]
        heads = await self._network(transport.list_remote, url, self._token)
        empty = await self._git(restore.workspace_is_empty, repo, snaps.excludes)
        fetched = restore.plan_fetch(heads, repo, empty)
        if repo.sync_ref not in heads.refs:
            # What we recorded may be another remote's (before a fork) or a deleted branch's.
            await self._net.call(transport.forget, repo.tracking_ref)
        try:
            if fetched is not None:
                known = await self._git(repo.ref_target, repo.tracking_ref)
                fetched = await self._network(
                    restore.fetch_tip, transport, url, self._token, heads, fetched, empty,
                    self._progress,
                )  # fmt: skip
                await self._fetch_history(restore.History(fetched, heads, known))
            await self._fetch_versions(heads)
            await self._snapshot(full=True)
            result = await self._git(restore.take_in, repo, snaps, fetched, self._progress)
        finally:
            await self._net.call(transport.forget, restore.BASE_REF)  # served its purpose
            if fetched is not None and not fetched.is_sync_branch:
                await self._net.call(transport.forget, fetched.local_ref)
        if result.case not in restore.NOTHING_NEW:
            await self._checked_out()  # snapshots, and reads the heads
        else:
            await self._refresh()
        return result

    async def _fetch_history(self, history: restore.History) -> None:
        """Fetch as much of a remote tip's history as the restore needs (see
        `restore.History`): each step decided on the git thread, fetched on the network's."""
        assert self._repo is not None and self._transport is not None
        repo, transport, url = self._repo, self._transport, self._target()[0]
        while (step := await self._git(history.next, repo)) is not None:
            log.debug("gitsync: fetching %s at depth %d", step.refspecs, step.depth)
            await self._network(
                restore.fetch_history, transport, url, self._token, step, self._progress
            )

    async def _checked_out(self) -> None:
        """After a checkout the watcher reports every file it wrote; a full scan instead (cheap:
        the sync index has fresh stat data) finds a save made meanwhile without rehashing."""
        self._changes.drain()
        await self._snapshot(full=True)

    async def _push(self) -> None:
        """Send snapshots (and rescue branches) to the remote; when it moved on, merge its
        snapshots in and send again. Never forces."""
        epoch = self.credentials.epoch
        sent: dict[str, Any] = {}
        error: GitSyncError | None = None
        with self.tracker.doing(State.PUSHING):
            try:
                if await self._may_push_here():
                    try:
                        sent = await self._send()
                    except PushRejected:
                        await self._diverged()
                        sent = await self._send()
                    await self._prune_rescues()
            except Exception as exc:
                error = self._as_failure(exc, "The push")
        now = time.monotonic()
        if error is not None:
            self._push_backoff.failed(now, self._refused_epoch(error, epoch), _asked_wait(error))
            log.warning("gitsync: push failed (%s): %s", error.kind, error.message)
            await self._after_refusal(error)
        else:
            self._push_backoff.succeeded()
            if sent:
                self._bucket.take(now)
                log.info("gitsync: pushed to %s", self._target()[1])
            self.tracker.set_synced_at(_now_iso())
        self.tracker.set_error("remote", error)
        await self._refresh()

    async def _may_push_here(self) -> bool:
        """Asked once per remote: may this user push there? False when the user's own fork of
        it is where the work goes (a relaunch finds the fork of an earlier session): the
        workspace syncs to the fork from now on, its snapshot taken in first (the gate)."""
        if self._permission is None or self._permission_checked:
            return True
        fork = await self._permission.check_push()
        self._permission_checked = True
        if fork is None:
            return True
        await self._job_set_remote(fork)
        return False

    async def _send(self) -> dict[str, Any]:
        assert self._repo is not None and self._transport is not None
        repo, transport, url = self._repo, self._transport, self._target()[0]
        refs: dict[str, str | None] = {ref: None for ref in repo.rescue_refs}
        if self._heads.head is not None and self._heads.head != self._heads.remote_head:
            refs[repo.sync_ref] = repo.tracking_ref
        sent: dict[str, Any] = {}
        if refs:
            sent = await self._network(transport.push, url, self._token, refs)
            await self._git(repo.rescues.mark_pushed, list(sent))
        return {**sent, **await self._send_versions()}

    async def _send_versions(self) -> dict[str, Any]:
        """Push the versions the remote does not have, one at a time, never forcing: one the
        remote holds otherwise (another session chose the same name) stays here only."""
        repo, _ = self._opened()
        assert self._transport is not None
        transport, url = self._transport, self._target()[0]
        pending = await self._git(lambda: versions.unpushed(repo.repo, repo.branch))
        sent: dict[str, Any] = {}
        for ref, record in pending.items():
            if ref in self._refused_versions:
                continue
            try:
                sent.update(await self._network(transport.push, url, self._token, {ref: record}))
            except PushRejected as exc:
                self._refused_versions.add(ref)
                log.warning(
                    "gitsync: the remote has another version named %s; kept here only (%s)",
                    ref.removeprefix(versions.prefix(repo.branch)),
                    exc.message,
                )
        return sent

    async def _prune_rescues(self) -> None:
        """Delete the rescue branches that hold nothing the user could miss any more (merged
        into the tip, or superseded: see `rescues`), on the remote first."""
        assert self._repo is not None and self._transport is not None
        repo, transport, url = self._repo, self._transport, self._target()[0]
        settled = await self._git(lambda: repo.rescues.settled(repo.branch, repo.tip()))
        if not settled:
            return
        pushed = [rescue.ref for rescue in settled if rescue.pushed]
        if pushed:
            await self._network(transport.delete, url, self._token, pushed)
        for rescue in settled:
            await self._git(repo.rescues.forget, rescue.ref)
        log.info(
            "gitsync: deleted rescue branches that served their purpose: %s",
            ", ".join(r.name for r in settled),
        )

    async def _diverged(self) -> None:
        """The remote branch moved on elsewhere (another tab, pod or session)."""
        result = await self._take_in_remote()
        log.info("gitsync: the remote branch had moved on: %s", result.case)
        now = time.monotonic()
        self._divergences = [
            t for t in self._divergences if now - t < TWO_SESSIONS_WINDOW_SECONDS
        ] + [now]
        notice = result.notice()
        if len(self._divergences) >= 2:
            notice = notice or {"kind": "shared-branch", "paths": [], "branch": None}
            notice["message"] = (
                f"Another session is writing to {self._target()[1]} at the same time (its"
                " snapshots keep arriving here). Both are kept, but edits to the same file"
                " may bounce between them; close one, or resume it from another branch. "
                + str(notice.get("message") or "")
            ).strip()
        self._show_notice(notice)

    async def _pull(self) -> None:
        """Bring in what another session pushed since (Sync now goes both ways)."""
        try:
            result = await self._take_in_remote()
        except GitSyncError as exc:
            log.warning("gitsync: could not look for newer snapshots: %s", exc.message)
            return
        if result.case not in restore.NOTHING_NEW:
            log.info("gitsync: brought in the remote's newer snapshots: %s", result.case)
            self._show_notice(result.notice())
            if self._waiting:
                await self._push()  # the merge itself (and the rescue branches' pruning)
            else:
                try:
                    await self._prune_rescues()  # the tip may hold a rescued version now
                except GitSyncError as exc:
                    log.warning("gitsync: could not delete rescue branches: %s", exc.message)
                await self._refresh()

    def _show_notice(self, notice: dict[str, Any] | None) -> None:
        if notice is not None:
            self.tracker.set_notice(notice)

    # -- running work on the two threads ----------------------------------------------------------

    async def _git(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn` on the git thread (local work: never waits for the network)."""
        return await self._git_worker.run(fn, *args)

    async def _network(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args, watch)` on the transport thread within its deadlines (see
        `workers.NetworkLane`), snapshotting meanwhile whenever a snapshot is due."""
        return await self._net.run(fn, *args, meanwhile=self._snapshot_if_due, wake=self._wake)

    async def _snapshot_if_due(self) -> float:
        """Take a snapshot if one is due; say when the next one is."""
        job, at = scheduler.local_due(self._facts(time.monotonic()))
        if at <= time.monotonic():
            await self._run_due(job)
            return time.monotonic()
        return at

    def _token(self) -> str | None:
        return self.credentials.token()

    async def _name_the_branch(self) -> None:
        """The branch is still provisional: name it after the login of the token in use, or
        say what would (signing in)."""
        if await self._net.call(self.credentials.token) is None:
            raise TokenMissing("No token.")  # worded by _as_failure
        branch = await self._permission.login_branch() if self._permission else None
        if branch is not None:
            await self._job_adopt_branch(branch)
            return
        raise LoginUnknown(
            "This session's work cannot be found again after it ends: the token in use has"
            " no GitHub login to name its branch after. Sign in to GitHub here, or ask an"
            " admin to set GITSYNC_BRANCH; snapshots are kept in this session meanwhile."
        )

    def _as_failure(self, exc: Exception, what: str) -> GitSyncError:
        """Any failure as one the user can be shown: secrets redacted; an unexpected one (a
        bug, a library's surprise) logged with its traceback and put in plain words, so that
        it becomes a state with a retry and never ends the engine."""
        if isinstance(exc, TokenMissing):  # nobody gave a token: not a refusal
            exc.message = (
                "Sign in to GitHub to keep your work: until then it is saved only in this"
                " Binder session, and is gone when the session ends."
                if self.config.binder_repo_url
                else "Sign in to GitHub (or give the server a token) to push; snapshots are"
                " kept in this workspace until then."
            )
        if isinstance(exc, GitSyncError):
            exc.message = self._redact(exc.message)
            return exc
        log.error("gitsync: %s failed unexpectedly", what.lower(), exc_info=exc)
        detail = self._redact(f"{type(exc).__name__}: {exc}")
        return GitSyncError(f"{what} failed unexpectedly ({detail}).")

    def _redact(self, text: str) -> str:
        return redact(text, self.credentials.secrets())

    @staticmethod
    def _refused_epoch(error: GitSyncError, epoch: int) -> int | None:
        """A refused token or permission waits for new credentials; other failures back off."""
        return epoch if isinstance(error, (AuthRequired, PermissionDenied)) else None

    async def _after_refusal(self, error: GitSyncError) -> None:
        """A refused token or permission: providers that can get a fresh token (the hub's
        auth_state, a refresh token) look now, and again before the next attempt, which is due
        at once when they find one and otherwise after `auth_recheck_seconds` (or on Sync now).
        """
        if isinstance(error, (AuthRequired, PermissionDenied)):
            await self._net.call(self.credentials.refused)

    async def _refresh(self) -> None:
        """Read where the branches are (git thread) and show it."""
        assert self._repo is not None and self._snaps is not None
        repo, snaps = self._repo, self._snaps

        refused = set(self._refused_versions)

        def read() -> tuple[Heads, dict[str, str], bool, list[rescues.Rescue]]:
            heads = repo.heads()
            waiting = heads.head is not None and heads.head != heads.remote_head
            kept = repo.rescues.of(repo.branch)
            tags = set(versions.unpushed(repo.repo, repo.branch)) - refused
            return heads, dict(snaps.skipped), waiting or bool(repo.rescue_refs or tags), kept

        self._heads, skipped, self._waiting, kept = await self._git(read)
        self.tracker.set_skipped(skipped)
        self.tracker.set_rescues([r.to_json() for r in kept], self._rescues_message(len(kept)))
        self.tracker.set_heads(
            self._heads.head, self._heads.remote_head, self._heads.unpushed, self._waiting
        )

    def _rescues_message(self, count: int) -> str | None:
        limit = self.config.max_rescue_branches
        if count <= limit:
            return None
        return (
            f"{count} rescue branches hold versions that are not in your workspace, more than"
            f" the {limit} expected. They are never deleted without you: open them, take back"
            " what you need, and delete the others."
        )

    # -- events from other threads ----------------------------------------------------------------

    def _progress(self, phase: str, done: int, total: int, size: int) -> None:
        """Progress from a worker thread: shown in the status, at most ten events a second."""
        now = time.monotonic()
        if now - self._progress_at < 0.1 and done < total:
            return
        self._progress_at = now
        progress = {"phase": phase, "done": done, "total": total, "bytes": size}
        self._call_soon(self.tracker.set_progress, progress)

    def _on_first_change(self) -> None:
        """From the watcher thread: changes started arriving."""
        self._call_soon(self._changes_arrived)

    def _changes_arrived(self) -> None:
        self._wake.set()
        self.tracker.publish()

    def _limit_threadsafe(self, limit: WatchLimit) -> None:
        """From any thread: the kernel refused inotify (the watcher logged which limit)."""
        self._call_soon(self._start_polling, limit)

    def _start_polling(self, limit: WatchLimit) -> None:
        """Keep the watches that work, and poll the whole workspace from now on: at once, for
        what changed before the refusal was noticed, then every poll interval."""
        if self._poller is not None or self._repo is None:
            return
        self._poller = Poller(self._repo.workspace, self._changes)
        self._next_poll = time.monotonic()
        interval = self.config.poll_interval_seconds
        self.tracker.set_watching(
            Watching.POLLING,
            f"The system refused to watch more of the workspace ({limit.refused}: the per-user"
            f" limit {limit.sysctl}, shared with other sessions on this machine). Changes are"
            f" found by scanning every {interval:g} s instead, so they are still saved, just"
            f" up to {interval:g} s later. An admin can raise {limit.sysctl} on the host.",
        )
        self._wake.set()

    def _credentials_changed_threadsafe(self) -> None:
        self._call_soon(self._credentials_changed)

    def _credentials_changed(self) -> None:
        """A new token may be there: a restore that failed is tried again at once (a refused
        push is due again by the epoch)."""
        if self._repo is not None and not self._gate_open():
            self._restore_backoff.retry_now()
        self._wake.set()

    def _call_soon(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(fn, *args)
