"""Fault tests for "Never lose work": real parts only (the git smart-HTTP server of
tests/gitserver.py, real `jupyter server` processes, real engines, real inotify).

How often each scenario is repeated comes from GITSYNC_FAULT_TRIALS (default 2, so that `make
test` stays short; `make test-slow` runs 20). Every test reports what it did: trials run, saves
made and saves found on the remote (a save is found when its content's blob, as computed by `git
hash-object`, is in `git rev-list --all --objects` of the bare remote). The numbers are printed
(run pytest with -s to see them as they come), written as JSON lines to
test-artifacts/faults.jsonl (and the whole run to test-artifacts/faults.json), recorded with
`record_property`, and listed again in a "gitsync fault tests" block at the end of the run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import functools
import hashlib
import json
import logging
import os
import random
import secrets
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_gitsync.auth import Credentials
from jupyter_gitsync.engine import EngineConfig, SyncEngine
from jupyter_gitsync.repository import SyncRepository
from jupyter_gitsync.snapshots import Snapshotter
from jupyter_gitsync.state import State
from tests.gitserver import GitHTTPServer
from tests.helpers import (
    async_wait_until,
    files,
    git,
    ref_or_none,
    user_git_state,
    wait_until,
)
from tests.test_server_process import Server, jupyter_server

TRIALS = max(1, int(os.environ.get("GITSYNC_FAULT_TRIALS", "2") or "2"))
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
RUN_ID = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + f"-{os.getpid()}"
SERVER_BRANCH = "b"
ENGINE_BRANCH = "gitsync/faults"
SHARED_BRANCH = "gitsync/shared"


def _timeout(seconds: float) -> Callable[[Any], Any]:
    """pytest-timeout's marker when it is installed (pyproject's 300 s is too short for
    GITSYNC_FAULT_TRIALS=20); a no-op otherwise."""
    try:
        import pytest_timeout  # noqa: F401
    except ImportError:
        return lambda test: test
    return pytest.mark.timeout(seconds)


# -- the report -----------------------------------------------------------------------------


@dataclass
class FaultResult:
    test: str
    trials: int
    saves_made: int
    saves_found: int
    duration_s: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return self.saves_made - self.saves_found

    def line(self) -> str:
        details = " ".join(f"{k}={v}" for k, v in self.extra.items())
        return (
            f"{self.test}: trials={self.trials} saves_made={self.saves_made}"
            f" saves_found={self.saves_found} lost={self.lost} ({self.duration_s:.1f} s)"
            + (f" {details}" if details else "")
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "run": RUN_ID,
            "test": self.test,
            "trials": self.trials,
            "saves_made": self.saves_made,
            "saves_found": self.saves_found,
            "lost": self.lost,
            "duration_s": round(self.duration_s, 2),
            **self.extra,
        }


class _Summary:
    """A plugin registered from this module (no conftest needed): lists every result at the
    end of the run, whether or not output is captured."""

    name = "gitsync-faults-summary"

    def __init__(self) -> None:
        self.results: list[FaultResult] = []

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.results:
            return
        terminalreporter.section("gitsync fault tests")
        terminalreporter.write_line(f"GITSYNC_FAULT_TRIALS={TRIALS} run={RUN_ID}")
        for result in self.results:
            terminalreporter.write_line(result.line())
        terminalreporter.write_line(f"(also in {ARTIFACTS / 'faults.json'})")


@pytest.fixture(scope="module")
def _summary(request: pytest.FixtureRequest) -> Iterator[_Summary]:
    manager = request.config.pluginmanager
    summary = manager.get_plugin(_Summary.name)
    if summary is None:
        summary = _Summary()
        manager.register(summary, _Summary.name)
    yield summary
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "faults.json").write_text(
        json.dumps(
            {"run": RUN_ID, "trials": TRIALS, "results": [r.as_json() for r in summary.results]},
            indent=2,
        )
        + "\n"
    )


class Reporter:
    """Counts for one test, reported once whatever happens (a failing test still says how far
    it got)."""

    def __init__(self, name: str, trials: int) -> None:
        self.name = name
        self.trials = trials
        self.trials_run = 0
        self.saves_made = 0
        self.saves_found = 0
        self.extra: dict[str, Any] = {}
        self.started = time.monotonic()


@pytest.fixture
def report(
    request: pytest.FixtureRequest, record_property: Callable[[str, Any], None], _summary: _Summary
) -> Iterator[Reporter]:
    reporter = Reporter(request.node.name, TRIALS)
    yield reporter
    result = FaultResult(
        reporter.name,
        reporter.trials_run,
        reporter.saves_made,
        reporter.saves_found,
        time.monotonic() - reporter.started,
        reporter.extra,
    )
    _summary.results.append(result)
    for key, value in result.as_json().items():
        record_property(key, value)
    ARTIFACTS.mkdir(exist_ok=True)
    with (ARTIFACTS / "faults.jsonl").open("a") as out:
        out.write(json.dumps(result.as_json()) + "\n")
    print(f"\n[gitsync-faults] {result.line()}")


# -- reading the remote ------------------------------------------------------------------------


def blob_id(content: bytes) -> str:
    """The blob id git gives `content`."""
    out = subprocess.run(
        ["git", "hash-object", "--stdin"], input=content, capture_output=True, check=True
    )
    return out.stdout.decode().strip()


def blob_ids(contents: list[bytes]) -> list[str]:
    """Many blob ids at once: SHA-1 of git's blob header and content, checked once against
    `git hash-object` (so a SHA-256 git would fail loudly, not silently)."""
    ids = [hashlib.sha1(b"blob %d\0" % len(c) + c).hexdigest() for c in contents]
    if contents:
        assert ids[0] == blob_id(contents[0])
    return ids


def remote_objects(bare: Path) -> set[str]:
    """Every object reachable from any ref of the bare remote (sync and rescue branches)."""
    out = git(bare, "rev-list", "--all", "--objects")
    return {line.split(" ", 1)[0] for line in out.splitlines() if line}


def tree_blobs(repo: Path, ref: str) -> dict[str, str]:
    """path -> blob id of every file in `ref`'s tree."""
    out = subprocess.run(
        ["git", "-C", str(repo), "ls-tree", "-r", "-z", "--full-tree", ref],
        capture_output=True,
        check=True,
    ).stdout.decode()
    blobs: dict[str, str] = {}
    for entry in filter(None, out.split("\0")):
        meta, path = entry.split("\t", 1)
        blobs[path] = meta.split()[2]
    return blobs


def on_rescue_branch(bare: Path, blob: str) -> bool:
    """Whether `blob` is in the tree of some rescue branch's tip."""
    return any(blob in tree_blobs(bare, ref).values() for ref in rescue_branches(bare))


def rescue_branches(bare: Path) -> list[str]:
    refs = git(bare, "for-each-ref", "--format=%(refname)", "refs/heads/").split()
    return [ref for ref in refs if "-rescue-" in ref]


def all_object_bytes(repo: Path) -> bytes:
    """The content of every object stored in `repo` (loose or packed, reachable or not)."""
    return subprocess.run(
        ["git", "-C", str(repo), "cat-file", "--batch-all-objects", "--batch"],
        capture_output=True,
        check=True,
    ).stdout


def fsck(repo: Path) -> str:
    """`git fsck --full` output; asserts it found no error (dangling objects are fine)."""
    out = subprocess.run(
        ["git", "-C", str(repo), "fsck", "--full", "--no-progress"],
        capture_output=True,
        text=True,
    )
    text = out.stdout + out.stderr
    bad = [
        line
        for line in text.splitlines()
        if line.strip() and not line.startswith(("dangling ", "Checking ", "notice:"))
    ]
    assert out.returncode == 0 and not bad, f"git fsck {repo}:\n{text}"
    return text


def tree_size(path: Path) -> int:
    """Bytes of the files under `path` (apparent sizes)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def found_on_remote(bare: Path, contents: list[bytes]) -> int:
    objects = remote_objects(bare)
    return sum(1 for blob in blob_ids(contents) if blob in objects)


# -- engines in this process ------------------------------------------------------------------


class _Token:
    def __init__(self, value: str) -> None:
        self.value = value

    def token(self) -> str | None:
        return self.value


@pytest.fixture
def start_engine(
    jp_asyncio_loop: asyncio.AbstractEventLoop, remote_url: str, token: str
) -> Iterator[Callable[..., Any]]:
    """Start a SyncEngine on a workspace against the test remote; stopped at teardown."""
    running: list[SyncEngine] = []

    async def start(workspace: Path, **overrides: Any) -> tuple[SyncEngine, list[dict[str, Any]]]:
        settings: dict[str, Any] = {
            "workspace": workspace,
            "branch": ENGINE_BRANCH,
            "remote_url": remote_url,
            "commit_delay_seconds": 0.3,
            "push_interval_seconds": 0.0,
            "retry_initial_seconds": 0.2,
            "retry_max_seconds": 1.0,
        }
        settings.update(overrides)
        events: list[dict[str, Any]] = []
        engine = SyncEngine(EngineConfig(**settings), Credentials([_Token(token)]), events.append)
        await engine.start()
        running.append(engine)
        return engine, events

    yield start
    for engine in running:
        if not engine._closing:
            jp_asyncio_loop.run_until_complete(engine.stop(10))


def engine_lock_free(workspace: Path) -> bool:
    """Whether no engine holds the workspace's engine lock (a flock, as repo.py takes it)."""
    with (workspace / ".git" / "gitsync" / "engine.lock").open("ab") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return True


