"""Everything that talks to the remote: listing its branches, fetching, pushing; the credentials
callback; deadlines; and turning libgit2's errors into failures a user can act on.

Blocking; the engine runs it on its own transport thread (see `workers`), apart from the git
thread that snapshots, so a slow or hung remote never delays a local snapshot. Each thread gets
its own `pygit2.Repository` object on the same `.git`. What it writes is limited to what it
learned from the remote: `refs/gitsync/remote/*` and `refs/gitsync/fetched/*` (see
`repository`). It never forces a push. A first push of many objects goes through the git
command line instead (`gitcli`: git reuses packed objects, libgit2 cannot).

Deadlines, in two layers: libgit2's own socket timeouts (`configure_timeouts`: connect, and
each read or write) end a remote that accepts the connection and then says nothing; and every
operation carries a `workers.Watch`, which the network lane cancels at its deadline and which
aborts the transfer at the next callback.

History is fetched as deep as asked (`depth`; restore asks for a tip alone first, see
`restore.History`). After a fetch with a depth, commits that libgit2 marked as cut off in
`.git/shallow` although their parents are here are taken off that list (`_reconnect`): a tip
that moved by one snapshot joins the history here at once, and a deeper fetch never cuts off
history this repository has in full (the user's own branches).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pygit2
from pygit2.enums import ConfigLevel

from . import _native, gitcli, wire
from .errors import (
    AuthRequired,
    GitSyncError,
    PushRejected,
    RemoteNotFound,
    RemoteUnavailable,
    TokenMissing,
    access_refused,
    rate_limited,
    redact,
    redirected_elsewhere,
    token_refused,
)
from .gitcli import TOKEN_USERNAME
from .repository import FETCHED_PREFIX, SIGNATURE_EMAIL, Progress, raw_parents, shallow_roots
from .watch import Watch

_SUMMARY_BYTES = 300  # of a commit message shown in the branch list
_TIMEOUTS = {"stall_seconds": 30.0}  # for the requests this module makes itself (`wire`)

TokenGetter = Callable[[], "str | None"]

# A first push from a repository with at least this many packed objects goes through the git
# command line (see `Transport._first_push_of_many`); below it libgit2 is as fast or faster.
GIT_CLI_MIN_OBJECTS = 10_000

DEFAULT_CONNECT_TIMEOUT_SECONDS = 10.0
DEFAULT_STALL_TIMEOUT_SECONDS = 30.0


def configure_timeouts(connect_seconds: float, stall_seconds: float) -> None:
    """libgit2's socket timeouts, for every connection this process makes (a process-wide
    libgit2 option). Without them libgit2 waits for a silent server forever."""
    pygit2.settings.server_connect_timeout = max(1, int(connect_seconds * 1000))
    pygit2.settings.server_timeout = max(1, int(stall_seconds * 1000))
    _TIMEOUTS["stall_seconds"] = max(connect_seconds, stall_seconds)


@dataclass(frozen=True)
class Fetch:
    """One remote ref to fetch into a ref of ours, and the commit the remote said it holds."""

    remote_ref: str
    local_ref: str
    oid: pygit2.Oid
    is_sync_branch: bool

    @property
    def refspec(self) -> str:
        return f"+{self.remote_ref}:{self.local_ref}"


@dataclass(frozen=True)
class TipInfo:
    """A branch tip as the branch list shows it: its time (Unix seconds; None when it has
    none that parses), first message line, and whether it is a snapshot. Any pusher writes
    these fields."""

    when: int | None
    summary: str
    snapshot: bool


UNREADABLE = TipInfo(None, "(a commit that cannot be read)", False)


@dataclass(frozen=True)
class RemoteHeads:
    """The remote's refs (full names) and the branch its HEAD points at."""

    refs: dict[str, pygit2.Oid]
    default_branch: str | None


