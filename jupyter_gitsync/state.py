"""The closed set of engine states, the status that the API and events expose, and the one
tracker through which every state change and every error goes (in the style of syncthing's
`setState` / `setError`): it derives the state from a few facts with a pure function, and emits
one event per visible change, with the previous state and how long it lasted."""

from __future__ import annotations

import contextlib
import enum
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import (
    AuthRequired,
    GitSyncError,
    LoginUnknown,
    PermissionDenied,
    PushRejected,
    TokenMissing,
)

log = logging.getLogger(__name__)


class State(str, enum.Enum):
    """Where the sync engine is. Every value is documented in the README's status table."""

    DISABLED = "disabled"  # sync is switched off or has nothing to sync to
    STARTING = "starting"  # opening the repository and scanning the workspace
    RESTORING = "restoring"  # bringing the workspace up to the remote's snapshot (see progress)
    PENDING = "pending"  # changes seen; waiting for the quiet period before a snapshot
    SNAPSHOTTING = "snapshotting"  # writing a snapshot commit to the sync branch
    UNPUSHED = "unpushed"  # snapshots are saved locally and wait for the next push slot
    PUSHING = "pushing"  # sending snapshots to the remote
    SYNCED = "synced"  # every snapshot is on the remote
    OFFLINE = "offline"  # the remote is unreachable; pushes are retried with back-off
    AUTH_REQUIRED = "auth-required"  # no token, or the remote refused it; snapshots continue
    CONFLICT = "conflict"  # the remote branch moved on elsewhere; snapshots stay local
    ERROR = "error"  # settings or the workspace need attention; see `error`
    STOPPING = "stopping"  # the server is shutting down; flushing the last changes


class Watching(str, enum.Enum):
    """How the engine learns of changes in the workspace."""

    OFF = "off"  # not at all yet (starting), or watching is switched off: rescans only
    EVENTS = "events"  # inotify events, within the commit delay
    POLLING = "polling"  # the kernel refused inotify: scans every poll interval (see message)


MAX_LISTED_PATHS = 100


