"""Small helpers for tests: run git, read the remote, and wait for a condition with a deadline."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from jupyter_gitsync.repository import Heads, SyncRepository
from jupyter_gitsync.restore import RestoreResult, run_restore
from jupyter_gitsync.snapshots import Snapshot, Snapshotter
from jupyter_gitsync.transport import Transport

T = TypeVar("T")
DEADLINE_SECONDS = 20.0
SNAPSHOT_BRANCH = "gitsync/ada"  # the branch of `earlier_session` (conftest)


def git(repo: Path, *args: str) -> str:
    """Run the git CLI in `repo` and return its stripped stdout."""
    out = subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def ref_or_none(repo: Path, ref: str) -> str | None:
    """The sha `ref` points at in `repo`, or None."""
    out = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", ref],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() or None


def show(repo: Path, ref: str, path: str) -> bytes | None:
    """The content of `path` at `ref` in `repo`, or None if it is not there."""
    out = subprocess.run(["git", "-C", str(repo), "show", f"{ref}:{path}"], capture_output=True)
    return out.stdout if out.returncode == 0 else None


def user_git_state(repo: Path, sync_branch: str | None = None) -> dict[str, str]:
    """What a user's own git state looks like: HEAD, its branch, the index, branches, stash
    (the sync branch, which is the engine's, left out)."""
    index = repo / ".git" / "index"
    refs = git(repo, "for-each-ref", "refs/heads/", "--format=%(refname) %(objectname)")
    own = [r for r in refs.splitlines() if r.split()[0] != f"refs/heads/{sync_branch}"]
    return {
        "head": ref_or_none(repo, "HEAD") or "",
        "branch": git(repo, "symbolic-ref", "--quiet", "HEAD"),
        "index": index.read_bytes().hex() if index.exists() else "",
        "branches": "\n".join(own),
        "stash": ref_or_none(repo, "refs/stash") or "",
    }


def wait_until(
    predicate: Callable[[], T],
    timeout: float = DEADLINE_SECONDS,
    what: str = "",
    interval: float = 0.02,
) -> T:
    """Poll `predicate` every `interval` seconds until it returns something truthy; fail after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)


async def async_wait_until(
    predicate: Callable[[], T | Awaitable[T]], timeout: float = DEADLINE_SECONDS, what: str = ""
) -> T:
    """The same for async tests: the event loop keeps running while we wait."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        await asyncio.sleep(0.02)


def files(root: Path) -> dict[str, bytes]:
    """Every file under `root` but .git, with its bytes."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


async def start_extensions(jp_serverapp: Any) -> None:
    """pytest-jupyter does not run the server's post-start hook; run it as the server would."""
    await jp_serverapp.extension_manager.start_all_extensions()


class LocalSession:
    """A workspace's repository, snapshotter and transport, composed as the engine composes
    them, for tests that drive them by hand on one thread."""

    def __init__(self, workspace: Path, branch: str, **snapshot_settings: Any) -> None:
        self.repo = SyncRepository(workspace, branch)
        self.snaps = Snapshotter(self.repo, **snapshot_settings)
        self.transport = Transport(self.repo.gitdir)

    @property
    def workspace(self) -> Path:
        return self.repo.workspace

    @property
    def skipped(self) -> dict[str, str]:
        return self.snaps.skipped

    def snapshot(self, paths: list[str] | None) -> Snapshot | None:
        return self.snaps.snapshot(paths)

    def heads(self) -> Heads:
        return self.repo.heads()

    def push(self, url: str, token: Callable[[], str | None]) -> Heads:
        """Push the sync branch and rescue branches, as the engine's push job does."""
        refs: dict[str, str | None] = {ref: None for ref in self.repo.rescue_refs}
        heads = self.repo.heads()
        if heads.head is not None and heads.head != heads.remote_head:
            refs[self.repo.sync_ref] = self.repo.tracking_ref
        if refs:
            sent = self.transport.push(url, token, refs)
            self.repo.rescues.mark_pushed(list(sent))
        return self.repo.heads()

    def restore(self, url: str, token: Callable[[], str | None]) -> RestoreResult:
        return run_restore(self.repo, self.snaps, url, token)

    def close(self) -> None:
        self.repo.close()


class SilentRemote:
    """A local socket that accepts connections and never answers (a stalled proxy or load
    balancer): every connection is held open until `close`."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._held: list[socket.socket] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}.git"

    @property
    def connections(self) -> int:
        return len(self._held)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._socket.accept()
            except OSError:
                return
            self._held.append(conn)

    def close(self) -> None:
        self._closed.set()
        self._socket.close()
        for conn in self._held:
            conn.close()


class MutableToken:
    """A token source a test can change, like a user signing in later or again."""

    def __init__(self, value: str | None) -> None:
        self.value = value

    def token(self) -> str | None:
        return self.value