# Settings of our own for the transport's connections, on top of the repository's config
# (in memory: the user's .git/config is not written). A redirect is never followed: the token
# must go to the remote's origin only, and libgit2 would send it along to wherever the remote
# redirects.
_TRANSPORT_CONFIG = "[http]\n\tfollowRedirects = false\n"


class Transport:
    """list, fetch and push against one `.git`, from whichever thread calls it."""

    def __init__(self, gitdir: Path) -> None:
        self.gitdir = gitdir
        self._local = threading.local()
        self._config = gitdir / "gitsync" / "transport.config"

    def repository(self) -> pygit2.Repository:
        """This thread's repository object (for reads that plan a fetch)."""
        return self._repo()

    def _repo(self) -> pygit2.Repository:
        repo: pygit2.Repository | None = getattr(self._local, "repo", None)
        if repo is None:
            repo = pygit2.Repository(str(self.gitdir))
            if not self._config.exists() or self._config.read_text() != _TRANSPORT_CONFIG:
                self._config.parent.mkdir(exist_ok=True)
                self._config.write_text(_TRANSPORT_CONFIG)
            _native.add_config_file(repo, str(self._config), ConfigLevel.APP)
            self._local.repo = repo
        return repo

    def list_remote(self, url: str, token: TokenGetter, watch: Watch | None = None) -> RemoteHeads:
        """The remote's branches and tags, and its default branch."""
        callbacks = _Callbacks(token, watch or Watch(), _origin(url))
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
        depth: int = 0,
    ) -> None:
        """Fetch `refspecs` into refs of our own namespace (the user's remote refs stay), with
        `depth` commits of history (0: all of it). Either way only objects this repository
        lacks are sent."""
        callbacks = _Callbacks(token, watch or Watch(), _origin(url), progress)
        with _translated_errors(token), self._users_fetch_head_kept():
            remote = self._repo().remotes.create_anonymous(url)
            _native.fetch_without_fetch_head(remote, refspecs, callbacks, depth)
        if depth:
            self._reconnect()

    def fetch_tips(
        self,
        url: str,
        token: TokenGetter,
        wanted: list[Fetch],
        progress: Progress | None = None,
        watch: Watch | None = None,
    ) -> list[Fetch]:
        """Fetch the commits of `wanted` without their history (depth 1) into their local
        refs; a commit that is here already only gets its ref. Returns `wanted` with the
        commits now there (a branch can move between listing and fetching)."""
        repo = self._repo()
        missing = []
        for fetch in wanted:
            if fetch.oid in repo:
                repo.references.create(fetch.local_ref, fetch.oid, force=True)
            else:
                missing.append(fetch.refspec)
        if missing:
            self.fetch(url, token, missing, progress, watch, depth=1)
        fetched = []
        for fetch in wanted:
            reference = repo.references.get(fetch.local_ref)
            oid = fetch.oid if reference is None else pygit2.Oid(hex=str(reference.target))
            fetched.append(Fetch(fetch.remote_ref, fetch.local_ref, oid, fetch.is_sync_branch))
        return fetched

    def _reconnect(self) -> None:
        """Take off `.git/shallow` the commits whose parents are all here (see the module's
        docstring). Written as git does, through `shallow.lock`; left for the next fetch if
        someone else holds that lock."""
        roots = shallow_roots(self.gitdir)
        repo = self._repo()
        kept = {r for r in roots if any(p not in repo for p in raw_parents(repo, r))}
        if kept == roots:
            return
        path, lock = self.gitdir / "shallow", self.gitdir / "shallow.lock"
        try:
            handle = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return
        try:
            with os.fdopen(handle, "w", encoding="ascii") as out:
                out.write("".join(f"{oid}\n" for oid in sorted(kept, key=str)))
            if kept:
                os.replace(lock, path)
            else:
                path.unlink(missing_ok=True)  # the whole history is here again
        finally:
            lock.unlink(missing_ok=True)

    @contextmanager
    def _users_fetch_head_kept(self) -> Iterator[None]:
        """`.git/FETCH_HEAD` is the user's (what their last `git fetch` brought). With
        `update_fetchhead` off libgit2 (1.9) writes no entries there but still empties the
        file: put back what was there."""
        path = self.gitdir / "FETCH_HEAD"
        try:
            before: bytes | None = path.read_bytes()
        except FileNotFoundError:
            before = None
        try:
            yield
        finally:
            try:
                after: bytes | None = path.read_bytes()
            except FileNotFoundError:
                after = None
            if after != before and not after:  # emptied by us, not rewritten by the user
                if before is None:
                    path.unlink(missing_ok=True)
                else:
                    path.write_bytes(before)

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

        A first push of many objects goes through the git command line (`gitcli`, see
        `_first_push_of_many`), with the same outcome and the same failures.
        """
        repo = self._repo()
        if self._first_push_of_many(url, refs):
            return self._push_with_git(url, token, refs, watch or Watch())
        callbacks = _Callbacks(token, watch or Watch(), _origin(url))
        with _translated_errors(token):
            remote = repo.remotes.create_anonymous(url)
            # threads=0: libgit2 builds the pack with a thread per core (pygit2's default is
            # one); a first push of a large workspace spends most of its time there.
            remote.push([f"{ref}:{ref}" for ref in refs], callbacks=callbacks, threads=0)
            if callbacks.rejection:
                raise PushRejected(f"The remote refused the update: {callbacks.rejection}")
        for ref, tracking in refs.items():
            sent = callbacks.sent.get(ref)
            if tracking and sent is not None:
                repo.references.create(tracking, sent, force=True)
        return callbacks.sent

    def _first_push_of_many(self, url: str, refs: dict[str, str | None]) -> bool:
        """Whether to push with the git command line: a first push (a ref with a tracking ref
        that does not exist yet: the remote was never told of it) from a repository of at
        least GIT_CLI_MIN_OBJECTS packed objects, to an http(s) remote, with git at hand.

        Why: a large snapshot keeps its blobs in packs (`packs`). libgit2's packbuilder cannot
        reuse packed data: it inflates, searches deltas for and deflates every object again,
        where git copies the packed records as they are. First push of a 50k-file workspace
        (benchmarks P6): libgit2 12.4 s, `git push` of the same repository 6.4 s. Decided
        before any packing, from the pack indexes' headers (no object is read)."""
        repo = self._repo()
        first = any(tracking and tracking not in repo.references for tracking in refs.values())
        return (
            first
            and gitcli.supports(url)
            and gitcli.available()
            and packed_objects(self.gitdir) >= GIT_CLI_MIN_OBJECTS
        )

    def _push_with_git(
        self, url: str, token: TokenGetter, refs: dict[str, str | None], watch: Watch
    ) -> dict[str, pygit2.Oid]:
        """`push` through `gitcli`, with the same outcome: what was sent, and the tracking
        refs recorded. The commits are read here first, so what is recorded is what git sent
        even if a snapshot moves a ref meanwhile."""
        repo = self._repo()
        updates: dict[str, pygit2.Oid] = {}
        for ref in refs:
            reference = repo.references.get(ref)
            if reference is not None:
                updates[ref] = pygit2.Oid(hex=str(reference.resolve().target))
        if not updates:
            return {}
        landed = gitcli.push(
            self.gitdir,
            url,
            token,
            {ref: str(oid) for ref, oid in updates.items()},
            stall_seconds=_TIMEOUTS["stall_seconds"],
            deadline_seconds=None,  # the caller's watch carries the deadline (engine's lane)
            watch=watch,
        )
        sent = {ref: updates[ref] for ref in landed}
        for ref, tracking in refs.items():
            if tracking and ref in sent:
                repo.references.create(tracking, sent[ref], force=True)
        return sent

    def push_to(
        self,
        url: str,
        token: TokenGetter,
        local_ref: str,
        remote_ref: str,
        watch: Watch | None = None,
    ) -> pygit2.Oid | None:
        """Push `local_ref` to `remote_ref`, a name of the remote's own (a published branch:
        see `publish`), never forcing: a branch that moved on meanwhile refuses
        (PushRejected). Returns the commit sent (None: the remote had it already)."""
        callbacks = _Callbacks(token, watch or Watch(), _origin(url))
        with _translated_errors(token):
            remote = self._repo().remotes.create_anonymous(url)
            remote.push([f"{local_ref}:{remote_ref}"], callbacks=callbacks)
            if callbacks.rejection:
                raise PushRejected(f"The remote refused the update: {callbacks.rejection}")
        return callbacks.sent.get(local_ref)

    def delete(
        self, url: str, token: TokenGetter, refs: list[str], watch: Watch | None = None
    ) -> None:
        """Delete branches `refs` on the remote (rescue branches that served their purpose).
        One the remote does not have (any more) counts as deleted."""
        callbacks = _Callbacks(token, watch or Watch(), _origin(url))
        repo = self._repo()
        with _translated_errors(token):
            remote = repo.remotes.create_anonymous(url)
            remote.push([f":{ref}" for ref in refs], callbacks=callbacks)
        if callbacks.rejection and "does not exist" not in callbacks.rejection:
            raise PushRejected(f"The remote refused to delete a branch: {callbacks.rejection}")

    def forget(self, ref: str) -> None:
        """The remote has no such branch (any more), or it served its purpose: drop it. A ref
        ending in "/" drops every ref under it."""
        references = self._repo().references
        names = [n for n in references if n.startswith(ref)] if ref.endswith("/") else [ref]
        for name in names:
            reference = references.get(name)
            if reference is not None:
                reference.delete()

    def has(self, oid: pygit2.Oid) -> bool:
        """Whether this repository holds the object."""
        return oid in self._repo()

    def read_commits(
        self, url: str, token: TokenGetter, oids: list[pygit2.Oid], watch: Watch | None = None
    ) -> dict[pygit2.Oid, bytes] | None:
        """The raw commits `oids` (tips the remote advertised) without their files, read over
        protocol v2 and not stored (`wire`); None where the remote cannot send them alone."""
        try:
            with _translated_errors(token):
                return wire.read_commits(
                    url, TOKEN_USERNAME, token, oids, watch or Watch(), _TIMEOUTS["stall_seconds"]
                )
        except wire.Unsupported:
            return None

    def describe_tips(
        self,
        url: str,
        token: TokenGetter,
        tips: dict[str, pygit2.Oid],
        watch: Watch | None = None,
    ) -> dict[pygit2.Oid, TipInfo]:
        """Time, message and kind of the remote's branch tips (`tips`: full ref name ->
        commit), without their files or history: commits only, read over protocol v2 and
        never stored (`wire`). A remote that cannot send commits alone gets the tips fetched
        through libgit2 at depth 1 (their files come along, their history does not); the
        refs of that fetch are dropped again."""
        watch = watch or Watch()
        repo = self._repo()
        raw = {oid: repo.odb.read(oid)[1] for oid in set(tips.values()) if oid in repo}
        wanted = {ref: oid for ref, oid in tips.items() if oid not in raw}
        read = self.read_commits(url, token, list(wanted.values()), watch) if wanted else {}
        raw.update(read if read is not None else self._fetch_commits(url, token, wanted, watch))
        return {oid: _describe(raw[oid]) if oid in raw else UNREADABLE for oid in tips.values()}

    def _fetch_commits(
        self, url: str, token: TokenGetter, tips: dict[str, pygit2.Oid], watch: Watch
    ) -> dict[pygit2.Oid, bytes]:
        prefix = f"{FETCHED_PREFIX}tips/"
        wanted = [
            Fetch(ref, f"{prefix}{n}", oid, False) for n, (ref, oid) in enumerate(tips.items())
        ]
        try:
            self.fetch_tips(url, token, wanted, None, watch)
            repo = self._repo()
            return {oid: repo.odb.read(oid)[1] for oid in tips.values() if oid in repo}
        finally:
            self.forget(prefix)


