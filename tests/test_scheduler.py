"""The scheduler's policy without git: back-off, the token bucket, the restore gate."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from jupyter_gitsync.scheduler import Backoff, Facts, Job, TokenBucket, local_due, next_due

NOW = 1000.0


def facts(**changes: object) -> Facts:
    """An idle engine whose gate is open and which has nothing to do, changed by `changes`."""
    base = Facts(
        now=NOW,
        changes_pending=False,
        last_change=0.0,
        full_scan_wanted=False,
        last_full_scan=NOW,
        commit_delay_seconds=2.0,
        rescan_interval_seconds=600.0,
        has_remote=True,
        gate_open=True,
        restore_due=-math.inf,
        unpushed=False,
        push_due=-math.inf,
        bucket_at=NOW,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


# -- back-off ---------------------------------------------------------------------------------


def test_backoff_doubles_up_to_its_cap_and_resets_on_success() -> None:
    backoff = Backoff(initial_seconds=2.0, max_seconds=10.0)
    assert backoff.due(epoch=0) == -math.inf  # no failure: due at once
    waits = []
    for attempt in range(5):
        backoff.failed(NOW + attempt)
        due = backoff.due(epoch=0)
        assert due is not None
        waits.append(due - (NOW + attempt))
    assert waits == [2.0, 4.0, 8.0, 10.0, 10.0]
    backoff.succeeded()
    assert backoff.due(epoch=0) == -math.inf


def test_a_refused_token_is_retried_with_new_credentials_and_rechecked_every_interval() -> None:
    """A 401/403 may be a revoked token, or a proxy or a rate limit: new credentials are
    tried at once, and the same ones are checked again every recheck interval, which does not
    grow (each re-check is when the hub's auth_state is read again for a new login)."""
    backoff = Backoff(initial_seconds=2.0, max_seconds=300.0, recheck_seconds=60.0)
    backoff.failed(NOW, needs_credentials_of_epoch=3)
    assert backoff.due(epoch=3) == NOW + 60.0
    assert backoff.due(epoch=4) == -math.inf  # a new token: at once
    for _ in range(10):
        backoff.failed(NOW, needs_credentials_of_epoch=3)
    assert backoff.due(epoch=3) == NOW + 60.0
    backoff.failed(NOW)  # then a failure that is not about the token: the doubling count
    assert backoff.due(epoch=3) == NOW + 300.0


def test_retry_now_makes_a_failed_attempt_due_at_once_and_keeps_the_count() -> None:
    backoff = Backoff(initial_seconds=2.0, max_seconds=60.0)
    for _ in range(3):
        backoff.failed(NOW)
    backoff.retry_now()
    assert backoff.due(epoch=0) == -math.inf
    backoff.failed(NOW)
    assert backoff.due(epoch=0) == NOW + 16.0  # the fourth failure in a row


# -- the token bucket -------------------------------------------------------------------------


def test_a_burst_goes_out_at_once_then_the_refill_rate_holds() -> None:
    bucket = TokenBucket(capacity=3, refill_seconds=10.0)
    now = NOW
    for _ in range(3):
        assert bucket.available_at(now) == now
        bucket.take(now)
        now += 0.5
    assert bucket.available_at(now) == pytest.approx(NOW + 10.0)  # one token back per 10 s
    now = NOW + 10.0
    bucket.take(now)
    assert bucket.available_at(now) == pytest.approx(now + 10.0)


def test_the_bucket_refills_to_its_capacity_only() -> None:
    bucket = TokenBucket(capacity=2, refill_seconds=10.0)
    bucket.take(NOW)
    bucket.take(NOW)
    later = NOW + 3600.0  # an hour idle refills two tokens, not 360
    bucket.take(later)
    bucket.take(later)
    assert bucket.available_at(later) > later


def test_an_hour_of_saves_stays_inside_githubs_limits() -> None:
    """GitHub: at most 80 content-creating requests a minute and 500 an hour."""
    bucket = TokenBucket(capacity=5, refill_seconds=10.0)
    now, pushes, per_minute = NOW, [], 0
    while now < NOW + 3600:
        at = bucket.available_at(now)
        now = max(now, at)
        bucket.take(now)
        pushes.append(now)
        now += 0.1  # a save every 100 ms, all hour long
    per_minute = max(sum(1 for t in pushes if s <= t < s + 60) for s in pushes)
    assert len(pushes) <= 500 and per_minute <= 80


def test_no_interval_means_no_wait() -> None:
    bucket = TokenBucket(capacity=1, refill_seconds=0.0)
    for _ in range(10):
        bucket.take(NOW)
        assert bucket.available_at(NOW) == NOW


# -- what is due next -------------------------------------------------------------------------


def test_a_snapshot_waits_for_the_quiet_period() -> None:
    f = facts(changes_pending=True, last_change=NOW - 0.5)
    assert next_due(f) == (Job.SNAPSHOT, NOW + 1.5)
    assert next_due(replace(f, now=NOW + 1.5)) == (Job.SNAPSHOT, NOW + 1.5)


def test_a_full_scan_asked_for_comes_first_and_at_once() -> None:
    f = facts(full_scan_wanted=True, unpushed=True)
    assert next_due(f) == (Job.RESCAN, NOW)


def test_the_safety_rescan_is_due_after_its_interval() -> None:
    assert next_due(facts(last_full_scan=NOW - 700.0)) == (Job.RESCAN, NOW - 100.0)
    assert local_due(facts()) == (Job.RESCAN, NOW + 600.0)


def test_a_poll_is_due_only_while_polling_and_before_a_later_snapshot() -> None:
    assert local_due(facts())[0] is Job.RESCAN  # not polling: poll_at is inf
    assert local_due(facts(poll_at=NOW + 5)) == (Job.POLL, NOW + 5)
    pending = facts(changes_pending=True, last_change=NOW, poll_at=NOW + 5)
    assert local_due(pending) == (Job.SNAPSHOT, NOW + 2)  # what a poll found goes first
    assert local_due(replace(pending, poll_at=NOW + 1)) == (Job.POLL, NOW + 1)
    assert local_due(facts(full_scan_wanted=True, poll_at=NOW - 1)) == (Job.RESCAN, NOW)


def test_nothing_is_pushed_through_a_closed_gate() -> None:
    """Restore is a gate: until it opens, the restore is due and a push never is."""
    f = facts(gate_open=False, unpushed=True, restore_due=NOW + 4.0)
    assert next_due(f) == (Job.RESTORE, NOW + 4.0)
    later = replace(f, restore_due=NOW + 30.0)  # a refused token: re-checked after a while
    assert next_due(later) == (Job.RESTORE, NOW + 30.0)
    assert next_due(replace(f, gate_open=True)) == (Job.PUSH, NOW)


def test_a_push_waits_for_the_later_of_back_off_and_bucket() -> None:
    f = facts(unpushed=True, push_due=NOW + 8.0, bucket_at=NOW + 3.0)
    assert next_due(f) == (Job.PUSH, NOW + 8.0)
    assert next_due(replace(f, push_due=NOW + 1.0)) == (Job.PUSH, NOW + 3.0)
    assert next_due(replace(f, push_due=NOW + 700.0)) == (Job.RESCAN, NOW + 600.0)


def test_a_snapshot_due_with_a_push_runs_first() -> None:
    f = facts(unpushed=True, changes_pending=True, last_change=NOW - 5.0)
    assert next_due(f) == (Job.SNAPSHOT, NOW - 3.0)


def test_without_a_remote_only_local_work_is_due() -> None:
    f = facts(has_remote=False, gate_open=False, unpushed=True)
    assert next_due(f) == (Job.RESCAN, NOW + 600.0)


def test_jitter_spreads_retries_and_a_rate_limit_sets_a_floor() -> None:
    """Sessions that failed together (the remote down for all) do not retry at one moment:
    each wait is cut by a random part of up to `jitter`; a rate limit (429) is never retried
    sooner than the remote asked, however early the doubling would."""
    draws = iter([0.0, 1.0, 0.5])
    backoff = Backoff(
        initial_seconds=2.0, max_seconds=300.0, jitter=0.5, random=lambda: next(draws)
    )
    backoff.failed(NOW)
    assert backoff.due(epoch=0) == NOW + 2.0  # drew 0: the full wait
    backoff.failed(NOW)
    assert backoff.due(epoch=0) == NOW + 2.0  # 4 s, drew 1: half of it
    backoff.failed(NOW, at_least_seconds=60.0)
    assert backoff.due(epoch=0) == NOW + 60.0  # 8 s x 0.75 = 6 s, but the remote asked 60
    spread = [Backoff(2.0, 300.0, jitter=0.5) for _ in range(50)]
    for one in spread:
        for _ in range(5):
            one.failed(NOW)
    waits = {one.due(epoch=0) - NOW for one in spread}
    assert all(16.0 <= w <= 32.0 for w in waits) and len(waits) > 1
