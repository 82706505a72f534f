"""Everything that talks to the remote: listing its branches, fetching, pushing; the credentials
callback; deadlines; and turning libgit2's errors into failures a user can act on.

Blocking; the engine runs it on its own transport thread (see `workers`), apart from the git
thread that snapshots, so a slow or hung remote never delays a local snapshot. Each thread gets
its own `pygit2.Repository` object on the same `.git`. What it writes is limited to what it
learned from the remote: `refs/gitsync/remote/*` and `refs/gitsync/fetched/*` (see
`repository`). It never forces a push.

Deadlines, in two layers: libgit2's own socket timeouts (`configure_timeouts`: connect, and
each read or write) end a remote that accepts the connection and then says nothing; and every
operation carries a `workers.Watch`, which the network lane cancels at its deadline and which
aborts the transfer at the next callback.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pygit2

from .errors import (
    AuthRequired,
    GitSyncError,
    PushRejected,
    RemoteNotFound,
    RemoteUnavailable,
    redact,
)
from .repository import Progress, is_snapshot
from .workers import Watch

TOKEN_USERNAME = "x-access-token"  # what GitHub expects as the Basic-auth user for a token

TokenGetter = Callable[[], "str | None"]


def configure_timeouts(connect_seconds: float, stall_seconds: float) -> None:
    """libgit2's socket timeouts, for every connection this process makes (a process-wide
    libgit2 option). Without them libgit2 waits for a silent server forever."""
    pygit2.settings.server_connect_timeout = max(1, int(connect_seconds * 1000))
    pygit2.settings.server_timeout = max(1, int(stall_seconds * 1000))


@dataclass(frozen=True)
class RemoteHeads:
    """The remote's refs (full names) and the branch its HEAD points at."""

    refs: dict[str, pygit2.Oid]
    default_branch: str | None


class Transport:
    """list, fetch and push against one `.git`, from whichever thread calls it."""

    def __init__(self, gitdir: Path) -> None:
        self.gitdir = gitdir
        self._local = threading.local()

    def _repo(self) -> pygit2.Repository:
        repo = getattr(self._local, "repo", None)
        if repo is None:
            repo = self._local.repo = pygit2.Repository(str(self.gitdir))
        return repo

    def list_remote(self, url: str, token: TokenGetter, watch: Watch | None = None) -> RemoteHeads:
        """The remote's branches and tags, and its default branch."""
        callbacks = _Callbacks(token, watch or Watch())
        with _translated_errors(token):
            heads = self._repo().remotes.create_anonymous(url).list_heads(callbacks=callbacks)
        refs = {h.name: h.oid for h in heads if h.name and h.name != "HEAD"}
        default = next((h.symref_target for h in heads if h.name == "HEAD"), None)
        return RemoteHeads(refs=refs, default_branch=default or None)

    def fetch(
        self,
        url: str,
        token: TokenGetter,
        refspecs: list[str],
        progress: Progress | None = None,
        watch: Watch | None = None,
    ) -> None:
        """Fetch `refspecs` into refs of our own namespace (the user's remote refs stay)."""
        callbacks = _Callbacks(token, watch or Watch(), progress)
        with _translated_errors(token):
            self._repo().remotes.create_anonymous(url).fetch(refspecs, callbacks=callbacks)

    def push(
        self,
        url: str,
        token: TokenGetter,
        refs: dict[str, str | None],
        watch: Watch | None = None,
    ) -> dict[str, pygit2.Oid]:
        """Push each local ref in `refs` to the same name on the remote, never forcing; where a
        tracking ref is given, record there what the remote now has. Returns what was sent.

        A remote that moved on refuses (libgit2 checks that the update is a fast-forward, and
        the server checks again): PushRejected, and the caller merges and tries again.
        """
        callbacks = _Callbacks(token, watch or Watch())
        repo = self._repo()
        with _translated_errors(token):
            remote = repo.remotes.create_anonymous(url)
            remote.push([f"{ref}:{ref}" for ref in refs], callbacks=callbacks)
            if callbacks.rejection:
                raise PushRejected(f"The remote refused the update: {callbacks.rejection}")
        for ref, tracking in refs.items():
            sent = callbacks.sent.get(ref)
            if tracking and sent is not None:
                repo.references.create(tracking, sent, force=True)
        return callbacks.sent

    def forget(self, ref: str) -> None:
        """The remote has no such branch (any more): drop what we recorded of it."""
        reference = self._repo().references.get(ref)
        if reference is not None:
            reference.delete()

    def describe(self, oid: pygit2.Oid) -> tuple[int, str, bool]:
        """A fetched commit's time (Unix seconds), first message line, and whether it is a
        snapshot."""
        commit = self._repo()[oid].peel(pygit2.Commit)
        summary = commit.message.splitlines()[0] if commit.message else ""
        return commit.commit_time, summary, is_snapshot(commit)