class _Callbacks(pygit2.RemoteCallbacks):
    """Hands libgit2 the token once per connection (a refused token must not be retried 15
    times), reports progress, notes what a push sends, and stops when the watch is cancelled."""

    def __init__(
        self, token: TokenGetter, watch: Watch, origin: str, progress: Progress | None = None
    ) -> None:
        super().__init__()
        self._token = token
        self._origin = origin
        self._watch = watch
        self._progress = progress
        self.attempts = 0
        self.rejection: str | None = None
        self.sent: dict[str, pygit2.Oid] = {}

    def credentials(
        self, url: str, username_from_url: str | None, allowed_types: Any
    ) -> pygit2.UserPass:
        self._watch.touch()
        if _origin(url) != self._origin:
            raise RemoteNotFound(
                f"The remote at {self._origin} sent the request on to {_origin(url)}; the token"
                " is only ever sent to the remote's own address. Set the remote to where the"
                " repository is."
            )
        self.attempts += 1
        if self.attempts > 1:
            raise AuthRequired("The remote refused the token. Sign in again to keep pushing.")
        secret = self._token()
        if not secret:
            raise TokenMissing("The remote needs a token, and none is set.")
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


def packed_objects(gitdir: Path) -> int:
    """How many objects the packs of `gitdir` hold, from each pack index's fan-out table (its
    last entry counts the objects; 4 bytes read per index). Objects in two packs count twice."""
    total = 0
    for index in (gitdir / "objects" / "pack").glob("*.idx"):
        try:
            with index.open("rb") as handle:
                head = handle.read(8)
                # version 2 starts with a magic number and version, then the table
                handle.seek(8 + 255 * 4 if head[:4] == b"\377tOc" else 255 * 4)
                count = handle.read(4)
        except OSError:
            continue
        if len(count) == 4:
            total += int.from_bytes(count, "big")
    return total