def settled(engine: SyncEngine, bare: Path, branch: str = ENGINE_BRANCH) -> bool:
    """Synced, and what the engine believes is on the remote is what the remote has."""
    status = engine.status
    return (
        status.state == State.SYNCED
        and status.head is not None
        and status.head == status.remote_head == ref_or_none(bare, f"refs/heads/{branch}")
    )


# -- 1. SIGTERM right after a save ----------------------------------------------------------


def server_env(git_server: GitHTTPServer, remote: str, token: str, **extra: str) -> dict[str, str]:
    return {
        "GITSYNC_REMOTE_URL": git_server.repo_url(remote),
        "GITSYNC_BRANCH": SERVER_BRANCH,
        "GITSYNC_TOKEN": token,
        **extra,
    }


def save_notebook(server: Server, name: str, notebook: dict[str, Any]) -> None:
    server.request(
        "PUT", f"api/contents/{name}", {"type": "notebook", "format": "json", "content": notebook}
    )


def small_notebook(text: str) -> dict[str, Any]:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(f"print({text!r})"))
    return dict(json.loads(nbformat.writes(nb)))


@_timeout(120 + 40 * TRIALS)
def test_sigterm_right_after_a_save(
    workspace: Path,
    tmp_path: Path,
    git_server: GitHTTPServer,
    remote: str,
    token: str,
    report: Reporter,
) -> None:
    """A real server; save two files and a notebook through the contents API; SIGTERM 0.2 s
    later. Repeated on the same workspace, one server per trial: every save is on the remote
    and on the sync branch tip, and the user's git state never changes."""
    bare = git_server.repo_path(remote)
    env = server_env(git_server, remote, token, GITSYNC_COMMIT_DELAY="0.5")
    before = user_git_state(workspace, SERVER_BRANCH)
    saved: dict[tuple[int, str], bytes] = {}
    problems: list[str] = []
    try:
        for trial in range(TRIALS):
            run = tmp_path / f"run{trial}"
            run.mkdir()
            with jupyter_server(workspace, run, env) as server:
                wait_until(
                    lambda: server.status()["state"] == "synced", timeout=60, what="start-up"
                )
                stamp = f"trial {trial} {secrets.token_hex(6)}"
                server.save("last.txt", f"the last save, {stamp}")
                server.save(f"trial-{trial}.txt", f"only in {stamp}")
                save_notebook(server, "analysis.ipynb", small_notebook(stamp))
                for path in ("last.txt", f"trial-{trial}.txt", "analysis.ipynb"):
                    saved[(trial, path)] = (workspace / path).read_bytes()
                report.saves_made += 3
                time.sleep(0.2)  # the scenario: SIGTERM 0.2 s after the save
                server.process.send_signal(signal.SIGTERM)
                code = server.process.wait(timeout=60)
            log = server.log.read_text()
            if code != 0:
                problems.append(f"trial {trial}: exit code {code}")
            if token in log:
                problems.append(f"trial {trial}: the push token is in the server log")
            if "Traceback" in log:
                problems.append(f"trial {trial}: a traceback in the server log:\n{log}")
            tip = ref_or_none(bare, f"refs/heads/{SERVER_BRANCH}")
            tip_tree = tree_blobs(bare, tip) if tip else {}
            objects = remote_objects(bare)
            for (t, path), content in saved.items():
                if t != trial:
                    continue
                blob = blob_id(content)
                if blob in objects:
                    report.saves_found += 1
                else:
                    problems.append(f"trial {trial}: {path} ({content[:40]!r}) not on the remote")
                if tip_tree.get(path) != blob:
                    problems.append(f"trial {trial}: the sync branch tip does not hold {path}")
            if user_git_state(workspace, SERVER_BRANCH) != before:
                problems.append(f"trial {trial}: the user's HEAD, index or branches changed")
            report.trials_run += 1
    finally:
        report.extra["servers"] = report.trials_run
    assert not problems, "\n".join(problems)
    assert report.saves_found == report.saves_made


# -- 2. kill -9 while snapshots are being written, then restart -----------------------------


class DiskWriter(threading.Thread):
    """Keeps saving files straight to disk, as a kernel or editor does: in place or by atomic
    replace, new and existing files, with random pauses that are the interleaving under test."""

    def __init__(self, root: Path, paths: list[str], seed: int) -> None:
        super().__init__(daemon=True, name="disk-writer")
        self.root = root
        self.paths = paths
        self.random = random.Random(seed)
        self.halt = threading.Event()
        self.writes = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                path = self.root / self.random.choice(self.paths)
                path.parent.mkdir(parents=True, exist_ok=True)
                content = (
                    f"{path.name} write {self.writes} {secrets.token_hex(1 + self.writes % 9)}\n"
                )
                if self.random.random() < 0.5:
                    path.write_text(content)
                else:
                    tmp = path.with_name(f".~{path.name}.tmp")
                    tmp.write_text(content)
                    os.replace(tmp, path)
                self.writes += 1
                # bursts, and pauses longer than the 0.05 s quiet period: snapshots keep coming
                if self.random.random() < 0.5:
                    self.halt.wait(self.random.uniform(0, 0.01))
                else:
                    self.halt.wait(self.random.uniform(0.04, 0.12))
        except BaseException as exc:  # reported by the test
            self.error = exc


def kill_when_a_lock_appears(workspace: Path, server: Server, deadline: float) -> int:
    """SIGKILL the server the moment the sync index, the sync branch or its remote-tracking ref
    is locked (mid-snapshot or mid-push); 1 if that happened before the deadline."""
    gitdir = workspace / ".git"
    locks = [
        str(gitdir / "gitsync" / "index.lock"),
        str(gitdir / "refs" / "heads" / f"{SERVER_BRANCH}.lock"),
        str(gitdir / "refs" / "gitsync" / "remote" / f"{SERVER_BRANCH}.lock"),
    ]
    exists = os.path.exists
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if any(exists(lock) for lock in locks):
            server.process.send_signal(signal.SIGKILL)
            return 1
    return 0


def _lock_files(workspace: Path) -> list[str]:
    """Git lock files in the workspace's .git (engine.lock is the flock file, always there)."""
    gitdir = workspace / ".git"
    return sorted(
        str(p.relative_to(gitdir)) for p in gitdir.rglob("*.lock") if p.name != "engine.lock"
    )


@_timeout(150 + 60 * TRIALS)
def test_kill_9_during_commits_then_restart(
    workspace: Path,
    tmp_path: Path,
    git_server: GitHTTPServer,
    remote: str,
    token: str,
    report: Reporter,
) -> None:
    """A real server snapshotting every 0.05 s while a writer keeps saving; SIGKILL at a random
    moment (every other trial: the moment git holds a lock); restart on the same workspace.
    Everything on disk at the kill (and written after it) reaches the sync branch tip, both
    repositories pass `git fsck --full`, and the engine starts again despite the stale lock
    files the kill left."""
    bare = git_server.repo_path(remote)
    env = server_env(
        git_server, remote, token, GITSYNC_COMMIT_DELAY="0.05", GITSYNC_PUSH_INTERVAL="0"
    )
    rng = random.Random(secrets.randbits(32))
    paths = [f"data/part-{i}.csv" for i in range(6)] + [f"notes-{i}.md" for i in range(4)]
    paths += ["README.md", "deep/er/nested.txt"]
    problems: list[str] = []
    stale_locks: list[str] = []
    kill_delays: list[float] = []
    to_check: dict[str, bytes] | None = None
    removed_lock_logs = 0
    in_commit = 0
    sync_commits_at_kill: list[int] = []
    report.extra["writes"] = 0
    try:
        for run_number in range(TRIALS + 1):
            run = tmp_path / f"run{run_number}"
            run.mkdir()
            with jupyter_server(workspace, run, env) as server:
                if to_check is not None:
                    # The previous run was killed: the restarted engine brings it all out.
                    expected = {p: blob_id(c) for p, c in to_check.items()}

                    def caught_up(expected: dict[str, str] = expected) -> bool:
                        status = server.status()
                        assert status["state"] != "error", status
                        tip = ref_or_none(bare, f"refs/heads/{SERVER_BRANCH}")
                        return bool(
                            status["state"] == "synced"
                            and tip == status["head"] == status["remote_head"]
                            and tree_blobs(bare, tip) == expected
                        )

                    try:
                        wait_until(caught_up, timeout=60, what="the restarted server to sync")
                    except AssertionError as exc:
                        problems.append(f"run {run_number}: {exc}: {server.status()}")
                    objects = remote_objects(bare)
                    report.saves_made += len(expected)
                    report.saves_found += sum(1 for b in expected.values() if b in objects)
                    log = server.log.read_text()
                    removed_lock_logs += log.count("removed a stale lock")
                    if "already syncing" in log or "Traceback" in log:
                        problems.append(f"run {run_number}: server log:\n{log}")
                    report.trials_run += 1
                else:
                    wait_until(
                        lambda: server.status()["state"] == "synced", timeout=60, what="start-up"
                    )
                if run_number == TRIALS:
                    break  # the last server is stopped normally
                writer = DiskWriter(workspace, paths, rng.randrange(1 << 30))
                writer.start()
                delay = rng.uniform(0.2, 2.0)
                kill_delays.append(round(delay, 2))
                time.sleep(delay)  # the scenario: the moment of the kill
                if run_number % 2 == 1:
                    # ...or, every other time, the moment git holds one of its locks
                    in_commit += kill_when_a_lock_appears(workspace, server, deadline=3.0)
                server.process.send_signal(signal.SIGKILL)
                server.process.wait(timeout=30)
                stale_locks.extend(_lock_files(workspace))
                local_tip = ref_or_none(workspace, f"refs/heads/{SERVER_BRANCH}")
                count = git(workspace, "rev-list", "--count", local_tip) if local_tip else "0"
                sync_commits_at_kill.append(int(count))
                writer.halt.set()
                writer.join(timeout=10)
                assert writer.error is None, writer.error
                report.extra["writes"] += writer.writes
                to_check = files(workspace)
            # Each run's repositories are sound, whatever moment the kill came at.
            fsck(workspace)
            fsck(bare)
        fsck(workspace)
        fsck(bare)
    finally:
        report.extra["sync_commits_at_kill"] = sync_commits_at_kill
        report.extra["kill_after_s"] = kill_delays
        report.extra["kills_while_git_held_a_lock"] = in_commit
        report.extra["stale_locks_after_kill"] = len(stale_locks)
        report.extra["stale_locks_removed_on_restart"] = removed_lock_logs
    assert not problems, "\n".join(problems)
    assert report.saves_found == report.saves_made


