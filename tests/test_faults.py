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
import hashlib
import json
import logging
import os
import random
import secrets
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
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