class _Callbacks(pygit2.RemoteCallbacks):
    """Hands libgit2 the token once per connection (a refused token must not be retried 15
    times), reports progress, notes what a push sends, and stops when the watch is cancelled."""

    def __init__(self, token: TokenGetter, watch: Watch, progress: Progress | None = None) -> None:
        super().__init__()
        self._token = token
        self._watch = watch
        self._progress = progress
        self.attempts = 0
        self.rejection: str | None = None
        self.sent: dict[str, pygit2.Oid] = {}

    def credentials(
        self, url: str, username_from_url: str | None, allowed_types: Any
    ) -> pygit2.UserPass:
        self._watch.touch()
        self.attempts += 1
        if self.attempts > 1:
            raise AuthRequired("The remote refused the token. Sign in again to keep pushing.")
        secret = self._token()
        if not secret:
            raise AuthRequired("The remote needs a token to accept pushes; none is set.")
        return pygit2.UserPass(TOKEN_USERNAME, secret)

    def transfer_progress(self, stats: pygit2.remotes.TransferProgress) -> None:
        self._watch.touch()
        if self._progress is not None:
            self._progress(
                "fetch", stats.received_objects, stats.total_objects, stats.received_bytes
            )

    def sideband_progress(self, string: str) -> None:
        self._watch.touch()

    def push_transfer_progress(
        self, objects_pushed: int, total_objects: int, bytes_pushed: int
    ) -> None:
        self._watch.touch()

    def push_negotiation(self, updates: list[pygit2.remotes.PushUpdate]) -> None:
        self._watch.touch()
        for update in updates:
            self.sent[update.src_refname] = update.dst

    def push_update_reference(self, refname: str, message: str | None) -> None:
        if message:
            self.rejection = message
            self.sent.pop(refname, None)


@contextmanager
def _translated_errors(token: TokenGetter) -> Iterator[None]:
    """Turn libgit2's errors into GitSyncErrors with plain words and no secrets."""
    try:
        yield
    except GitSyncError as exc:
        exc.message = redact(exc.message, [token()])
        exc.args = (exc.message,)
        raise
    except (pygit2.GitError, OSError) as exc:
        # `from None`: the original text may hold what the redactor removed.
        raise classify(redact(str(exc), [token()])) from None


def classify(message: str) -> GitSyncError:
    """Map a libgit2 error message to the failure the user should hear about."""
    lowered = message.lower()
    if any(s in lowered for s in ("401", "403", "authentication", "credentials")):
        return AuthRequired(f"The remote refused the token ({message}).")
    if any(s in lowered for s in ("404", "not found", "invalid content-type")):
        return RemoteNotFound(f"The remote URL does not lead to a git repository ({message}).")
    if any(
        s in lowered
        for s in (
            "non-fastforward",
            "non-fast-forward",
            "non-fastforwardable",
            "rejected",
            "not present locally",
        )
    ):
        return PushRejected(f"The remote refused the push ({message}).")
    if "timed out" in lowered or "timeout" in lowered:
        return RemoteUnavailable(f"The remote stopped answering ({message}).")
    return RemoteUnavailable(f"The remote could not be reached ({message}).")