@dataclass
class Status:
    """What the engine says about itself: served by GET /gitsync/status and sent with events."""

    state: State = State.STARTING
    branch: str = ""
    remote_url: str | None = None
    head: str | None = None
    remote_head: str | None = None
    unpushed_commits: int = 0
    pending_paths: list[str] = field(default_factory=list)
    pending_count: int = 0
    last_synced_at: str | None = None
    skipped: list[dict[str, str]] = field(default_factory=list)
    error: dict[str, str] | None = None
    progress: dict[str, Any] | None = None
    notice: dict[str, Any] | None = None
    rescue_branches: list[dict[str, Any]] = field(default_factory=list)  # newest first
    rescue_message: str | None = None  # set when more are kept than expected
    watching: Watching = Watching.OFF
    watching_message: str | None = None  # why polling, in plain words

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; path lists are capped so a huge change cannot bloat answers."""
        data = asdict(self)
        data["state"] = self.state.value
        data["watching"] = self.watching.value
        data["pending_paths"] = self.pending_paths[:MAX_LISTED_PATHS]
        data["skipped"] = self.skipped[:MAX_LISTED_PATHS]
        return data


class Phase(str, enum.Enum):
    """Where the engine is in its life; the state says what it is doing within it."""

    STARTING = "starting"
    RUNNING = "running"
    DISABLED = "disabled"
    FAILED = "failed"  # could not start; `fatal` says why
    STOPPING = "stopping"


# How a failure to reach or update the remote shows.
_REMOTE_FAILURE_STATES = {
    AuthRequired.kind: State.AUTH_REQUIRED,
    TokenMissing.kind: State.AUTH_REQUIRED,  # nobody signed in yet
    LoginUnknown.kind: State.AUTH_REQUIRED,  # signing in names the branch
    PermissionDenied.kind: State.AUTH_REQUIRED,  # the user must act: get access, or fork
    PushRejected.kind: State.CONFLICT,
    "network": State.OFFLINE,
}


@dataclass
class Facts:
    """Everything the state is derived from; the tracker owns the one copy."""

    phase: Phase = Phase.STARTING
    fatal: GitSyncError | None = None
    activities: list[State] = field(default_factory=list)  # innermost last
    local_error: GitSyncError | None = None  # the last snapshot failed
    remote_error: GitSyncError | None = None  # the last restore or push failed
    pending: bool = False  # changes seen, not yet snapshotted
    unpushed: bool = False  # snapshots the remote does not have yet
    gate_open: bool = False  # the remote's snapshot of this branch is taken in


def derive(facts: Facts) -> tuple[State, GitSyncError | None]:
    """The state users see, and the error that goes with it."""
    if facts.phase is Phase.FAILED:
        return State.ERROR, facts.fatal
    if facts.phase is Phase.DISABLED:
        return State.DISABLED, None
    if facts.phase is Phase.STOPPING:
        return State.STOPPING, None
    if facts.phase is Phase.STARTING:
        return State.STARTING, None
    if facts.activities:
        return facts.activities[-1], facts.remote_error or facts.local_error
    if facts.local_error is not None:
        return State.ERROR, facts.local_error
    if facts.remote_error is not None:
        return _REMOTE_FAILURE_STATES.get(facts.remote_error.kind, State.ERROR), facts.remote_error
    if facts.pending:
        return State.PENDING, None
    if not facts.gate_open:
        return State.RESTORING, None  # about to take in the remote's snapshot
    if facts.unpushed:
        return State.UNPUSHED, None
    return State.SYNCED, None


class StateTracker:
    """The one owner of `Status`: changes go through its setters, each of which publishes."""

    def __init__(
        self,
        emit: Callable[[dict[str, Any]], None],
        pending: Callable[[int], tuple[list[str], int]],
        branch: str,
    ) -> None:
        self._emit = emit
        self._pending = pending  # (up to N pending paths, how many there are)
        self.facts = Facts()
        self.status = Status(state=State.STARTING, branch=branch)
        self._since = time.monotonic()

    # -- setters: each is one change, published at once ---------------------------------------

    def set_phase(self, phase: Phase, fatal: GitSyncError | None = None) -> None:
        self.facts.phase, self.facts.fatal = phase, fatal
        self.publish()

    def set_error(self, concern: str, error: GitSyncError | None) -> None:
        """`concern` is "local" (snapshots) or "remote" (restore, push); None clears it."""
        if concern == "local":
            self.facts.local_error = error
        else:
            self.facts.remote_error = error
        self.publish()

    @contextlib.contextmanager
    def doing(self, activity: State) -> Iterator[None]:
        """Show `activity` while the block runs (activities nest: the innermost shows)."""
        self.facts.activities.append(activity)
        self.publish()
        try:
            yield
        finally:
            self.facts.activities.remove(activity)
            if activity is State.RESTORING:
                self.status.progress = None
            self.publish()

    def set_progress(self, progress: dict[str, Any]) -> None:
        if State.RESTORING in self.facts.activities:
            self.status.progress = progress
            self.publish()

    def set_target(self, branch: str, remote_url: str | None, gate_open: bool) -> None:
        self.status.branch, self.status.remote_url = branch, remote_url
        self.facts.gate_open = gate_open
        self.publish()

    def set_heads(
        self, head: str | None, remote_head: str | None, unpushed: int, waiting: bool
    ) -> None:
        """Where the sync branch is; `waiting`: anything at all (rescue branches too) is
        still to push."""
        self.status.head, self.status.remote_head = head, remote_head
        self.status.unpushed_commits = unpushed
        self.facts.unpushed = waiting
        self.publish()

    def set_skipped(self, skipped: dict[str, str]) -> None:
        self.status.skipped = [{"path": p, "reason": r} for p, r in sorted(skipped.items())]
        self.publish()

    def set_rescues(self, branches: list[dict[str, Any]], message: str | None) -> None:
        self.status.rescue_branches, self.status.rescue_message = branches, message
        self.publish()

    def set_notice(self, notice: dict[str, Any] | None) -> None:
        self.status.notice = notice
        self.publish()

    def set_watching(self, watching: Watching, message: str | None = None) -> None:
        self.status.watching, self.status.watching_message = watching, message
        self.publish()

    def set_synced_at(self, when: str) -> None:
        self.status.last_synced_at = when
        self.publish()

    # -- publishing -----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The status as the API serves it, with the pending paths as of now."""
        self.status.pending_paths, self.status.pending_count = self._pending(MAX_LISTED_PATHS)
        self.facts.pending = self.status.pending_count > 0
        state, error = derive(self.facts)
        self.status.state = state
        self.status.error = (
            None if error is None else {"kind": error.kind, "message": error.message}
        )
        return self.status.to_json()

    def publish(self) -> None:
        """Emit an event if anything a user sees changed since the last one."""
        previous = self.status.to_json()
        current = self.snapshot()
        if current == previous:
            return
        now = time.monotonic()
        event = dict(current)
        event["previous_state"] = previous["state"]
        event["duration_ms"] = 0
        if previous["state"] != current["state"]:
            event["duration_ms"] = int((now - self._since) * 1000)
            self._since = now
            log.debug("gitsync: %s -> %s", previous["state"], current["state"])
        try:
            self._emit(event)
        except Exception:
            log.exception("gitsync: could not emit a status event")