# -- 3. the remote down for "hours", then back --------------------------------------------


@_timeout(120 + 20 * TRIALS)
async def test_remote_down_then_up_keeps_every_snapshot_in_order(
    start_engine: Callable[..., Any],
    workspace: Path,
    git_server: GitHTTPServer,
    remote: str,
    report: Reporter,
) -> None:
    """Offline, N saves become N local snapshots (retried with back-off all along); when the
    remote is back, all N reach it in order on the sync branch's first-parent chain."""
    saves_per_trial = 10
    bare = git_server.repo_path(remote)
    engine, events = await start_engine(
        workspace, commit_delay_seconds=0.05, retry_initial_seconds=0.05, retry_max_seconds=0.4
    )
    await async_wait_until(lambda: settled_or_nothing(engine, bare), what="start-up")
    offline_attempts = 0
    try:
        for trial in range(TRIALS):
            git_server.stop()
            first_event = len(events)
            contents: list[bytes] = []
            for k in range(saves_per_trial):
                content = f"trial {trial} save {k} {secrets.token_hex(4)}\n".encode()
                (workspace / "offline.txt").write_bytes(content)
                contents.append(content)
                report.saves_made += 1
                await async_wait_until(
                    lambda k=k: engine.status.unpushed_commits >= k + 1,
                    what=f"snapshot {k + 1} while offline",
                )

            # Hours offline, compressed: keep it down until the back-off has reached its
            # longest wait and the push has been retried again and again.
            def attempts(since: int = first_event) -> int:
                return sum(1 for e in events[since:] if e["state"] == "pushing")

            await async_wait_until(
                lambda: engine.status.state == State.OFFLINE and attempts() >= 8,
                what="retries while offline",
            )
            offline_attempts += attempts()
            git_server.start()
            await async_wait_until(lambda: settled(engine, bare), what="recovery")
            report.saves_found += found_on_remote(bare, contents)
            # In order, each its own snapshot, on the sync branch's first-parent chain.
            tip = ref_or_none(bare, f"refs/heads/{ENGINE_BRANCH}")
            chain = git(bare, "rev-list", "--first-parent", "--reverse", tip).split()
            seen = [tree_blobs(bare, c).get("offline.txt") for c in chain[-saves_per_trial:]]
            assert seen == blob_ids(contents), "the offline snapshots are not all there, in order"
            report.trials_run += 1
    finally:
        git_server.start()
        report.extra["saves_per_trial"] = saves_per_trial
        report.extra["push_attempts_while_offline"] = offline_attempts
    assert report.saves_found == report.saves_made


def settled_or_nothing(engine: SyncEngine, bare: Path) -> bool:
    """Started: synced, and the remote agrees (or there was nothing to push yet)."""
    status = engine.status
    if status.state != State.SYNCED:
        return False
    return status.head is None or settled(engine, bare)


# -- 4. two sessions on one branch ------------------------------------------------------------

SHARED_SETTINGS: dict[str, Any] = {
    "branch": SHARED_BRANCH,
    "commit_delay_seconds": 0.1,
    "retry_initial_seconds": 0.1,
    "retry_max_seconds": 0.5,
}