def _describe(raw: bytes) -> TipInfo:
    """A commit's time, first message line and kind, from its raw bytes (the message's
    declared encoding is whatever the pusher wrote: decoded leniently)."""
    headers, _, message = raw.partition(b"\n\n")
    when: int | None = None
    snapshot = False
    for line in headers.split(b"\n"):
        if line.startswith(b"committer "):
            email = line[line.find(b"<") + 1 : line.rfind(b">")] if b"<" in line else b""
            snapshot = email == SIGNATURE_EMAIL.encode()
            stamp = line[line.rfind(b">") + 1 :].split()
            when = int(stamp[0]) if stamp and stamp[0].isdigit() else None
            break
    else:
        return UNREADABLE
    text = message[:_SUMMARY_BYTES].decode("utf-8", "replace")
    return TipInfo(when, text.splitlines()[0] if text.strip() else "", snapshot)


def _origin(url: str) -> str:
    """scheme://host[:port] of `url`, the unit the token is bound to."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")


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
    if "cannot redirect" in lowered:
        return redirected_elsewhere(message)
    if "429" in lowered or "too many requests" in lowered:
        return rate_limited(message)
    if "403" in lowered:
        return access_refused(message)
    if any(s in lowered for s in ("401", "authentication", "credentials")):
        return token_refused(message)
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
            "no commit object",  # a tag the remote holds with another object: never forced
        )
    ):
        return PushRejected(f"The remote refused the push ({message}).")
    if "timed out" in lowered or "timeout" in lowered:
        return RemoteUnavailable(f"The remote stopped answering ({message}).")
    return RemoteUnavailable(f"The remote could not be reached ({message}).")
