"""The workspace's repository as the engine sees it: opening (or creating) it, the one-engine
lock, the sync branch's refs, the user's HEAD, and packing.

Blocking; the engine calls it on its git thread. The sync branch lives here and only here
(`branch`); the engine changes it through `switch_branch` / `rename_branch` in its jobs.

Ref ownership, so that two threads never write the same ref:
- the git thread (this class, `snapshots`, `merging`, `publish`) writes
  `refs/heads/<sync branch>`, rescue branches, and `refs/gitsync/publish/*` (a publish commit
  waiting for its push);
- the transport thread (`transport`) writes what it learned from the remote:
  `refs/gitsync/remote/<branch>` and `refs/gitsync/fetched/*`, and `.git/shallow`.

**Shallow history.** Restore fetches a remote tip with little or none of its history (see
`restore.History`), so the repository may be shallow: `.git/shallow` lists the commits whose
parents were not fetched, and libgit2 shows them without parents. libgit2 reads that file when a
`pygit2.Repository` is opened and never again, so this object opens the repository anew when the
file changed (`refresh_history`). A commit object still names its real parents, and some are
here (every snapshot's second parent is its base commit): `is_ancestor` and `merge_bases`
follow those links too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import getpass
import logging
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pygit2
import pygit2.enums

from . import _native, packs
from .errors import ConfigError, WorkspaceError
from .rescues import RescueBranches

log = logging.getLogger(__name__)

SIGNATURE_NAME = "Jupyter GitSync"
SIGNATURE_EMAIL = "gitsync@localhost"  # a commit with this committer is a snapshot
BASE_TRAILER = "Gitsync-Base"
HEAD_TRAILER = "Gitsync-Head"
SESSION_TRAILER = "Gitsync-Session"  # which session made a snapshot: a label, see session_label
TRACKING_PREFIX = "refs/gitsync/remote/"
FETCHED_PREFIX = "refs/gitsync/fetched/"

_TRAILER_SEARCH_DEPTH = 1000  # snapshots walked back from a merge to find its base
_FULL_SHA = re.compile(r"[0-9a-f]{40}")
MAX_SESSION_LABEL_CHARS = 80
MAX_MESSAGE_CHARS = 2000  # of a commit or tag message as shown
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_OUR_TRAILERS = tuple(f"{t}:" for t in (BASE_TRAILER, HEAD_TRAILER, SESSION_TRAILER))
# What a session label may hold: a host or server name, a time. Anything else in a trailer came
# from somebody else's push and is not shown.
_SESSION_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._:@+/-]*")
_STAGED_KEPT = "You have staged changes, so your HEAD and index were left as they are."

# progress(phase, done, total, bytes): called on a worker thread during long work
Progress = Callable[[str, int, int, int], None]

# How libgit2 maps pack files (process-wide; see `limit_pack_mappings`).
PACK_WINDOW_BYTES = 1 << 20
PACK_MAPPED_LIMIT_BYTES = 4 << 20


def limit_pack_mappings() -> None:
    """Have libgit2 (in this whole process) map pack files in windows of 1 MiB and unmap the
    least recently used ones beyond 4 MiB mapped. Its defaults on 64-bit are windows of 1 GiB
    and up to 8 GiB mapped, and every page of a pack it reads stays mapped and counts in the
    process's RSS: a restore reads the whole tip (screening it, then checking it out), so it
    held the whole fetched pack.

    Measured on a restore of 50,000 files (103 MB, benchmarks P3) into an empty directory on
    tmpfs, three runs each: peak RSS 106 MB with the defaults, 63.5 MB with these (67 MB
    with an 8 MiB limit), `git clone --depth 1` 59 MB; CPU time the same within the runs'
    spread (user+sys 5.1-5.4 s with the defaults, 4.9-5.6 s with these). The fetch itself
    peaked at 40 MB either way (libgit2's indexer writes the pack it receives).

    The server does not set it: it reads history across large packs, and a page of 500
    snapshots of a 320 MB pack took 31-37 ms with these windows against 14-15 ms with the
    defaults (which held 166 MB against 42 MB)."""
    pygit2.settings.mwindow_size = PACK_WINDOW_BYTES
    pygit2.settings.mwindow_mapped_limit = PACK_MAPPED_LIMIT_BYTES


@dataclass(frozen=True)
class Heads:
    """Where the sync branch stands locally and on the remote, as far as we know."""

    head: str | None
    remote_head: str | None
    unpushed: int


@dataclass(frozen=True)
class RecordedBase:
    """What a snapshot's trailers say: the commit the user's HEAD was on (a full id, not yet
    checked) and its branch; `cut` when the snapshot that carries them is beyond where the
    history here stops."""

    base: pygit2.Oid | None
    head: str | None
    cut: bool = False


def validate_branch(branch: str) -> str:
    """Return the full ref name of `branch`, or raise ConfigError in plain words."""
    ref = f"refs/heads/{branch}"
    if not branch or not pygit2.reference_is_valid_name(ref):
        raise ConfigError(f"{branch!r} is not a valid git branch name.")
    return ref


def tracking_ref(branch: str) -> str:
    """Where the remote's tip of `branch` is kept once seen (written by the transport)."""
    return f"{TRACKING_PREFIX}{branch}"


def sanitize_ref_component(name: str) -> str:
    """Turn a user name into something that is valid inside a branch name."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip(".-")
    return cleaned or "user"


def default_user() -> str:
    """JupyterHub's user name, else the OS user, made safe for a branch name (the default
    sync branch is gitsync/<this>)."""
    user = os.environ.get("JUPYTERHUB_USER")
    if not user:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "user"
    return sanitize_ref_component(user)


def session_label(started: dt.datetime | None = None) -> str:
    """A short human label for this session, written into each snapshot it makes: the
    JupyterHub server's name (the user's name, plus the named server's) or else the host's,
    and when the session started (UTC, to the second, so two sessions on one host differ)."""
    user = os.environ.get("JUPYTERHUB_USER", "")
    server = os.environ.get("JUPYTERHUB_SERVER_NAME", "")
    where = f"{user}/{server}" if user and server else user or socket.gethostname() or "session"
    when = (started or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    where = re.sub(r"[^A-Za-z0-9._:@+/-]+", "-", where).strip("-") or "session"
    room = MAX_SESSION_LABEL_CHARS - len(" 2026-12-01T22:33:44Z")
    return f"{where[:room]} {when:%Y-%m-%dT%H:%M:%SZ}"


def valid_session_label(value: str | None) -> str | None:
    """`value` if it reads as a session label, else None: trailers come from whoever pushed
    (control characters, megabytes, markup), and are only shown when they are plain."""
    if value is None or len(value) > MAX_SESSION_LABEL_CHARS:
        return None
    return value if _SESSION_LABEL.fullmatch(value) else None


def session_of(message: bytes) -> str | None:
    """The session label a raw commit message records, validated (see valid_session_label)."""
    prefix = f"{SESSION_TRAILER}: ".encode()
    for line in message.splitlines():
        if line.startswith(prefix):
            try:
                return valid_session_label(line[len(prefix) :].decode("utf-8").strip())
            except UnicodeDecodeError:
                return None
    return None


# -- text from commits, as shown (whoever pushed a commit wrote it) -------------------------


def message_of(raw: bytes) -> str:
    """A commit or tag message as shown: without our trailers, printable, shortened."""
    text = decoded(raw[: MAX_MESSAGE_CHARS * 4])
    lines = [line for line in text.splitlines() if not line.startswith(_OUR_TRAILERS)]
    return printable("\n".join(lines).strip(), MAX_MESSAGE_CHARS)


def printable(text: str, limit: int) -> str:
    """`text` without control or bidirectional-override characters (newlines and tabs stay),
    at most `limit` characters."""
    cleaned = _UNPRINTABLE.sub("\ufffd", text)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def decoded(raw: bytes) -> str:
    """Bytes from a commit as text (any pusher writes them: undecodable bytes replaced)."""
    return raw.decode("utf-8", "replace")


def iso_time(unix_seconds: int) -> str | None:
    """A commit's time in ISO 8601, UTC (None for a date no calendar has: any push may write
    any date)."""
    try:
        return dt.datetime.fromtimestamp(unix_seconds, dt.timezone.utc).isoformat()
    except (OverflowError, OSError, ValueError):
        return None


def author_of(repo: pygit2.Repository) -> tuple[str, str]:
    """The user's name and e-mail from the repository's git config, else the hub user."""
    config = repo.config
    try:
        return str(config["user.name"]), str(config["user.email"])
    except KeyError:
        user = os.environ.get("JUPYTERHUB_USER") or SIGNATURE_NAME
        return user, SIGNATURE_EMAIL


def is_snapshot(commit: pygit2.Commit) -> bool:
    """True for a commit this extension wrote."""
    # raw bytes: decoding follows the commit's declared encoding, which any pusher may make up
    try:
        return bool(commit.committer.raw_email == SIGNATURE_EMAIL.encode())
    except ValueError:  # pygit2's InvalidError: a committer line that does not parse
        return False


def shallow_roots(gitdir: Path) -> set[pygit2.Oid]:
    """The commits of a shallow repository whose parents were not fetched (`.git/shallow`)."""
    try:
        lines = (gitdir / "shallow").read_text(encoding="ascii", errors="replace").split()
    except FileNotFoundError:
        return set()
    return {pygit2.Oid(hex=line) for line in lines if _FULL_SHA.fullmatch(line)}


def raw_parents(repo: pygit2.Repository, oid: pygit2.Oid) -> list[pygit2.Oid]:
    """The parents a commit object names, also where a shallow fetch left them out (libgit2
    then shows none); [] for an object that is not here or not a commit."""
    if oid not in repo.odb:
        return []
    kind, data = repo.odb.read(oid)
    if kind != pygit2.enums.ObjectType.COMMIT:
        return []
    parents = []
    for line in data.split(b"\n"):
        if not line.startswith((b"tree ", b"parent ")):
            break  # the headers that name parents come first
        if line.startswith(b"parent ") and _FULL_SHA.fullmatch(line[7:].decode("ascii", "replace")):
            parents.append(pygit2.Oid(hex=line[7:].decode()))
    return parents


def _stamp(path: Path) -> bytes | None:
    """What `.git/shallow` says now: its content, not its stat data (a rewrite of the same size
    within one tick of the file system's clock, into a reused inode, looks unchanged by stat)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


class SyncRepository:
    """The workspace's git repository, one object per thread that uses it."""

    def __init__(self, workspace: Path, branch: str) -> None:
        self.workspace = workspace.resolve()
        validate_branch(branch)
        self.branch = branch
        self.repo = self._open_or_init()
        self.gitdir = Path(self.repo.path)
        self._shallow_stamp = _stamp(self.gitdir / "shallow")
        self.private_dir = self.gitdir / "gitsync"
        self._engine_lock = self._lock_engine()
        self._remove_leftovers()
        self.rescues = RescueBranches(self.repo, self.private_dir)

    # -- where the history stops ----------------------------------------------------------------

    def refresh_history(self) -> bool:
        """Open the repository anew if a fetch changed where its history stops, so that walks
        end at the commits `.git/shallow` lists instead of failing on a parent that is not
        here. Objects built on `repo` follow (`Snapshotter.git`). True if it was reopened."""
        stamp = _stamp(self.gitdir / "shallow")
        if stamp == self._shallow_stamp:
            return False
        self._shallow_stamp = stamp
        self.repo = pygit2.Repository(str(self.workspace))
        self.rescues = RescueBranches(self.repo, self.private_dir)  # its records are on disk
        return True

    @property
    def is_shallow(self) -> bool:
        return bool(self.repo.is_shallow)

    # -- the sync branch ------------------------------------------------------------------------

    @property
    def sync_ref(self) -> str:
        return f"refs/heads/{self.branch}"

    @property
    def tracking_ref(self) -> str:
        return tracking_ref(self.branch)

    def switch_branch(self, branch: str) -> None:
        """Write snapshots to `branch` from now on (what is on it locally continues)."""
        validate_branch(branch)
        self.branch = branch

    def rename_branch(self, branch: str) -> None:
        """Sync to `branch` from now on, taking along local snapshots that were never pushed."""
        validate_branch(branch)
        tip = self.tip()
        never_pushed = self.ref_target(self.tracking_ref) is None
        old = self.repo.references.get(self.sync_ref)
        self.branch = branch
        if tip is not None and self.tip() is None:
            self.repo.references.create(self.sync_ref, tip)
            if never_pushed and old is not None:
                old.delete()

    def ref_target(self, name: str) -> pygit2.Oid | None:
        ref = self.repo.references.get(name)
        return None if ref is None else pygit2.Oid(hex=str(ref.resolve().target))

    def tip(self) -> pygit2.Oid | None:
        """The local sync branch tip."""
        return self.ref_target(self.sync_ref)

    def heads(self) -> Heads:
        """Local snapshot head, the remote head we last saw, and the snapshots in between."""
        self.refresh_history()  # the engine reads the heads after every job
        tip = self.tip()
        remote = self.ref_target(self.tracking_ref)
        unpushed = 0
        if tip is not None and tip != remote:
            walker = self.repo.walk(tip)
            walker.simplify_first_parent()
            if remote is not None:
                walker.hide(remote)
            for commit in walker:
                if not is_snapshot(commit):
                    break
                unpushed += 1
        return Heads(
            head=str(tip) if tip else None,
            remote_head=str(remote) if remote else None,
            unpushed=unpushed,
        )

    def create_rescue_branch(
        self, name: str, commit: pygit2.Oid, paths: Iterable[str], pushed: bool = False
    ) -> None:
        """Keep `commit` on branch `name`, locally and (at the next push, unless the remote
        has it already) on the remote; `paths` are the files it is there for."""
        self.rescues.add(validate_branch(name), commit, paths, pushed)

    @property
    def rescue_refs(self) -> list[str]:
        """Rescue branches still to push."""
        return self.rescues.unpushed()

    # -- commits ------------------------------------------------------------------------------

    def is_snapshot_commit(self, oid: pygit2.Oid) -> bool:
        return is_snapshot(self.repo[oid].peel(pygit2.Commit))

    def is_ancestor(self, ancestor: pygit2.Oid, commit: pygit2.Oid) -> bool:
        """True if `ancestor` is `commit` or in its history as far as the commits here show
        (False if unknown here). Where a shallow fetch cut the history, the parents the cut
        commits name count when they are here."""
        if ancestor == commit or self.descends(commit, ancestor):
            return True
        return self.is_shallow and self._through_cuts(ancestor, commit)

    def descends(self, commit: pygit2.Oid, ancestor: pygit2.Oid) -> bool:
        """libgit2's view: `commit` reaches `ancestor` through parents it shows (a merge base
        is found in this view only)."""
        try:
            return bool(self.repo.descendant_of(commit, ancestor))
        except (pygit2.GitError, KeyError, ValueError):  # a commit not here
            return False

    def _through_cuts(self, ancestor: pygit2.Oid, commit: pygit2.Oid) -> bool:
        """Whether `commit` reaches `ancestor` through a commit whose parents libgit2 hides
        (it is in `.git/shallow`) and one of its named parents that is here. Each cut commit
        is looked at once, so this ends."""
        roots = shallow_roots(self.gitdir)
        todo: list[pygit2.Oid] = [commit]
        seen: set[pygit2.Oid] = set()
        while todo:
            start = todo.pop()
            for root in roots - seen:
                if root != start and not self.descends(start, root):
                    continue
                seen.add(root)
                for parent in raw_parents(self.repo, root):
                    if parent == ancestor or self.descends(parent, ancestor):
                        return True
                    if parent in self.repo:
                        todo.append(parent)
        return False

    def merge_bases(self, one: pygit2.Oid, two: pygit2.Oid) -> list[pygit2.Oid]:
        """The best common ancestors of two commits (usually one; [] if none is here), by the
        parents each commit names, libgit2's preferred one first.

        libgit2 alone is not enough in a shallow history: a commit where the history was cut
        shows no parents, so an older common commit in its history that is here by another
        path (the launch commit, every snapshot's second parent) looks unrelated to it; libgit2
        then has two merge bases it cannot order and picks by commit date, which clocks and
        pushers set. So the cut commits and the parents they name that are here count as
        candidates too, and a candidate in the history of another one drops out."""
        candidates = dict.fromkeys(_native.merge_bases(self.repo, one, two))
        if self.is_shallow:
            for root in sorted(shallow_roots(self.gitdir), key=str):
                for oid in (root, *raw_parents(self.repo, root)):
                    here = oid in self.repo
                    if here and self.is_ancestor(oid, one) and self.is_ancestor(oid, two):
                        candidates.setdefault(oid)
        return [
            oid
            for oid in candidates
            if not any(other != oid and self.is_ancestor(oid, other) for other in candidates)
        ]

    def base_of(self, snapshot: pygit2.Oid) -> tuple[pygit2.Oid | None, str | None]:
        """The commit the user's HEAD was on when `snapshot` was made, and the branch name.

        Read from the snapshot's trailers, which whoever pushed it wrote: a base counts only
        as the full id of a commit here in the snapshot's history, a branch only under
        refs/heads/ with a valid name. A merge snapshot (no trailers) takes those of the
        snapshot it continues."""
        recorded = self.recorded_base(snapshot)
        head = recorded.head
        if head is not None and not (
            head.startswith("refs/heads/") and pygit2.reference_is_valid_name(head)
        ):
            head = None
        base = recorded.base
        if base is not None and (base not in self.repo or not self.is_ancestor(base, snapshot)):
            base = None
        return base, head

    def recorded_base(self, snapshot: pygit2.Oid) -> RecordedBase:
        """What `snapshot` says its base is, unchecked (see `base_of`): the trailers of the
        snapshot, or of the one a merge snapshot continues (its first parent, and so on)."""
        commit = self.repo[snapshot].peel(pygit2.Commit)
        for _ in range(_TRAILER_SEARCH_DEPTH):
            trailers = _trailers(commit)
            if trailers or not is_snapshot(commit):
                break
            if not commit.parent_ids:  # a root, or the history here stops
                first = next(iter(raw_parents(self.repo, commit.id)), None)
                return RecordedBase(None, None, cut=first is not None)
            commit = self.repo[commit.parent_ids[0]].peel(pygit2.Commit)
        if not is_snapshot(commit):
            return RecordedBase(commit.id, None)  # a plain commit (say, main) is its own base
        base_hex, head = trailers.get(BASE_TRAILER), trailers.get(HEAD_TRAILER)
        if base_hex is None or not _FULL_SHA.fullmatch(base_hex):
            return RecordedBase(None, head)
        return RecordedBase(pygit2.Oid(hex=base_hex), head)

    def author(self) -> tuple[str, str]:
        """The user's name and e-mail from git config, else the hub user."""
        return author_of(self.repo)

    # -- the user's HEAD ------------------------------------------------------------------------

    def user_head(self) -> pygit2.Oid | None:
        """The commit the user's HEAD is on, or None on an unborn branch."""
        try:
            return None if self.repo.head_is_unborn else pygit2.Oid(hex=str(self.repo.head.target))
        except pygit2.GitError:
            return None

    def user_head_ref(self) -> str | None:
        """The branch the user's HEAD is on (None when detached)."""
        if self.repo.head_is_detached:
            return None
        return str(self.repo.references["HEAD"].target)

    def set_user_head(self, commit: pygit2.Oid, branch_ref: str | None) -> str | None:
        """Put the user's HEAD on `commit`, on `branch_ref` if given, so that `git status`
        shows exactly the user's own work as changes against the commit they had. Restore and
        resume do this; the user's refs are the user's, so:

        - a branch is created, or moved only as a fast-forward: one with commits that
          `commit` lacks stays where it is (and HEAD with it);
        - the user's index is rewritten only when nothing is staged in it.

        Returns a sentence for the user when something was left as it was, else None.
        """
        user = pygit2.Repository(str(self.workspace))  # its own object: the user's index
        staged = _has_staged_changes(user)
        if branch_ref and pygit2.reference_is_valid_name(branch_ref):
            existing = user.references.get(branch_ref)
            if existing is not None:
                tip = pygit2.Oid(hex=str(existing.resolve().target))
                if tip != commit and not self.is_ancestor(tip, commit):
                    name = branch_ref.removeprefix("refs/heads/")
                    return (
                        f"Your branch {name} has commits the restored work was not based on;"
                        " it was left where it is."
                    )
                if staged and tip != commit:
                    return (
                        "You have staged changes, so your branch and index were left as they are."
                    )
            elif staged:
                return "You have staged changes, so your branch and index were left as they are."
            user.references.create(branch_ref, commit, force=True)
            user.set_head(branch_ref)
        elif staged:
            return _STAGED_KEPT
        else:
            user.set_head(commit)
        if not staged:
            index = user.index
            index.read_tree(user[commit].peel(pygit2.Tree))
            index.write()
        return None

    def origin_url(self) -> str | None:
        """The URL of the workspace's `origin` remote, if it has one."""
        try:
            return self.repo.remotes["origin"].url
        except (KeyError, ValueError):
            return None

    # -- opening, locking, packing -------------------------------------------------------------

    def _open_or_init(self) -> pygit2.Repository:
        if not self.workspace.is_dir():
            raise WorkspaceError(f"The workspace {self.workspace} does not exist.")
        try:
            if (self.workspace / ".git").exists():
                return pygit2.Repository(str(self.workspace))
            log.info("workspace is not a git repository yet; initialising it")
            return pygit2.init_repository(str(self.workspace), initial_head="main")
        except (pygit2.GitError, OSError) as exc:
            raise WorkspaceError(
                f"Cannot open or create a git repository in {self.workspace}: {exc}"
            ) from exc

    def _lock_engine(self) -> IO[bytes]:
        """One engine per repository: an exclusive lock the OS drops when the process dies
        (even by kill -9), so a crashed session never blocks the next one. Held as long as
        this object lives."""
        path = self.private_dir / "engine.lock"
        try:
            path.parent.mkdir(exist_ok=True)
            handle = path.open("ab")
        except OSError as exc:
            raise WorkspaceError(f"Cannot write to {path.parent}: {exc.strerror}") from exc
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise ConfigError(
                "Another Jupyter server is already syncing this workspace; this one will not,"
                " so that they do not write over each other."
            ) from None
        return handle

    def close(self) -> None:
        """Release the engine lock (the OS also does when the process ends)."""
        self._engine_lock.close()

    def _remove_leftovers(self) -> None:
        """Lock files and temporary pack files of ours that a killed process left behind. We
        hold the engine lock, so no live process of ours is writing them; the user's own locks
        and git's own temporary files are not ours to touch."""
        candidates = [self.private_dir / "index.lock"]
        for ref in (self.sync_ref, self.tracking_ref):
            candidates.append(self.gitdir / f"{ref}.lock")
        for lock in candidates:
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
                log.warning("gitsync: removed a stale lock left by a stopped process: %s", lock)
        try:
            removed = packs.remove_leftovers(self.gitdir / "objects" / "pack")
        except OSError as exc:  # the next start tries again; nothing depends on them
            log.warning("gitsync: cannot remove temporary pack files: %s", exc)
            return
        if removed:
            log.warning(
                "gitsync: removed %d unfinished pack files of a stopped process", len(removed)
            )

    def maintain(self) -> None:
        """Pack loose objects now and then, so that .git stays bounded (100 saves of a large
        notebook are 100 loose copies until packed, and packed they delta to little). Uses the
        git CLI's own maintenance when git is installed."""
        git = shutil.which("git")
        if git is None:
            return
        env = {**os.environ, "GIT_DIR": str(self.gitdir)}
        for command in (["repack", "-d", "-q"], ["gc", "--auto", "--quiet"]):
            subprocess.run([git, *command], env=env, capture_output=True, check=False)


def _trailers(commit: pygit2.Commit) -> dict[str, str]:
    """The Gitsync-* trailers of a commit message (raw: its encoding is the pusher's word)."""
    return trailers(commit.raw_message)


def trailers(message: bytes) -> dict[str, str]:
    """The Gitsync-* trailers in a raw commit message."""
    found: dict[str, str] = {}
    for line in message.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(": ")
        if key in (BASE_TRAILER, HEAD_TRAILER):
            found[key] = value.strip()
    return found


def base_trailer(raw_commit: bytes) -> pygit2.Oid | None:
    """The base commit a raw commit object's trailers name (a full id; unchecked: for
    planning a fetch before the commit is here)."""
    base = trailers(raw_commit.partition(b"\n\n")[2]).get(BASE_TRAILER)
    return pygit2.Oid(hex=base) if base is not None and _FULL_SHA.fullmatch(base) else None


def _has_staged_changes(user: pygit2.Repository) -> bool:
    """Whether the user's index differs from their HEAD (an unborn HEAD: any entry at all)."""
    index = user.index
    if user.head_is_unborn:
        return len(index) > 0
    head_tree = user.head.peel(pygit2.Commit).tree
    return len(index.diff_to_tree(head_tree)) > 0
