"""The one owner of sync state: a single asyncio task that takes change batches and runs all git
work, serialised, on one dedicated thread.

The event loop only keeps time and state; `repo.SyncRepo` does the blocking work on the git
thread. Every state change goes through `_publish`, which emits one event on the server's bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from . import filters, origin, restore
from .auth import Credentials
from .errors import (
    AuthRequired,
    ConfigError,
    GitSyncError,
    PermissionDenied,
    PushRejected,
    redact,
)
from .repo import Heads, SyncRepo
from .state import MAX_LISTED_PATHS, State, Status
from .watcher import ChangeSet, Watcher

log = logging.getLogger(__name__)
T = TypeVar("T")
TWO_SESSIONS_WINDOW = 600.0  # two divergences this close: another live session on the branch

_FAILURE_STATES = {
    AuthRequired.kind: State.AUTH_REQUIRED,
    PermissionDenied.kind: State.AUTH_REQUIRED,  # the user must act: get access, or fork
    PushRejected.kind: State.CONFLICT,
    "network": State.OFFLINE,
}


@dataclass
class EngineConfig:
    """What the engine needs to know; `app.GitSync` fills it from traits and env vars."""

    workspace: Path
    branch: str
    remote_url: str | None = None
    commit_delay_seconds: float = 2.0
    push_interval_seconds: float = 10.0
    retry_initial_seconds: float = 2.0
    retry_max_seconds: float = 300.0
    excludes: tuple[str, ...] = filters.DEFAULT_EXCLUDES
    max_file_size_bytes: int = filters.DEFAULT_MAX_FILE_SIZE_BYTES
    enabled: bool = True
    restore_on_start: bool = True
    rescan_interval_seconds: float = 600.0
    pack_every_snapshots: int = 50
    pack_every_bytes: int = 64 * 1024 * 1024
    binder_repo_url: str | None = None
    watch: bool = True


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class SyncEngine:
    """Debounces changes into snapshots, coalesces pushes, retries, and flushes on stop."""

    def __init__(
        self,
        config: EngineConfig,
        credentials: Credentials,
        emit: Callable[[dict[str, Any]], None] = lambda data: None,
        preflight: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.config = config
        self.credentials = credentials
        self._emit = emit
        # Checked before the first push to a remote (e.g. may this user push there?); raises
        # a GitSyncError to say why not.
        self._preflight = preflight
        self._preflight_done = False
        self.status = Status(state=State.STARTING, branch=config.branch)
        self._state_since = time.monotonic()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gitsync-git")
        self._repo: SyncRepo | None = None
        self._url: str | None = None
        self._changes = ChangeSet(self._on_first_change)
        self._watcher: Watcher | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._busy: State | None = None
        self._fatal: GitSyncError | None = None
        self._disabled = False
        self._snapshot_error: GitSyncError | None = None
        self._push_error: GitSyncError | None = None
        self._failed_epoch = -1
        self._failures = 0
        self._last_attempt = 0.0
        self._last_push = float("-inf")
        self._scan_all = True  # the first snapshot scans the whole workspace
        self._heads = Heads(None, None, 0)
        self._rescan_next = False  # a failed snapshot is retried as a full scan
        self._remote_checked = False
        self._jobs: list[tuple[Callable[[], Awaitable[Any]], asyncio.Future[Any]]] = []
        self._progress_at = 0.0
        self._divergences: list[float] = []  # when the remote branch moved under us
        self._last_full_scan = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the repository on the git thread and start the loop; never raises."""
        self._loop = asyncio.get_running_loop()
        self.credentials.subscribe(self._wake_threadsafe)
        self._task = asyncio.create_task(self._main(), name="gitsync-engine")

    async def stop(self, timeout: float) -> None:
        """Snapshot and push what is pending, bounded by `timeout`, then release the thread."""
        self._closing = True
        self._wake.set()
        if self._watcher is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._watcher.stop)
        try:
            # shield: a cancelled shutdown must not cut a snapshot or push in half
            await asyncio.wait_for(asyncio.shield(self._flush()), timeout)
        except asyncio.TimeoutError:
            log.warning("gitsync: shutdown flush did not finish in %.0f s", timeout)
        except Exception:
            log.exception("gitsync: shutdown flush failed")
        if self._repo is not None:
            # after any git work still queued; a new engine in this process may start at once
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._git(self._repo.close), 5)
        self._executor.shutdown(wait=False)

    async def _flush(self) -> None:
        if self._task is not None:
            await self._task
        if self._repo is None:
            return
        self._busy = State.STOPPING
        self._publish()
        await self._snapshot(full=True)
        if self._push_due() is not None:
            await self._push()
        self._publish()

    async def sync_now(self) -> dict[str, Any]:
        """Snapshot, push, and bring in what another session pushed, now; answer with the
        status once done."""
        if self._task is None or self._task.done() or self._closing:
            return self.status_json()  # disabled, failed to start, or stopping: nothing to do

        async def job() -> dict[str, Any]:
            # A full scan: the watcher may not have reported the very latest save yet.
            await self._snapshot(full=True)
            if self._url:
                await self._push()
                if self._push_error is None:
                    await self._pull()
            return self.status_json()

        return await self._run_job(job)

    def status_json(self) -> dict[str, Any]:
        """The status as served by the API."""
        self.status.pending_paths, self.status.pending_count = self._changes.peek(MAX_LISTED_PATHS)
        return self.status.to_json()

    # -- the loop ---------------------------------------------------------------------------

    async def _main(self) -> None:
        try:
            await self._run()
        finally:
            for _, future in self._jobs:  # asked for, but the loop stopped (or never started)
                if not future.done():
                    future.set_exception(GitSyncError("Sync has stopped; nothing was done."))
            self._jobs.clear()

    async def _run(self) -> None:
        try:
            await self._open()
        except GitSyncError as exc:
            self._fatal = exc
            self._publish()
            return
        except Exception as exc:
            log.exception("gitsync: could not start")
            self._fatal = GitSyncError(f"Sync could not start: {exc}")
            self._publish()
            return
        if self._repo is None:
            self._disabled = True
            self._publish()
            return
        if self.config.restore_on_start and self._url:
            await self._restore_on_start()
        await self._start_watching()
        while not self._closing:
            try:
                await self._step()
            except Exception:  # a bug must not end syncing for the rest of the session
                log.exception("gitsync: unexpected failure in the sync loop")
                await asyncio.sleep(self.config.retry_initial_seconds)

    async def _open(self) -> None:
        self._repo = await self._git(self._open_repo)
        if self._repo is None:
            return
        self.status.remote_url = self._url

    async def _start_watching(self) -> None:
        assert self._repo is not None
        if self.config.watch and not self._closing:
            self._watcher = Watcher(self._repo.workspace, self.config.excludes, self._changes)
            await asyncio.get_running_loop().run_in_executor(None, self._watcher.start)

    async def _restore_on_start(self) -> None:
        """Bring the workspace up to the remote before anything is snapshotted."""
        assert self._repo is not None and self._url is not None
        self._busy = State.RESTORING
        self._publish()
        try:
            result = await self._git(
                restore.restore, self._repo, self._url, self._token, self._progress_threadsafe
            )
        except GitSyncError as exc:
            # Keep going with what is here: snapshots stay local and pushing will not
            # overwrite the remote (it never forces); the status says why.
            exc.message = "Could not restore from the remote: " + redact(
                exc.message, self.credentials.secrets()
            )
            log.warning("gitsync: %s", exc.message)
            self._push_error = exc
            self._failures = 1
            self._last_attempt = time.monotonic()
        else:
            log.info("gitsync: restore: %s", result.case)
            self.status.notice = result.notice()
        finally:
            self._busy = None
            self.status.progress = None
        await self._refresh()

    def _progress_threadsafe(self, phase: str, done: int, total: int, size: int) -> None:
        """Progress from the git thread: shown in the status, at most ten events a second."""
        now = time.monotonic()
        if now - self._progress_at < 0.1 and done < total:
            return
        self._progress_at = now
        progress = {"phase": phase, "done": done, "total": total, "bytes": size}
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._show_progress, progress)

    def _show_progress(self, progress: dict[str, Any]) -> None:
        if self._busy is not None:
            self.status.progress = progress
            self._publish()

    # -- jobs the API asks for: run by the loop, so git work stays serialised -----------------

    async def _run_job(self, job: Callable[[], Awaitable[T]]) -> T:
        """Run `job` on the engine's loop, after the work before it (and after start-up)."""
        if self._task is None or self._task.done() or self._closing:
            raise GitSyncError("Sync is not running.")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.append((job, future))
        self._wake.set()
        return await future

    async def branches(self) -> list[dict[str, Any]]:
        """The remote's branches a user can resume from (see restore.list_branches)."""
        repo, url = self._repo, self._url
        if repo is None or url is None:
            raise GitSyncError("Sync is not running.")

        async def job() -> list[dict[str, Any]]:
            return await self._git(restore.list_branches, repo, url, self._token)

        return await self._run_job(job)

    async def set_remote(self, url: str) -> None:
        """Push to `url` from now on (e.g. the user's fork of a repository they cannot push to)."""

        async def job() -> None:
            assert self._repo is not None
            self._url = origin.normalise(url)
            self.status.remote_url = self._url
            self._repo.switch_branch(self._repo.branch)  # forget what the old remote had
            self._remote_checked = False
            self._preflight_done = False
            self._push_error = None
            self._publish()

        await self._run_job(job)

    async def adopt_branch(self, branch: str) -> None:
        """Sync to `branch` from now on (the user's GitHub login became known after sign-in):
        unpushed snapshots move along, and the remote's snapshots of that branch are restored
        and merged as at start-up."""
        repo, url = self._repo, self._url
        if repo is None or url is None or branch == repo.branch:
            return

        async def job() -> None:
            await self._snapshot(full=True)
            await self._git(repo.rename_branch, branch)
            self.status.branch = self.config.branch = branch
            self._remote_checked = False
            if self.config.restore_on_start:
                await self._restore_on_start()
            else:
                await self._refresh()

        await self._run_job(job)

    async def resume(self, branch: str) -> dict[str, Any]:
        """Save and push the current work, then switch to `branch` and restore it."""
        repo, url = self._repo, self._url
        if repo is None or url is None:
            raise GitSyncError("Sync is not running.")

        async def job() -> dict[str, Any]:
            await self._snapshot(full=True)
            await self._push()
            if self._push_error is not None:
                raise type(self._push_error)(
                    "Your current work could not be pushed, so nothing was switched: "
                    + self._push_error.message
                )
            self._busy = State.RESTORING
            self._publish()
            try:
                result = await self._git(
                    restore.resume, repo, url, self._token, branch, self._progress_threadsafe
                )
            finally:
                self._busy = None
                self.status.progress = None
            self.status.branch = repo.branch
            self.config.branch = repo.branch
            self._remote_checked = False
            self._changes.drain()
            await self._refresh()
            return {"message": result.message, "branch": result.branch, **self.status_json()}

        return await self._run_job(job)

    def _open_repo(self) -> SyncRepo | None:
        """On the git thread: open (or create) the repository and decide where to push."""
        if not self.config.enabled:
            return None
        workspace = self.config.workspace
        fallback = {"BINDER_REPO_URL": self.config.binder_repo_url or ""}
        url = origin.detect(self.config.remote_url, None, fallback)
        if url is None and not (workspace / ".git").exists():
            return None  # nothing to sync to, and not ours to turn into a repository
        repo = SyncRepo(
            workspace,
            self.config.branch,
            excludes=self.config.excludes,
            max_file_size_bytes=self.config.max_file_size_bytes,
        )
        url = origin.detect(self.config.remote_url, repo.origin_url(), fallback)
        if not url:
            raise ConfigError(
                "There is no remote to sync to: the workspace has no 'origin' and"
                " GITSYNC_REMOTE_URL is not set."
            )
        self._url = url  # normalised: no credentials in it
        return repo

    async def _step(self) -> None:
        now = time.monotonic()
        if self._jobs:
            job, future = self._jobs.pop(0)
            try:
                result = await job()
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)
            return
        timeout: float | None = None
        if self._changes or self._scan_all:
            due = (
                now
                if self._scan_all
                else self._changes.last_change + self.config.commit_delay_seconds
            )
            if due <= now:
                await self._snapshot(full=self._scan_all)
                return
            timeout = due - now
        else:
            due_push = self._push_due()
            if due_push is not None:
                if due_push <= now:
                    await self._push()
                    return
                timeout = due_push - now
            # A safety rescan now and then catches whatever the watcher may have missed.
            due_scan = self._last_full_scan + self.config.rescan_interval_seconds
            if due_scan <= now:
                await self._snapshot(full=True)
                return
            timeout = due_scan - now if timeout is None else min(timeout, due_scan - now)
        self._wake.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    def _push_due(self) -> float | None:
        """When the next push should happen, or None if there is nothing to push or we wait."""
        if not self._url:
            return None
        unpushed = self._heads.head is not None and self._heads.head != self._heads.remote_head
        if not unpushed and self._remote_checked:
            return None
        error = self._push_error
        if error is None:
            return self._last_push + self.config.push_interval_seconds
        if isinstance(error, (AuthRequired, PermissionDenied)):
            # Retrying a refused token helps nobody (and GitHub may lock it); wait for a new one.
            return 0.0 if self.credentials.epoch != self._failed_epoch else None
        backoff: float = min(
            self.config.retry_max_seconds,
            self.config.retry_initial_seconds * 2.0 ** max(self._failures - 1, 0),
        )
        return self._last_attempt + backoff

    def _on_first_change(self) -> None:
        """Called from the watcher thread when changes start arriving."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._changes_arrived)

    def _wake_threadsafe(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    def _changes_arrived(self) -> None:
        self._wake.set()
        self._publish()

    # -- the two kinds of git work ----------------------------------------------------------

    async def _snapshot(self, full: bool) -> None:
        assert self._repo is not None
        paths = self._changes.drain()
        full = full or self._rescan_next or self._changes.take_rescan()
        if full:
            self._last_full_scan = time.monotonic()
        self._scan_all = False
        self._busy = State.SNAPSHOTTING
        self._publish()
        try:
            snapshot = await self._git(self._repo.snapshot, None if full else paths)
            self._snapshot_error = None
            self._rescan_next = False
            if snapshot is not None:
                log.info("gitsync: snapshot of %d paths", snapshot.paths)
            if self._repo.wants_packing(
                self.config.pack_every_snapshots, self.config.pack_every_bytes
            ):
                await self._git(self._repo.maintain)
        except GitSyncError as exc:
            log.warning("gitsync: snapshot failed: %s", exc.message)
            self._snapshot_error = exc
            self._rescan_next = True
        finally:
            self._busy = None
        await self._refresh()

    async def _push(self) -> None:
        assert self._repo is not None and self._url is not None
        self._busy = State.PUSHING
        self._publish()
        self._last_attempt = time.monotonic()
        epoch = self.credentials.epoch
        pushed = False
        unpushed = self._heads.unpushed
        try:
            if self._preflight is not None and not self._preflight_done:
                await self._preflight()
                self._preflight_done = True
            try:
                await self._git(self._repo.push, self._url, self._token)
            except PushRejected:
                # The remote branch moved on elsewhere (another tab, pod or session): merge
                # its snapshots in and push again; never force.
                if not await self._reconcile():
                    raise
                await self._git(self._repo.push, self._url, self._token)
        except GitSyncError as exc:
            exc.message = redact(exc.message, self.credentials.secrets())
            self._push_error = exc
            self._failures += 1
            if isinstance(exc, (AuthRequired, PermissionDenied)):
                self._failed_epoch = epoch
                # A provider that can get a fresh token (the hub, a refresh) does so now.
                await self._git(self.credentials.refused)
            log.warning("gitsync: push failed (%s): %s", exc.kind, exc.message)
        else:
            self._push_error = None
            self._remote_checked = True
            self._failures = 0
            self.status.last_synced_at = _now_iso()
            pushed = True
        finally:
            self._busy = None
        remote_before = self._heads.remote_head
        await self._refresh()
        if pushed and self._heads.remote_head != remote_before:
            # Only a push that sent something starts the interval: a check that found nothing
            # to send must not hold back the next save.
            self._last_push = time.monotonic()
            log.info("gitsync: pushed %d snapshot(s) to %s", unpushed, self._repo.branch)

    async def _pull(self) -> None:
        """Bring in what another session pushed since (Sync now goes both ways): a newer remote
        snapshot is restored, one that diverged is merged as after a refused push."""
        assert self._repo is not None and self._url is not None
        try:
            result = await self._git(
                restore.restore, self._repo, self._url, self._token, self._progress_threadsafe
            )
        except GitSyncError as exc:
            log.warning("gitsync: could not look for newer snapshots: %s", exc.message)
            return
        if result.case not in ("up-to-date", "nothing-to-restore"):
            log.info("gitsync: brought in the remote's newer snapshots: %s", result.case)
            self.status.notice = result.notice() or self.status.notice
        await self._refresh()

    async def _reconcile(self) -> bool:
        """Merge the remote's new snapshots into this workspace, as a restore does: changes to
        files the user has not touched arrive, a file changed on both sides keeps this
        workspace's version and the remote's goes to a rescue branch. True if there is now
        something to push."""
        assert self._repo is not None and self._url is not None
        result = await self._git(
            restore.restore, self._repo, self._url, self._token, self._progress_threadsafe
        )
        log.info("gitsync: the remote branch had moved on: %s", result.case)
        now = time.monotonic()
        self._divergences = [t for t in self._divergences if now - t < TWO_SESSIONS_WINDOW]
        self._divergences.append(now)
        notice = result.notice()
        if len(self._divergences) >= 2:
            notice = notice or {"kind": "shared-branch", "paths": [], "branch": None}
            notice["message"] = (
                f"Another session is writing to {self._repo.branch} at the same time (its"
                " snapshots keep arriving here). Both are kept, but edits to the same file"
                " may bounce between them; close one, or resume it from another branch. "
                + str(notice.get("message") or "")
            ).strip()
        if notice is not None:
            self.status.notice = notice
        return result.case not in ("up-to-date", "nothing-to-restore")

    def _token(self) -> str | None:
        return self.credentials.token()

    async def _refresh(self) -> None:
        assert self._repo is not None
        repo = self._repo
        self._heads, skipped = await self._git(lambda: (repo.heads(), dict(repo.skipped)))
        self.status.skipped = [{"path": p, "reason": r} for p, r in sorted(skipped.items())]
        self._publish()

    async def _git(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- state ------------------------------------------------------------------------------

    def _derive_state(self) -> tuple[State, GitSyncError | None]:
        if self._busy is not None:
            return self._busy, self._push_error or self._snapshot_error
        if self._closing:
            return State.STOPPING, None
        if self._fatal is not None:
            return State.ERROR, self._fatal
        if self._disabled:
            return State.DISABLED, None
        if self._repo is None:
            return State.STARTING, None
        if self._snapshot_error is not None:
            return State.ERROR, self._snapshot_error
        if self._push_error is not None:
            state = _FAILURE_STATES.get(self._push_error.kind, State.ERROR)
            return state, self._push_error
        if self._changes:
            return State.PENDING, None
        if self._heads.head is not None and self._heads.head != self._heads.remote_head:
            return State.UNPUSHED, None
        return State.SYNCED, None

    def _publish(self) -> None:
        """Bring the status up to date and emit an event if anything a user sees changed."""
        previous = self.status.to_json()
        state, error = self._derive_state()
        status = self.status
        status.state = state
        status.error = None if error is None else {"kind": error.kind, "message": error.message}
        status.head = self._heads.head
        status.remote_head = self._heads.remote_head
        status.unpushed_commits = self._heads.unpushed
        current = self.status_json()
        if current == previous:
            return
        now = time.monotonic()
        event = dict(current)
        event["previous_state"] = previous["state"]
        event["duration_ms"] = 0
        if previous["state"] != current["state"]:
            event["duration_ms"] = int((now - self._state_since) * 1000)
            self._state_since = now
            log.debug("gitsync: %s -> %s", previous["state"], current["state"])
        try:
            self._emit(event)
        except Exception:
            log.exception("gitsync: could not emit a status event")
