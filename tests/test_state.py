"""The state tracker: the state derived from facts, and one event per visible change."""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_gitsync.errors import (
    AuthRequired,
    GitSyncError,
    PermissionDenied,
    PushRejected,
    RemoteUnavailable,
    WorkspaceError,
)
from jupyter_gitsync.state import Facts, Phase, State, StateTracker, derive


def running(**changes: Any) -> Facts:
    facts = Facts(phase=Phase.RUNNING, gate_open=True)
    for name, value in changes.items():
        setattr(facts, name, value)
    return facts


@pytest.mark.parametrize(
    ("error", "state"),
    [
        (RemoteUnavailable("down"), State.OFFLINE),
        (AuthRequired("refused"), State.AUTH_REQUIRED),
        (PermissionDenied("fork it"), State.AUTH_REQUIRED),
        (PushRejected("protected"), State.CONFLICT),
        (GitSyncError("odd"), State.ERROR),
    ],
)
def test_a_remote_failure_shows_as_its_state_with_its_error(
    error: GitSyncError, state: State
) -> None:
    assert derive(running(remote_error=error, unpushed=True)) == (state, error)


def test_what_the_engine_is_doing_wins_and_keeps_the_error_visible() -> None:
    error = RemoteUnavailable("down")
    facts = running(remote_error=error, activities=[State.PUSHING, State.SNAPSHOTTING])
    assert derive(facts) == (State.SNAPSHOTTING, error)  # the innermost activity


def test_a_failed_snapshot_is_an_error_before_any_remote_trouble() -> None:
    local = WorkspaceError("disk full")
    facts = running(local_error=local, remote_error=RemoteUnavailable("down"))
    assert derive(facts) == (State.ERROR, local)


def test_the_quiet_states() -> None:
    assert derive(running()) == (State.SYNCED, None)
    assert derive(running(unpushed=True)) == (State.UNPUSHED, None)
    assert derive(running(pending=True, unpushed=True)) == (State.PENDING, None)
    assert derive(running(gate_open=False, unpushed=True)) == (State.RESTORING, None)


def test_the_phases() -> None:
    fatal = GitSyncError("no remote")
    assert derive(Facts(phase=Phase.FAILED, fatal=fatal)) == (State.ERROR, fatal)
    assert derive(Facts(phase=Phase.DISABLED)) == (State.DISABLED, None)
    assert derive(Facts()) == (State.STARTING, None)
    assert derive(running(phase=Phase.STOPPING, unpushed=True)) == (State.STOPPING, None)


def test_every_change_goes_out_once_with_the_previous_state() -> None:
    events: list[dict[str, Any]] = []
    pending: list[str] = []
    tracker = StateTracker(events.append, lambda n: (pending[:n], len(pending)), "gitsync/ada")
    tracker.set_phase(Phase.RUNNING)
    tracker.set_target("gitsync/ada", "https://example.org/r.git", gate_open=True)
    assert [e["state"] for e in events] == ["restoring", "synced"]
    tracker.publish()
    tracker.set_heads(None, None, 0, waiting=False)
    assert len(events) == 2  # nothing a user sees changed: no event
    with tracker.doing(State.PUSHING):
        tracker.set_error("remote", RemoteUnavailable("The remote could not be reached."))
    assert [e["state"] for e in events][-2:] == ["pushing", "offline"]
    assert events[-1]["previous_state"] == "pushing"
    assert events[-1]["error"] == {"kind": "network", "message": "The remote could not be reached."}
    assert all(e["duration_ms"] >= 0 for e in events)
    pending.append("a.txt")
    tracker.set_error("remote", None)
    assert events[-1]["state"] == "pending" and events[-1]["pending_paths"] == ["a.txt"]


def test_an_emitter_that_fails_does_not_stop_the_tracker() -> None:
    def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("the event bus is gone")

    tracker = StateTracker(broken, lambda n: ([], 0), "b")
    tracker.set_phase(Phase.RUNNING)
    assert tracker.snapshot()["state"] == "restoring"
