"""Small helpers for tests: run git, read the remote, and wait for a condition with a deadline."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

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


def wait_until(predicate: Callable[[], T], timeout: float = DEADLINE_SECONDS, what: str = "") -> T:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(0.02)


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
