"""When the next snapshot, restore, push or rescan is due: pure functions of timers and facts.

Nothing here does any work or reads a clock; the engine passes `now` in. That keeps the policy
in one place and testable without git (tests/test_scheduler.py):

- a snapshot is due once the workspace has been quiet for the commit delay (at once when a full
  scan was asked for), and a safety rescan every `rescan_interval_seconds`; where the kernel
  refused inotify, a poll for changes every `poll_interval_seconds` stands in for its events;
- **restore is a gate**: until the workspace has taken in the remote's snapshot of the current
  (remote, branch), nothing is pushed there; the restore is retried with back-off, and at once
  when a new token may be there;
- pushes spend a token bucket: a burst of saves goes out at once, and over time no more than
  one push per refill interval leaves (GitHub's limit on content-creating requests is 80 a
  minute and 500 an hour; the default, 5 at once and one per 10 s, stays below both);
- a failure is retried with doubling back-off up to a cap, each wait shortened by a random part
  (jitter: sessions that failed together do not retry together), never shorter than a rate
  limit asks; a refused token or a missing
  permission is retried at once when the credentials change, and otherwise re-checked every
  `recheck_seconds`, without doubling: a 401/403 can also come from a proxy or a rate limit, and
  the state must clear by itself once the remote accepts the token again; and each re-check is
  when providers that fetch tokens look again (a new JupyterHub login is noticed there), so the
  wait must not grow while the user waits. One request a minute with a refused token is far
  below any limit (GitHub asks clients hit by a secondary rate limit to wait at least a minute).
"""

from __future__ import annotations

import enum
import math
import random as _random
from collections.abc import Callable
from dataclasses import dataclass, field


class Job(str, enum.Enum):
    """Work the engine's loop does by itself (API requests are queued apart)."""

    SNAPSHOT = "snapshot"
    RESCAN = "rescan"
    POLL = "poll"  # look for changes the watcher cannot see (inotify refused)
    RESTORE = "restore"
    PUSH = "push"


@dataclass
class Backoff:
    """Doubling waits after consecutive failures, capped. After a refused token
    (`failed_epoch` set) new credentials make it due at once, and otherwise it is due every
    `recheck_seconds`."""

    initial_seconds: float
    max_seconds: float
    recheck_seconds: float = 60.0
    # Each wait is shortened by a random part of up to this fraction, so that many sessions
    # that failed together (a remote down for everyone) do not all retry at the same moment.
    jitter: float = 0.0
    random: Callable[[], float] = field(default=_random.random, repr=False)
    failures: int = 0
    last_attempt: float = -math.inf
    failed_epoch: int | None = None  # credentials epoch of a failure that needs new ones
    at_least_seconds: float = 0.0  # the remote asked for this long (rate limits)
    spread: float = 1.0  # this failure's share of the doubled wait, after jitter

    def failed(
        self,
        now: float,
        needs_credentials_of_epoch: int | None = None,
        at_least_seconds: float = 0.0,
    ) -> None:
        self.failures += 1
        self.last_attempt = now
        self.failed_epoch = needs_credentials_of_epoch
        self.at_least_seconds = at_least_seconds
        self.spread = 1.0 - self.jitter * self.random()

    def succeeded(self) -> None:
        self.failures = 0
        self.failed_epoch = None

    def retry_now(self) -> None:
        """Something changed that may make the next attempt succeed (a new token, a new
        remote): try again at once, keeping the count for the back-off after that."""
        self.last_attempt = -math.inf
        self.failed_epoch = None

    def due(self, epoch: int) -> float:
        """When to try again: -inf (now) without failures, or when the credentials changed
        since they were refused."""
        if self.failures == 0:
            return -math.inf
        if self.failed_epoch is not None:
            if epoch != self.failed_epoch:
                return -math.inf
            return self.last_attempt + self.recheck_seconds
        first = self.initial_seconds
        wait = min(max(self.max_seconds, first), first * 2.0 ** (self.failures - 1))
        return self.last_attempt + max(wait * self.spread, self.at_least_seconds)


@dataclass
class TokenBucket:
    """`capacity` pushes at once, refilled at one per `refill_seconds`."""

    capacity: float
    refill_seconds: float
    tokens: float = math.inf  # full until first used
    stamp: float = 0.0

    def _level(self, now: float) -> float:
        if self.refill_seconds <= 0:
            return self.capacity
        return min(self.capacity, self.tokens + (now - self.stamp) / self.refill_seconds)

    def available_at(self, now: float) -> float:
        """The earliest time a push may start."""
        level = self._level(now)
        if level >= 1:
            return now
        return now + (1 - level) * self.refill_seconds

    def take(self, now: float) -> None:
        """A push that sent something spends one token."""
        self.tokens = max(0.0, self._level(now) - 1)
        self.stamp = now


@dataclass(frozen=True)
class Facts:
    """What the scheduler needs to know, read from the engine at one moment."""

    now: float
    changes_pending: bool  # the watcher reported paths (or asked for a full scan)
    last_change: float
    full_scan_wanted: bool
    last_full_scan: float
    commit_delay_seconds: float
    rescan_interval_seconds: float
    has_remote: bool
    gate_open: bool  # the remote's snapshot of the current (remote, branch) is taken in
    restore_due: float  # from the restore back-off
    unpushed: bool  # snapshots or rescue branches wait for the remote
    push_due: float  # from the push back-off
    bucket_at: float  # when the token bucket allows the next push
    poll_at: float = math.inf  # the next poll for changes (inf: the watcher sees them all)


def next_due(facts: Facts) -> tuple[Job, float] | None:
    """The next job and when it is due (`<= now`: now); None when only an event can wake us.
    A snapshot that is due goes first, so that the push after it carries the latest save."""
    local = local_due(facts)
    network = network_due(facts)
    if network is None or local[1] <= max(facts.now, network[1]):
        return local
    return network


def local_due(f: Facts) -> tuple[Job, float]:
    """The next snapshot, rescan or poll: what the engine keeps doing while it waits for the
    network."""
    if f.full_scan_wanted:
        return Job.RESCAN, f.now
    job, at = Job.RESCAN, f.last_full_scan + f.rescan_interval_seconds
    if f.changes_pending:
        snapshot_at = f.last_change + f.commit_delay_seconds
        if snapshot_at <= at:
            job, at = Job.SNAPSHOT, snapshot_at
    if f.poll_at < at:
        job, at = Job.POLL, f.poll_at
    return job, at


def network_due(f: Facts) -> tuple[Job, float] | None:
    """The next restore or push, or None."""
    if not f.has_remote:
        return None
    if not f.gate_open:
        return Job.RESTORE, f.restore_due
    if not f.unpushed:
        return None
    return Job.PUSH, max(f.push_due, f.bucket_at)
