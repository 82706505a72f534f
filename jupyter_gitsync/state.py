"""The closed set of engine states and the status snapshot that the API and events expose."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


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

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; path lists are capped so a huge change cannot bloat answers."""
        data = asdict(self)
        data["state"] = self.state.value
        data["pending_paths"] = self.pending_paths[:MAX_LISTED_PATHS]
        data["skipped"] = self.skipped[:MAX_LISTED_PATHS]
        return data