@_timeout(150 + 40 * TRIALS)
async def test_two_sessions_on_one_branch_lose_no_edit(
    start_engine: Callable[..., Any],
    tmp_path: Path,
    clone_into: Callable[[Path], Path],
    git_server: GitHTTPServer,
    remote: str,
    report: Reporter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two workspaces, two engines, one sync branch; a random schedule of edits to each
    session's own files and to shared files, then both sync until they agree (see converge).
    Per trial: no edit is lost (each session's last save of each path is on the remote, on the
    sync branch or a rescue branch); every own file's last save is on the final tip; both
    workspaces end equal to the tip. A shared file whose last writer's version did not end up
    final (the other session merged first and kept its own) is counted, and that version must
    be on a rescue branch."""
    bare = git_server.repo_path(remote)
    rng = random.Random(secrets.randbits(32))
    roots = {"A": clone_into(tmp_path / "A"), "B": clone_into(tmp_path / "B")}
    rescues: list[tuple[str, str, str]] = []  # (workspace, branch name, commit) as created
    create_rescue = SyncRepository.create_rescue_branch

    def recording_rescue(
        repo: SyncRepository, name: str, commit: Any, *args: Any, **kwargs: Any
    ) -> None:
        if not kwargs.get("pushed"):  # made here, not the other session's listed here
            rescues.append((repo.workspace.name, name, str(commit)))
        create_rescue(repo, name, commit, *args, **kwargs)

    monkeypatch.setattr(SyncRepository, "create_rescue_branch", recording_rescue)
    checkouts: list[tuple[str, float, float]] = []  # (workspace, start, end), for diagnosis
    checkout = Snapshotter.checkout

    def recording_checkout(snaps: Snapshotter, target: Any, progress: Any = None) -> None:
        started = time.monotonic()
        try:
            checkout(snaps, target, progress)
        finally:
            checkouts.append((snaps.repo.workspace.name, started, time.monotonic()))

    monkeypatch.setattr(Snapshotter, "checkout", recording_checkout)
    engines: dict[str, SyncEngine] = {}
    for name, root in roots.items():
        engines[name], _ = await start_engine(root, **SHARED_SETTINGS)
    for engine in engines.values():
        await async_wait_until(lambda e=engine: e.status.state == State.SYNCED, what="start-up")
    own = {name: [f"{name.lower()}/{i}.txt" for i in range(4)] for name in roots}
    shared = ["README.md", "shared/s0.txt", "shared/s1.txt"]
    edits_per_trial = 24
    restarts = 0
    replaced: list[str] = []  # shared: the last writer's version is not the final one
    overwritten_by_later = 0  # shared: a session's save replaced by the other's later save
    problems: list[str] = []
    try:
        for trial in range(TRIALS):
            last: dict[tuple[str, str], bytes] = {}  # (session, path) -> its last save
            saved_at: dict[tuple[str, str], float] = {}
            writers: dict[str, str] = {}  # path -> the session that wrote it last
            for n in range(edits_per_trial):
                name = rng.choice("AB")
                path = rng.choice(shared if rng.random() < 0.35 else own[name])
                content = f"{name} trial {trial} edit {n} {secrets.token_hex(3)}\n".encode()
                target = roots[name] / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
                saved_at[(name, path)] = time.monotonic()
                last[(name, path)] = content
                writers[path] = name
                await asyncio.sleep(rng.uniform(0, 0.25))  # the interleaving under test
            restarts += await converge(engines, start_engine, roots, bare)
            report.trials_run += 1
            report.saves_made += len(last)
            objects = remote_objects(bare)
            saves = list(last.items())
            found = [b in objects for b in blob_ids([c for _, c in saves])]
            report.saves_found += sum(found)
            for (key, content), ok in zip(saves, found, strict=True):
                if not ok:
                    at = saved_at[key]
                    during = [
                        f"{(at - start) * 1e3:.1f} ms into a {(end - start) * 1e3:.1f} ms checkout"
                        for ws, start, end in checkouts
                        if ws == key[0] and start - 0.05 <= at <= end + 0.05
                    ]
                    problems.append(
                        f"trial {trial}: lost {key} {content!r}; saved during a checkout of"
                        f" that workspace: {during or 'no'}"
                    )
            tip_tree = tree_blobs(bare, f"refs/heads/{SHARED_BRANCH}")
            for name, root in roots.items():
                on_disk = files(root)
                if dict(zip(on_disk, blob_ids(list(on_disk.values())), strict=True)) != tip_tree:
                    problems.append(f"trial {trial}: {name}'s workspace differs from the tip")
            for (name, path), content in last.items():
                final_is_mine = tip_tree.get(path) == blob_id(content)
                if path in own[name] and not final_is_mine:
                    problems.append(f"trial {trial}: {name}'s {path} is not on the tip")
                elif path in shared and not final_is_mine:
                    if writers[path] == name:
                        # The other session merged first and kept its own version, as
                        # designed; this save must then be on a rescue branch.
                        final = (roots[name] / path).read_bytes()
                        rescued = on_rescue_branch(bare, blob_id(content))
                        line = (
                            f"trial {trial}: {path} last saved by {name} as {content!r},"
                            f" final {final!r}; on a rescue branch: {rescued}"
                        )
                        replaced.append(line)
                        if not rescued:
                            problems.append(line)
                    else:
                        overwritten_by_later += 1
    finally:
        report.extra["edits"] = report.trials_run * edits_per_trial
        report.extra["restarts_to_converge"] = restarts
        report.extra["rescue_branches"] = len(rescue_branches(bare))
        names = [name for _, name, _ in rescues]
        report.extra["rescues_created"] = len(rescues)
        report.extra["rescue_names_reused"] = len(names) - len(set(names))
        report.extra["shared_replaced_by_a_later_save"] = overwritten_by_later
        report.extra["shared_last_saves_not_final"] = len(replaced)
        report.extra["lost_edits"] = report.saves_made - report.saves_found
        for line in replaced:
            print(f"[gitsync-faults] a shared file's last save is not the final version: {line}")
    assert not problems, "\n".join(problems)
    assert report.saves_found == report.saves_made, "edits lost"


async def converge(
    engines: dict[str, SyncEngine],
    start_engine: Callable[..., Any],
    roots: dict[str, Path],
    bare: Path,
) -> int:
    """Sync both sessions until both are synced on the remote's tip and it stops moving.

    sync_now only pushes: a session with nothing to push does not look at the remote, and one
    that does ends on a new merge, which leaves the other behind. What brings a session that is
    behind up to the tip without a new commit is the restore at start-up (a fast-forward), so
    that session's engine is restarted, as its server would be. Returns the restarts."""
    deadline = time.monotonic() + 60
    restarts = 0
    agreed: str | None = None
    trace: list[str] = []
    statuses: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        for engine in engines.values():
            await engine.sync_now()
        tip = ref_or_none(bare, f"refs/heads/{SHARED_BRANCH}")
        statuses = {name: engine.status_json() for name, engine in engines.items()}
        trace.append(
            f"tip={str(tip)[:7]} "
            + " ".join(
                f"{n}:{s['state']}@{str(s['head'])[:7]}/{str(s['remote_head'])[:7]}"
                for n, s in statuses.items()
            )
        )
        if not all(
            s["state"] == "synced" and s["head"] == s["remote_head"] for s in statuses.values()
        ):
            agreed = None
            await asyncio.sleep(0.05)
            continue
        behind = [name for name, s in statuses.items() if s["head"] != tip]
        if not behind:
            if agreed == tip:
                return restarts
            agreed = tip  # once more: the tip must not move
            continue
        agreed = None
        for name in behind:
            trace.append(f"restart {name}")
            await engines[name].stop(10)
            # stop() hands the engine lock's release to the git thread without waiting for it
            await async_wait_until(
                lambda n=name: engine_lock_free(roots[n]), what=f"{name}'s engine lock"
            )
            engines[name], _ = await start_engine(roots[name], **SHARED_SETTINGS)
            try:
                await async_wait_until(
                    lambda e=engines[name]: e.status.state == State.SYNCED,
                    what=f"{name} to restart",
                )
            except AssertionError as exc:
                raise AssertionError(
                    f"{exc}: {engines[name].status_json()}\n" + "\n".join(trace[-10:])
                ) from None
            restarts += 1
    raise AssertionError(
        "the two sessions did not converge:\n"
        + "\n".join(trace[-12:])
        + f"\n{statuses}\n"
        + "\n".join(rescue_ref_report(name, e, bare) for name, e in engines.items())
    )


def rescue_ref_report(name: str, engine: SyncEngine, bare: Path) -> str:
    """The rescue branches a session still has to push, here and on the remote."""
    repo = engine._repo
    if repo is None:
        return f"{name}: no repository"
    lines = [f"{name}: rescue branches still to push: {repo.rescue_refs}"]
    for ref in dict.fromkeys(repo.rescue_refs):
        local = ref_or_none(repo.workspace, ref)
        there = ref_or_none(bare, ref)
        ancestor = (
            there is not None
            and local is not None
            and subprocess.run(
                ["git", "-C", str(repo.workspace), "merge-base", "--is-ancestor", there, local],
                capture_output=True,
            ).returncode
            == 0
        )
        lines.append(
            f"  {ref}: here {local}, on the remote {there}, remote's is an ancestor: {ancestor}"
        )
    return "\n".join(lines)


# -- 5. 100k writes: the watcher's queue may overflow ----------------------------------------

_BURST = textwrap.dedent(
    """
    import os, sys
    root, files, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for d in range(files // 100):
        os.makedirs(os.path.join(root, "burst", f"d{d:02d}"), exist_ok=True)
    paths = [os.path.join(root, "burst", f"d{i // 100:02d}", f"f{i:04d}.txt") for i in range(files)]
    for r in range(rounds):
        for i, path in enumerate(paths):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)  # same size: overwrite in place
            os.write(fd, b"file %04d round %02d\\n" % (i, r))
            os.close(fd)
    """
)


@_timeout(200 + 60 * (TRIALS // 10))
@pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")  # watchdog, on overflow
async def test_100k_writes_lose_nothing(
    start_engine: Callable[..., Any],
    workspace: Path,
    git_server: GitHTTPServer,
    remote: str,
    report: Reporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A separate process rewrites 2,000 files 50 times each (100,000 writes, same size every
    round, so only content tells the rounds apart) as fast as it can. Once synced, every file's
    final content is on the sync branch tip. Reports whether inotify's queue overflowed."""
    caplog.set_level(logging.WARNING)
    bare = git_server.repo_path(remote)
    n_files, rounds = 2000, 50
    repeats = 1 + TRIALS // 10
    engine, _ = await start_engine(workspace)
    rescans = 0
    original = engine._changes.request_rescan

    def counting_rescan() -> None:
        nonlocal rescans
        rescans += 1
        original()

    engine._changes.request_rescan = counting_rescan  # type: ignore[method-assign]
    await async_wait_until(lambda: settled_or_nothing(engine, bare), what="start-up")
    write_seconds: list[float] = []
    sync_seconds: list[float] = []
    try:
        for repeat in range(repeats):
            rounds_here = rounds + repeat  # a new final content for every file on each repeat
            started = time.monotonic()
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", _BURST, str(workspace), str(n_files), str(rounds_here)
            )
            assert await proc.wait() == 0
            write_seconds.append(round(time.monotonic() - started, 1))
            final = {
                f"burst/d{i // 100:02d}/f{i:04d}.txt": b"file %04d round %02d\n"
                % (i, rounds_here - 1)
                for i in range(n_files)
            }
            expected = dict(zip(final, blob_ids(list(final.values())), strict=True))
            report.saves_made += n_files
            synced_at = time.monotonic()

            def caught_up(expected: dict[str, str] = expected) -> bool:
                if not settled(engine, bare):
                    return False
                tip = tree_blobs(bare, f"refs/heads/{ENGINE_BRANCH}")
                return all(tip.get(p) == b for p, b in expected.items())

            try:
                await async_wait_until(caught_up, timeout=120, what="all final contents synced")
            finally:
                tip = tree_blobs(bare, f"refs/heads/{ENGINE_BRANCH}")
                report.saves_found += sum(1 for p, b in expected.items() if tip.get(p) == b)
            sync_seconds.append(round(time.monotonic() - synced_at, 1))
            report.trials_run += 1
    finally:
        report.extra["writes"] = sum(n_files * (rounds + r) for r in range(report.trials_run))
        report.extra["write_s"] = write_seconds
        report.extra["sync_after_writes_s"] = sync_seconds
        report.extra["inotify_max_queued_events"] = (
            Path("/proc/sys/fs/inotify/max_queued_events").read_text().strip()
        )
        report.extra["overflow_warnings"] = sum(
            "overflow" in r.getMessage().lower() for r in caplog.records
        )
        report.extra["rescans_requested"] = rescans
    assert report.saves_found == report.saves_made


# -- 6. a 200 MB file -----------------------------------------------------------------------


async def test_a_200_mb_file_is_skipped_and_the_rest_syncs(
    start_engine: Callable[..., Any],
    workspace: Path,
    git_server: GitHTTPServer,
    remote: str,
    report: Reporter,
) -> None:
    """A sparse 200 MB file (no 200 MB written) in the same save as small files: it is skipped
    and reported with its size, the small files reach the remote, and neither the remote nor
    the workspace's .git grows."""
    bare = git_server.repo_path(remote)
    engine, events = await start_engine(workspace)
    await async_wait_until(lambda: settled_or_nothing(engine, bare), what="start-up")
    (workspace / "data").mkdir()
    with (workspace / "data" / "big.bin").open("wb") as big:
        big.truncate(200 * 1024 * 1024)
    small = {
        "data/small.csv": b"a,b\n1,2\n",
        "notes.md": f"results {secrets.token_hex(4)}\n".encode(),
    }
    for path, content in small.items():
        (workspace / path).write_bytes(content)
    report.saves_made = len(small)

    def caught_up() -> bool:
        if not settled(engine, bare):
            return False
        tip = tree_blobs(bare, f"refs/heads/{ENGINE_BRANCH}")
        return all(tip.get(p) == blob_id(c) for p, c in small.items())

    try:
        await async_wait_until(caught_up, what="the small files on the remote")
    finally:
        report.saves_found = found_on_remote(bare, list(small.values()))
        report.trials_run = 1
        report.extra["remote_bytes"] = tree_size(bare)
        report.extra["workspace_git_bytes"] = tree_size(workspace / ".git")
        report.extra["skipped"] = engine.status.skipped
    skipped = {s["path"]: s["reason"] for s in engine.status.skipped}
    assert "data/big.bin" in skipped, engine.status.skipped
    assert "larger than" in skipped["data/big.bin"] and "MB" in skipped["data/big.bin"]
    assert any(s["path"] == "data/big.bin" for e in events for s in e["skipped"])
    assert "data/big.bin" not in tree_blobs(bare, f"refs/heads/{ENGINE_BRANCH}")
    assert report.extra["remote_bytes"] < 20e6
    assert report.extra["workspace_git_bytes"] < 20e6
    assert (workspace / "data" / "big.bin").stat().st_blocks * 512 < 1e6  # still sparse
    assert report.saves_found == report.saves_made


# -- 7. a token in a notebook ---------------------------------------------------------------


def notebook_bytes(outputs: list[str]) -> bytes:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("import os\nprint(os.environ['GITHUB_TOKEN'])")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=t) for t in outputs]
    nb.cells.append(cell)
    return nbformat.writes(nb).encode()


async def test_a_token_in_a_notebook_never_reaches_the_remote(
    start_engine: Callable[..., Any],
    workspace: Path,
    git_server: GitHTTPServer,
    remote: str,
    report: Reporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A GitHub-token-shaped string in a notebook's output (a new notebook, and one the remote
    already has): both are skipped and reported, the token is in no object of the remote or of
    the workspace's .git, other files sync; once the user clears the output, both sync."""
    caplog.set_level(logging.DEBUG)
    bare = git_server.repo_path(remote)
    leaked = "ghp_" + secrets.token_hex(18)
    engine, events = await start_engine(workspace)
    await async_wait_until(lambda: settled_or_nothing(engine, bare), what="start-up")
    tracked_before = (workspace / "analysis.ipynb").read_bytes()
    with_token = notebook_bytes([f"{leaked}\n"])
    (workspace / "leak.ipynb").write_bytes(with_token)
    (workspace / "analysis.ipynb").write_bytes(with_token)
    other = f"other work {secrets.token_hex(4)}\n".encode()
    (workspace / "other.txt").write_bytes(other)
    report.saves_made = 1

    def tip() -> dict[str, str]:
        return tree_blobs(bare, f"refs/heads/{ENGINE_BRANCH}")

    await async_wait_until(
        lambda: settled(engine, bare) and tip().get("other.txt") == blob_id(other),
        what="the other file on the remote",
    )
    skipped = {s["path"]: s["reason"] for s in engine.status.skipped}
    for path in ("leak.ipynb", "analysis.ipynb"):
        assert "looks like a GitHub token" in skipped.get(path, ""), engine.status.skipped
    assert "leak.ipynb" not in tip()
    assert tip()["analysis.ipynb"] == blob_id(tracked_before)  # the remote keeps the old one
    assert leaked.encode() not in all_object_bytes(bare)
    assert leaked.encode() not in all_object_bytes(workspace)
    report.saves_found = found_on_remote(bare, [other])

    cleared = notebook_bytes(["(token removed)\n"])
    (workspace / "leak.ipynb").write_bytes(cleared)
    (workspace / "analysis.ipynb").write_bytes(cleared)
    report.saves_made += 2
    await async_wait_until(
        lambda: (
            settled(engine, bare)
            and tip().get("leak.ipynb") == tip().get("analysis.ipynb") == blob_id(cleared)
        ),
        what="the cleared notebooks on the remote",
    )
    report.saves_found += 2 * found_on_remote(bare, [cleared])
    report.trials_run = 1
    assert engine.status.skipped == []
    for where in (all_object_bytes(bare), all_object_bytes(workspace)):
        assert leaked.encode() not in where
    assert leaked not in json.dumps(events)
    assert leaked not in caplog.text
    assert report.saves_found == report.saves_made


# -- 8. offline at start, with an earlier session's snapshots on the remote -------------------

FAST_RETRIES: dict[str, Any] = {
    "commit_delay_seconds": 0.05,
    "retry_initial_seconds": 0.05,
    "retry_max_seconds": 0.4,
}


def started_on(engine: SyncEngine, bare: Path, branch: str) -> bool:
    """`settled_or_nothing` for a branch other than ENGINE_BRANCH."""
    status = engine.status
    if status.state != State.SYNCED:
        return False
    return status.head is None or settled(engine, bare, branch)


def is_ancestor(repo: Path, ancestor: str, commit: str) -> bool:
    out = subprocess.run(
        ["git", "-C", str(repo), "merge-base", "--is-ancestor", ancestor, commit],
        capture_output=True,
    )
    return out.returncode == 0


def holds(tree: dict[str, str], expected: dict[str, str]) -> int:
    """How many of `expected`'s paths `tree` holds with the same blob."""
    return sum(1 for path, blob in expected.items() if tree.get(path) == blob)


def blobs_of(contents: dict[str, bytes]) -> dict[str, str]:
    """path -> blob id."""
    return dict(zip(contents, blob_ids(list(contents.values())), strict=True))


def has_at(repo: Path, ref: str | None, expected: dict[str, str]) -> bool:
    """Whether `ref` exists in `repo` and its tree holds all of `expected`."""
    return ref is not None and holds(tree_blobs(repo, ref), expected) == len(expected)


def write(root: Path, path: str, content: bytes) -> None:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)


class OfflineStart:
    """One trial of test_offline_at_start_keeps_the_earlier_session."""

    def __init__(
        self,
        trial: int,
        rng: random.Random,
        tmp_path: Path,
        git_server: GitHTTPServer,
        bare: Path,
        report: Reporter,
    ) -> None:
        self.trial = trial
        self.rng = rng
        self.tmp = tmp_path
        self.server = git_server
        self.bare = bare
        self.report = report
        self.branch = f"gitsync/offline-start-{trial}"
        self.kind = "clone" if trial % 2 == 0 else "empty"
        self.down = "503" if (trial // 2 + trial) % 2 == 0 else "stopped"
        self.tips_seen: set[str] = set()
        self.problems: list[str] = []

    @property
    def ref(self) -> str:
        return f"refs/heads/{self.branch}"

    def fail(self, what: str) -> None:
        self.problems.append(f"trial {self.trial} ({self.kind}/{self.down}): {what}")

    def remote_down(self) -> None:
        if self.down == "503":
            self.server.fail_status = 503
        else:
            self.server.stop()

    def remote_up(self) -> None:
        self.server.fail_status = None
        self.server.start()

    async def earlier_session(
        self, start_engine: Callable[..., Any], clone_into: Callable[[Path], Path]
    ) -> tuple[str, dict[str, str]]:
        """A clone whose engine syncs a changed README and a few new files, then stops: the
        remote tip it left, and that tip's files."""
        root = clone_into(self.tmp / f"earlier{self.trial}")
        engine, _ = await start_engine(root, branch=self.branch, **FAST_RETRIES)
        await async_wait_until(lambda: engine.status.state == State.SYNCED, what="start")
        write(root, "README.md", f"# Project, trial {self.trial}\n".encode())
        for i in range(self.rng.randint(3, 6)):
            stamp = f"earlier {self.trial}/{i} {secrets.token_hex(4)}\n"
            write(root, f"earlier/e{i}.txt", stamp.encode())
        await async_wait_until(
            lambda: (
                settled(engine, self.bare, self.branch)
                and tree_blobs(self.bare, self.ref) == blobs_of(files(root))
            ),
            what="the earlier session to sync",
        )
        await engine.stop(10)
        tip = ref_or_none(self.bare, self.ref)
        assert tip is not None
        return tip, tree_blobs(self.bare, tip)

    async def edit_offline(self, engine: SyncEngine, root: Path) -> dict[str, bytes]:
        """Random saves while the remote is down; now and then wait for one's snapshot.
        Returns the last save of each path, once all are snapshotted locally."""
        paths = [f"offline/o{i}.txt" for i in range(4)] + ["notes.md", "earlier/mine.txt"]
        last: dict[str, bytes] = {}
        heads: set[str] = set()

        def snapshotted(expected: dict[str, str]) -> bool:
            status = engine.status
            if status.head is None or not has_at(root, status.head, expected):
                return False
            heads.add(status.head)
            return True

        for k in range(self.rng.randint(6, 12)):
            path = self.rng.choice(paths)
            content = f"offline {self.trial} save {k} {secrets.token_hex(1 + k % 7)}\n".encode()
            write(root, path, content)
            last[path] = content
            if self.rng.random() < 0.5:
                await async_wait_until(
                    functools.partial(snapshotted, {path: blob_id(content)}),
                    what=f"offline save {k} snapshotted locally",
                )
            else:
                await asyncio.sleep(self.rng.uniform(0, 0.1))  # the interleaving under test
        expected = blobs_of(last)
        await async_wait_until(
            lambda: (
                snapshotted(expected)
                and engine.status.pending_count == 0
                and engine.status.state == State.OFFLINE
            ),
            what="every offline save snapshotted locally",
        )
        self.report.extra["offline_heads_seen"].append(len(heads))
        return last

    def recovered(self, engine: SyncEngine) -> bool:
        tip = ref_or_none(self.bare, self.ref)
        if tip is not None:
            self.tips_seen.add(tip)
        return settled(engine, self.bare, self.branch)

    async def run(
        self, start_engine: Callable[..., Any], clone_into: Callable[[Path], Path]
    ) -> None:
        extra = self.report.extra
        earlier_tip, earlier_files = await self.earlier_session(start_engine, clone_into)
        extra["earlier_files"] += len(earlier_files)

        # The remote goes down; a fresh workspace starts and is edited.
        self.remote_down()
        refused_before = self.server.count(503)
        root = self.tmp / f"fresh{self.trial}"
        if self.kind == "clone":
            clone_into(root)
        else:
            root.mkdir()
        engine, events = await start_engine(root, branch=self.branch, **FAST_RETRIES)
        await async_wait_until(
            lambda: engine.status.state == State.OFFLINE, what="the first restore to fail"
        )
        last = await self.edit_offline(engine, root)
        expected = blobs_of(last)

        def restores() -> int:
            return sum(1 for e in events if e["state"] == "restoring")

        await async_wait_until(lambda: restores() >= 4, what="the restore retried while offline")
        extra["restore_attempts_while_offline"] += restores()
        extra["refused_503"] += self.server.count(503) - refused_before
        extra["push_attempts_while_offline"] += sum(1 for e in events if e["state"] == "pushing")
        if ref_or_none(self.bare, self.ref) != earlier_tip:
            self.fail("the remote branch moved while the remote was down")
        offline_head = str(engine.status.head)

        # The remote is back.
        came_back = len(events)
        self.remote_up()
        await async_wait_until(lambda: self.recovered(engine), timeout=30, what="recovery")
        tip = ref_or_none(self.bare, self.ref)
        assert tip is not None
        tip_tree = tree_blobs(self.bare, tip)
        self.report.saves_made += len(expected)
        self.report.saves_found += holds(tip_tree, expected)
        extra["earlier_files_kept"] += holds(tip_tree, earlier_files)
        for path, blob in {**earlier_files, **expected}.items():
            if tip_tree.get(path) != blob:
                self.fail(f"{path} is not on the tip as saved")
        if not is_ancestor(self.bare, earlier_tip, tip):
            self.fail("the earlier session's tip was forced over")
        if offline_head not in git(self.bare, "rev-list", "--first-parent", tip).split():
            self.fail("the last offline snapshot is not on the first-parent chain")
        # Every commit pushed since the remote came back, and every tip seen meanwhile.
        pushed = git(self.bare, "rev-list", "--first-parent", tip, f"^{offline_head}").split()
        if not pushed:
            self.fail("nothing was pushed after the remote came back")
        for commit in sorted({*pushed, *self.tips_seen} - {earlier_tip}):
            missing = len(earlier_files) - holds(tree_blobs(self.bare, commit), earlier_files)
            if missing:
                self.fail(f"{missing} earlier files missing in pushed commit {commit[:8]}")
        if holds(blobs_of(files(root)), {**earlier_files, **expected}) != len(
            {**earlier_files, **expected}
        ):
            self.fail("the workspace lacks files of the tip")
        if any(e["state"] == "error" for e in events[came_back:]):
            self.fail("an error state after the remote came back")
        await engine.stop(10)


@_timeout(120 + 40 * TRIALS)
async def test_offline_at_start_keeps_the_earlier_session(
    start_engine: Callable[..., Any],
    tmp_path: Path,
    clone_into: Callable[[Path], Path],
    git_server: GitHTTPServer,
    remote: str,
    report: Reporter,
) -> None:
    """An earlier session synced files to the sync branch and ended. A fresh workspace (a new
    clone, or every other trial an empty directory) starts its engine while the remote is down
    (answering 503, or not listening at all), and random edits are saved, each snapshotted
    locally while the remote stays down (the head moves; nothing is pushed: the restore gate
    is shut, the restore is retried). When the remote is back: settled; the remote tip holds
    every file of the earlier session and every last save made offline; every commit pushed
    after the remote came back (the first-parent chain above the last offline snapshot, and
    every tip seen meanwhile) holds all the earlier files; the earlier tip is an ancestor of
    the new one (nothing forced over it); the workspace holds it all too."""
    bare = git_server.repo_path(remote)
    rng = random.Random(secrets.randbits(32))
    report.extra.update(
        workspaces=[],
        earlier_files=0,
        earlier_files_kept=0,
        offline_heads_seen=[],
        restore_attempts_while_offline=0,
        refused_503=0,
        push_attempts_while_offline=0,
    )
    problems: list[str] = []
    try:
        for trial in range(TRIALS):
            run = OfflineStart(trial, rng, tmp_path, git_server, bare, report)
            report.extra["workspaces"].append(f"{run.kind}/{run.down}")
            try:
                await run.run(start_engine, clone_into)
            finally:
                run.remote_up()
                problems.extend(run.problems)
            report.trials_run += 1
    finally:
        git_server.fail_status = None
        git_server.start()
    assert not problems, "\n".join(problems)
    assert report.extra["push_attempts_while_offline"] == 0, "pushed before the restore"
    assert all(n >= 1 for n in report.extra["offline_heads_seen"])
    assert report.extra["earlier_files_kept"] == report.extra["earlier_files"]
    assert report.saves_found == report.saves_made


# -- 9. odd names and odd files among random edits ---------------------------------------------

NOT_UTF8_FILE = b"r\xe9sum\xe9.txt"  # Latin-1 bytes: no UTF-8 name spells them
NOT_UTF8_DIR = b"d\xfcr"


def make_odd(kind: str, root: Path, outside: Path) -> str | None:
    """Make one odd thing in the workspace `root`: the path the engine's status should list
    as skipped (as it shows it), or None when nothing should be listed (a link is stored)."""
    base = os.fsencode(root)
    if kind == "not-utf8-name":
        with open(base + b"/" + NOT_UTF8_FILE, "wb") as out:
            out.write(b"a file git cannot name here\n")
        return NOT_UTF8_FILE.decode("utf-8", "replace")
    if kind == "not-utf8-folder":
        os.mkdir(base + b"/" + NOT_UTF8_DIR)
        with open(base + b"/" + NOT_UTF8_DIR + b"/inner.txt", "wb") as out:
            out.write(b"inside a folder git cannot name here\n")
        return NOT_UTF8_DIR.decode("utf-8", "replace")
    if kind == "fifo":
        (root / "data").mkdir(exist_ok=True)
        os.mkfifo(root / "data" / "pipe")
        return "data/pipe"
    if kind == "socket":
        # through /proc/self/fd: a temporary directory's path may be too long for sun_path
        folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.bind(f"/proc/self/fd/{folder}/kernel.sock")
        finally:
            os.close(folder)
        assert stat.S_ISSOCK((root / "kernel.sock").lstat().st_mode)
        return "kernel.sock"
    if kind == "unreadable":
        path = root / "private.txt"
        path.write_text("nobody may read this\n")
        path.chmod(0)
        return "private.txt"
    if kind == "link-out":
        os.symlink(outside, root / "linked")
        return None
    raise ValueError(kind)


def tree_modes(repo: Path, ref: str) -> dict[str, str]:
    """path -> mode of every entry of `ref`'s tree, recursively (raw path bytes decoded with
    surrogateescape, so that a name that is not UTF-8 shows as such)."""
    out = subprocess.run(
        ["git", "-C", str(repo), "ls-tree", "-r", "-z", "--full-tree", ref],
        capture_output=True,
        check=True,
    ).stdout
    modes: dict[str, str] = {}
    for entry in filter(None, out.split(b"\0")):
        meta, path = entry.split(b"\t", 1)
        modes[os.fsdecode(path)] = meta.split()[0].decode()
    return modes


class OddNames:
    """One trial of test_odd_names_during_random_edits."""

    ORDINARY = ("notes.md", "data/a.csv", "data/b.csv", "deep/er/x.txt", "README.md")

    def __init__(
        self, trial: int, rng: random.Random, tmp_path: Path, bare: Path, kinds: list[str]
    ) -> None:
        self.trial = trial
        self.rng = rng
        self.tmp = tmp_path
        self.bare = bare
        self.kinds = kinds
        self.branch = f"gitsync/odd-{trial}"
        self.problems: list[str] = []

    def fail(self, what: str) -> None:
        self.problems.append(f"trial {self.trial}: {what}")

    def caught_up(self, engine: SyncEngine, expected: dict[str, str]) -> bool:
        ref = f"refs/heads/{self.branch}"
        return settled(engine, self.bare, self.branch) and has_at(self.bare, ref, expected)

    async def run(
        self,
        start_engine: Callable[..., Any],
        clone_into: Callable[[Path], Path],
        report: Reporter,
    ) -> None:
        extra = report.extra
        root = clone_into(self.tmp / f"ws{self.trial}")
        outside = self.tmp / f"outside{self.trial}" / "data"
        (outside / "sub").mkdir(parents=True)
        marker = f"outside the workspace {secrets.token_hex(8)}\n".encode()
        (outside / "private.csv").write_bytes(marker)
        (outside / "sub" / "more.txt").write_bytes(marker)
        engine, events = await start_engine(root, branch=self.branch, **FAST_RETRIES)
        await async_wait_until(lambda: started_on(engine, self.bare, self.branch), what="start")

        plan = ["edit"] * self.rng.randint(12, 20) + self.rng.sample(self.kinds, len(self.kinds))
        self.rng.shuffle(plan)
        last: dict[str, bytes] = {}
        listed_as: dict[str, str] = {}  # path as the status should list it -> kind
        for n, step in enumerate(plan):
            if step == "edit":
                path = self.rng.choice(self.ORDINARY)
                last[path] = f"{path} trial {self.trial} edit {n} {secrets.token_hex(3)}\n".encode()
                write(root, path, last[path])
            else:
                shown = make_odd(step, root, outside)
                extra["odd_files"] += 1
                if shown is not None:
                    listed_as[shown] = step
            await asyncio.sleep(self.rng.uniform(0, 0.15))  # the interleaving under test
        expected = blobs_of(last)
        await async_wait_until(
            lambda: self.caught_up(engine, expected), what="the ordinary saves on the remote"
        )
        await engine.sync_now()  # a full scan too, which meets the odd things again
        await async_wait_until(
            lambda: self.caught_up(engine, expected), what="synced after a full scan"
        )
        tip = f"refs/heads/{self.branch}"
        report.saves_made += len(expected)
        report.saves_found += holds(tree_blobs(self.bare, tip), expected)

        skipped = {s["path"]: s["reason"] for s in engine.status_json()["skipped"]}
        for shown, kind in listed_as.items():
            if skipped.get(shown):
                extra["skipped_listed"] += 1
            else:
                self.fail(f"the {kind} {shown!r} is not in skipped: {skipped}")
        modes = tree_modes(self.bare, tip)
        for path, mode in modes.items():
            if any(path == s or path.startswith(f"{s}/") for s in listed_as):
                self.fail(f"{path!r} ({mode}) reached the remote")
            if not path.isprintable():
                self.fail(f"an odd name reached the remote: {path!r}")
        if modes.get("linked") == "120000":
            extra["links_stored_as_links"] += 1
        else:
            self.fail(f"the link to a folder outside is {modes.get('linked')!r} on the tip")
        if any(p.startswith("linked/") for p in modes):
            self.fail("the link was followed: files under it are on the tip")
        if marker in all_object_bytes(self.bare):
            self.fail("a file from outside the workspace is on the remote")
        if marker in all_object_bytes(root):
            self.fail("a file from outside the workspace is in the workspace's .git")
        base = os.fsencode(root) + b"/"
        for name in (NOT_UTF8_FILE, NOT_UTF8_DIR, b"data/pipe", b"kernel.sock", b"linked"):
            if not os.path.lexists(base + name):
                self.fail(f"{name!r} is gone from the workspace")
        for e in events:
            if e["previous_state"] == "snapshotting":
                extra["longest_snapshot_ms"] = max(extra["longest_snapshot_ms"], e["duration_ms"])
        errors = [e["error"] for e in events if e["state"] == "error"]
        if errors:
            self.fail(f"the engine went into error: {errors}")
        await engine.stop(10)


@_timeout(120 + 40 * TRIALS)
async def test_odd_names_during_random_edits(
    start_engine: Callable[..., Any],
    tmp_path: Path,
    clone_into: Callable[[Path], Path],
    git_server: GitHTTPServer,
    remote: str,
    report: Reporter,
) -> None:
    """Random edits to ordinary files, and in between, at random moments: a file and a folder
    whose names are not UTF-8, a FIFO, a unix socket, a file nobody may read (not as root,
    who reads everything: then it is left out and the report says so), and a link to a folder
    outside the workspace whose files hold a marker. The engine never gets stuck (synced in
    the end, after a full scan too; no error state; no long snapshot); every ordinary file's
    last save is on the sync branch tip; each odd thing is listed in the status's `skipped`
    with a reason and is not on the remote; the link is stored as a link (mode 120000) with
    nothing under it, and the marker is in no object of the remote or the workspace's .git."""
    bare = git_server.repo_path(remote)
    rng = random.Random(secrets.randbits(32))
    as_root = os.geteuid() == 0
    kinds = ["not-utf8-name", "not-utf8-folder", "fifo", "socket", "link-out"]
    if not as_root:
        kinds.append("unreadable")
    report.extra.update(
        odd_files=0,
        skipped_listed=0,
        links_stored_as_links=0,
        unreadable="not made: running as root" if as_root else "made",
        longest_snapshot_ms=0,
    )
    problems: list[str] = []
    for trial in range(TRIALS):
        run = OddNames(trial, rng, tmp_path, bare, kinds)
        try:
            await run.run(start_engine, clone_into, report)
        finally:
            problems.extend(run.problems)
        report.trials_run += 1
    assert not problems, "\n".join(problems)
    assert report.extra["longest_snapshot_ms"] < 10_000, "a snapshot took over 10 s"
    assert report.extra["skipped_listed"] == TRIALS * (len(kinds) - 1)  # all but the link
    assert report.extra["links_stored_as_links"] == TRIALS
    assert report.saves_found == report.saves_made


async def test_an_odd_name_renamed_leaves_skipped(
    start_engine: Callable[..., Any],
    workspace: Path,
    git_server: GitHTTPServer,
    remote: str,
    report: Reporter,
) -> None:
    """A file whose name is not UTF-8 is listed in `skipped`; the user does what the reason
    asks and renames it to a name git can store: the file syncs under its new name, and the
    old name must leave `skipped` (it is not in the workspace any more)."""
    bare = git_server.repo_path(remote)
    engine, _ = await start_engine(workspace, **FAST_RETRIES)
    await async_wait_until(lambda: settled_or_nothing(engine, bare), what="start-up")
    odd = os.fsencode(workspace) + b"/" + NOT_UTF8_FILE
    content = f"my CV {secrets.token_hex(4)}\n".encode()
    with open(odd, "wb") as out:
        out.write(content)
    shown = NOT_UTF8_FILE.decode("utf-8", "replace")
    await async_wait_until(
        lambda: any(s["path"] == shown for s in engine.status.skipped), what="it to be listed"
    )
    os.rename(odd, workspace / "resume.txt")
    report.saves_made = 1
    expected = {"resume.txt": blob_id(content)}
    await async_wait_until(
        lambda: settled(engine, bare) and has_at(bare, f"refs/heads/{ENGINE_BRANCH}", expected),
        what="the renamed file on the remote",
    )
    await engine.sync_now()  # a full scan: the old name is nowhere in the workspace
    report.saves_found = found_on_remote(bare, [content])
    report.trials_run = 1
    report.extra["skipped_after_rename"] = engine.status_json()["skipped"]
    assert report.saves_found == report.saves_made
    assert not any(s["path"] == shown for s in engine.status_json()["skipped"])


async def test_a_fifo_and_a_socket_present_at_start_are_listed(
    start_engine: Callable[..., Any],
    workspace: Path,
    git_server: GitHTTPServer,
    remote: str,
    report: Reporter,
) -> None:
    """A FIFO and a unix socket left in the workspace by an earlier session (a kernel's
    socket, a named pipe of a pipeline) are there when the engine starts. The README says
    pipes and sockets are listed in `skipped`: after the start-up scan, and after Sync now
    (a full scan), both must be listed; the other files sync."""
    bare = git_server.repo_path(remote)
    outside = workspace.parent / "outside"
    outside.mkdir()
    odd = {"data/pipe": make_odd("fifo", workspace, outside)}
    odd["kernel.sock"] = make_odd("socket", workspace, outside)
    content = f"notes {secrets.token_hex(4)}\n".encode()
    write(workspace, "notes.md", content)
    engine, _ = await start_engine(workspace, **FAST_RETRIES)
    expected = {"notes.md": blob_id(content)}
    await async_wait_until(
        lambda: settled(engine, bare) and has_at(bare, f"refs/heads/{ENGINE_BRANCH}", expected),
        what="the start-up snapshot on the remote",
    )
    await engine.sync_now()
    report.saves_made = 1
    report.saves_found = found_on_remote(bare, [content])
    report.trials_run = 1
    listed = {s["path"] for s in engine.status_json()["skipped"]}
    report.extra["odd_files"] = len(odd)
    report.extra["skipped_listed"] = len(listed & set(odd))
    assert report.saves_found == report.saves_made
    assert set(odd) <= listed, f"not listed: {set(odd) - listed}"


# -- 10. two sessions, one displaced by the other's merge: is it told? -------------------------

TOLD_ROUNDS = 2  # per trial; how the displaced session takes the merge in changes each round
TAKE_IN = ("sync now", "restart", "its next push")
SHARED_PATHS = ("README.md", "shared/s0.txt", "shared/s1.txt")


class TwoSessions:
    """Two workspaces and their engines on one sync branch, with what each saved."""

    def __init__(
        self,
        trial: int,
        bare: Path,
        roots: dict[str, Path],
        engines: dict[str, SyncEngine],
        settings: dict[str, Any],
        start_engine: Callable[..., Any],
    ) -> None:
        self.trial = trial
        self.bare = bare
        self.roots = roots
        self.engines = engines
        self.settings = settings
        self.start_engine = start_engine
        self.branch = str(settings["branch"])
        self.ref = f"refs/heads/{self.branch}"
        self.saved: dict[str, dict[str, bytes]] = {"A": {}, "B": {}}

    def save(self, name: str, paths: list[str], stamp: str) -> None:
        for path in paths:
            content = f"{name} {stamp} {path} {secrets.token_hex(3)}\n".encode()
            write(self.roots[name], path, content)
            self.saved[name][path] = content

    def mine(self, name: str, paths: Iterable[str]) -> dict[str, str]:
        return {p: blob_id(self.saved[name][p]) for p in paths}

    def pushed(self, name: str, but: tuple[str, ...] = ()) -> bool:
        """`name` settled, with its saves (but `but`) on the remote tip."""
        if not settled(self.engines[name], self.bare, self.branch):
            return False
        kept = [p for p in self.saved[name] if p not in but]
        return has_at(self.bare, self.ref, self.mine(name, kept))

    def snapshotted(self, name: str) -> bool:
        """`name`'s saves are all in its local sync branch."""
        return has_at(
            self.roots[name],
            self.engines[name].status.head,
            self.mine(name, list(self.saved[name])),
        )

    def pushed_or_merged(self, name: str, rescues_before: set[str]) -> bool:
        """`name`'s saves are on the remote, or the other session's merge of them is."""
        return self.pushed(name) or bool(self.new_rescues(rescues_before))

    def new_rescues(self, before: set[str]) -> list[str]:
        return sorted(set(rescue_branches(self.bare)) - before)

    def started(self) -> bool:
        return all(started_on(e, self.bare, self.branch) for e in self.engines.values())

    def all_at_tip(self) -> bool:
        heads = {e.status.head for e in self.engines.values()}
        return len(heads) == 1 and all(
            settled(e, self.bare, self.branch) for e in self.engines.values()
        )

    async def restart(self, name: str) -> None:
        await self.engines[name].stop(10)
        # stop() hands the engine lock's release to the git thread without waiting for it
        await async_wait_until(
            lambda: engine_lock_free(self.roots[name]), what=f"{name}'s engine lock"
        )
        self.engines[name], _ = await self.start_engine(self.roots[name], **self.settings)

    def describe(self) -> str:
        return f"tip {ref_or_none(self.bare, self.ref)}, " + ", ".join(
            f"{n}: {e.status_json()}" for n, e in self.engines.items()
        )


async def displaced_round(
    s: TwoSessions,
    rnd: int,
    rng: random.Random,
    git_server: GitHTTPServer,
    report: Reporter,
    problems: list[str],
) -> None:
    """Both sessions save the same files; the one whose versions the merge displaced takes the
    merge in and must be told which files and where its versions are."""
    extra = report.extra
    race = s.trial % 2 == 1
    how = TAKE_IN[(s.trial * TOLD_ROUNDS + rnd) % len(TAKE_IN)]
    at = f"trial {s.trial} round {rnd} ({'race' if race else 'in turn'}, {how})"
    shared = rng.sample(SHARED_PATHS, rng.randint(1, len(SHARED_PATHS)))
    before = set(rescue_branches(s.bare))
    s.saved = {"A": {}, "B": {}}
    if race:  # both save while the remote is down; both push when it is back
        git_server.fail_status = 503
    for name in rng.sample(["A", "B"], 2):
        own = [f"{name.lower()}/{i}.txt" for i in range(3)]
        s.save(name, shared + rng.sample(own, rng.randint(0, 2)), f"trial {s.trial} round {rnd}")
        if race:
            continue
        await async_wait_until(
            functools.partial(s.pushed_or_merged, name, before), what=f"{name}'s saves pushed"
        )
    if race:
        for name in "AB":
            await async_wait_until(
                functools.partial(s.snapshotted, name), what=f"{name}'s saves, while down"
            )
        git_server.fail_status = None
    await async_wait_until(
        lambda: (
            bool(s.new_rescues(before))
            and any(settled(e, s.bare, s.branch) for e in s.engines.values())
        ),
        timeout=30,
        what="a merge and its rescue branch on the remote",
    )
    new = s.new_rescues(before)
    extra["displacements"] += len(new)
    tip = tree_blobs(s.bare, s.ref)
    keepers = [n for n in "AB" if holds(tip, s.mine(n, shared)) == len(shared)]
    if len(keepers) != 1 or len(new) != 1:
        problems.append(f"{at}: sessions whose versions are on the tip {keepers}, rescues {new}")
        return
    (keeper,) = keepers
    (loser,) = [n for n in "AB" if n != keeper]
    rescue = new[0].removeprefix("refs/heads/")
    rescued = tree_blobs(s.bare, rescue)
    holds_theirs = holds(rescued, s.mine(loser, shared)) == len(shared)
    if not holds_theirs:
        problems.append(f"{at}: {rescue} does not hold {loser}'s versions")
    notice = s.engines[keeper].status.notice or {}
    if set(shared) <= set(notice.get("paths") or []) and notice.get("branch") == rescue:
        extra["keepers_told"] += 1
    # The keeper may go on saving before the displaced session looks (snapshots on top of the
    # merge, which the notice must see through).
    for more in range(rng.randint(0, 2)):
        s.save(keeper, [f"{keeper.lower()}/more-{rnd}-{more}.txt"], f"after the merge {more}")
        await async_wait_until(lambda: s.pushed(keeper), what=f"{keeper}'s save after the merge")
        extra["keeper_saves_before_told"] += 1

    # The displaced session takes the merge in.
    extra["took_the_merge_in_by"][how] += 1
    if how == "sync now":
        await s.engines[loser].sync_now()
    elif how == "restart":
        await s.restart(loser)
    else:
        s.save(loser, [f"{loser.lower()}/after-{rnd}.txt"], "after the merge")
    try:
        await async_wait_until(
            lambda: s.pushed(loser, but=tuple(shared)),
            timeout=30,
            what=f"{loser} to take in the merge ({how})",
        )
    except AssertionError as exc:
        raise AssertionError(f"{at}: {exc}: {s.describe()}") from None
    notice = s.engines[loser].status.notice or {}
    extra["notices"].append(f"{how}: {notice}")
    named = set(shared) <= set(notice.get("paths") or [])
    there = ref_or_none(s.bare, new[0]) is not None
    if named and notice.get("branch") == rescue and there and holds_theirs:
        extra["sessions_told"] += 1
    else:
        problems.append(f"{at}: {loser} was not told about {shared} on {rescue}: {notice}")

    # Nothing lost: each last save on the tip, or (the displaced ones) on the rescue branch.
    tip = tree_blobs(s.bare, s.ref)
    for name in "AB":
        report.saves_made += len(s.saved[name])
        for path, content in s.saved[name].items():
            where = rescued if name == loser and path in shared else tip
            if where.get(path) == blob_id(content):
                report.saves_found += 1
            else:
                problems.append(f"{at}: {name}'s {path} lost")
    # Both sessions at the tip, their workspaces equal to it, before the next round.
    for engine in s.engines.values():
        if engine.status.head != ref_or_none(s.bare, s.ref):
            await engine.sync_now()
    await async_wait_until(s.all_at_tip, what="both sessions at the tip")
    tip = tree_blobs(s.bare, s.ref)
    for name, root in s.roots.items():
        if blobs_of(files(root)) != tip:
            problems.append(f"{at}: {name}'s workspace differs from the tip")


@_timeout(150 + 40 * TRIALS)
async def test_two_sessions_the_displaced_side_is_told(
    start_engine: Callable[..., Any],
    tmp_path: Path,
    clone_into: Callable[[Path], Path],
    git_server: GitHTTPServer,
    remote: str,
    report: Reporter,
) -> None:
    """Two fresh workspaces, two engines, one sync branch (a new one per trial). Each round,
    both sessions save different versions of the same files (README.md, which both clones
    have, and new files) and some of their own: in turn (one pushes first, the other's push
    is refused) or, every other trial, both while the remote is down, racing when it is back.
    The session whose push was refused merges, keeps its versions and puts the other's on a
    rescue branch; the keeper may save more. The displaced session then takes the merge in
    (by Sync now, by a restart, or through its next push): its status notice must name every
    displaced file and the rescue branch, which must exist on the remote and hold the
    displaced versions. Each rescue branch made is a displacement, and each must be told.
    No save is lost; both workspaces end equal to the tip."""
    bare = git_server.repo_path(remote)
    rng = random.Random(secrets.randbits(32))
    report.extra.update(
        rounds=0,
        displacements=0,
        sessions_told=0,
        keepers_told=0,
        keeper_saves_before_told=0,
        took_the_merge_in_by=dict.fromkeys(TAKE_IN, 0),
    )
    notices: list[str] = []
    report.extra["notices"] = notices
    problems: list[str] = []
    try:
        for trial in range(TRIALS):
            settings = {**SHARED_SETTINGS, "branch": f"gitsync/told-{trial}"}
            roots = {n: clone_into(tmp_path / f"t{trial}{n}") for n in "AB"}
            engines = {n: (await start_engine(root, **settings))[0] for n, root in roots.items()}
            sessions = TwoSessions(trial, bare, roots, engines, settings, start_engine)
            await async_wait_until(sessions.started, what="start-up")
            for rnd in range(TOLD_ROUNDS):
                await displaced_round(sessions, rnd, rng, git_server, report, problems)
                report.extra["rounds"] += 1
            for engine in sessions.engines.values():
                await engine.stop(10)
            report.trials_run += 1
    finally:
        git_server.fail_status = None
        report.extra.pop("notices")
        for line in notices:
            print(f"[gitsync-faults] the displaced session's notice: {line}")
    assert not problems, "\n".join(problems)
    assert report.extra["displacements"] == report.extra["rounds"] == TRIALS * TOLD_ROUNDS
    assert report.extra["sessions_told"] == report.extra["displacements"], "one was not told"
    assert report.saves_found == report.saves_made
