"""Publishing the workspace's work as a branch for a pull request: one commit that holds the
workspace's tree (less what the sync never owns) on top of the commit the work started from.

The engine's publish job runs this module's steps on its git thread, in order: `check_request`
(bad input is refused before anything happens), `resolve_source` (the snapshot to publish: the
latest, or one named by its id or by a version), `find_base` (the commit the snapshot records
as its base, once the engine fetched it if a shallow restore left it out), `make_commit`. The
network parts (listing the remote, fetching, pushing, GitHub's API) run elsewhere.

**Whose branch it is.** A publish commit carries the trailer `Gitsync-Published-From: <sync
branch>`. A remote branch whose tip carries this workspace's sync branch was published from it
before (in this session or an earlier one: a stateless workspace keeps no record of its own
that outlives it), and publishing again adds one commit on top: a fast-forward, so an open pull
request follows. Any other existing branch is refused. The trailer only ever permits adding a
commit to a branch, never rewriting one (pushes never force), so a forged one costs its forger
nothing but an extra commit on their own branch.

**The tree.** The snapshot's tree, where every path the sync does not own here keeps what the
base commit has (or is left out when the base has none): excluded paths (a file synced before
it was excluded stays in the sync index, never updated) and paths a restore withheld (not on
disk here: not this workspace's work). So the pull request shows the user's work and nothing
else.

Blocking; no asyncio.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pygit2
import pygit2.enums

from . import filters, rescues, versions
from .errors import ConfigError, GitSyncError, NotFound
from .repository import (
    FETCHED_PREFIX,
    SIGNATURE_EMAIL,
    SyncRepository,
    is_snapshot,
    validate_branch,
)

log = logging.getLogger(__name__)

PUBLISHED_TRAILER = "Gitsync-Published-From"
PUBLISH_PREFIX = "refs/gitsync/publish/"  # the commit waits here for its push (git thread)
PUBLISHED_FETCH_REF = f"{FETCHED_PREFIX}published"  # a published branch's tip (transport)
MAX_TITLE_CHARS = 256
MAX_BODY_CHARS = 65536  # what GitHub takes as a pull request's body
SYNC_NAMESPACE = "gitsync/"
# The e-mail of a publish commit when git has no user.email: not the snapshots' address, or the
# branch would look like a sync branch (a commit with that committer is a snapshot).
UNKNOWN_EMAIL = "unknown@localhost"
_SHA_PREFIX = re.compile(r"[0-9a-f]{4,40}")


@dataclass(frozen=True)
class Request:
    """What the user asked to publish: a branch name, a title and a description, and what
    (`source`: a snapshot's id or a version's name; None: the workspace now)."""

    branch: str
    title: str
    body: str = ""
    source: str | None = None

    @property
    def ref(self) -> str:
        return f"refs/heads/{self.branch}"

    @property
    def local_ref(self) -> str:
        """Where the publish commit waits for its push."""
        return f"{PUBLISH_PREFIX}{self.branch}"


@dataclass(frozen=True)
class Base:
    """The commit the work started from (None: it started from nothing) and the branch the
    user's HEAD was on then (the pull request's base, when known)."""

    commit: pygit2.Oid | None
    branch: str | None


@dataclass(frozen=True)
class Made:
    """The commit to push: `new` False when the branch already holds this tree (nothing to
    push); `root` when it starts a history of its own (no base)."""

    commit: pygit2.Oid
    new: bool
    root: bool


def check_request(request: Request, sync_branch: str) -> None:
    """Refuse, in plain words (ConfigError, HTTP 400), a request that cannot be published,
    before anything is done: no title, or a branch name git refuses or that belongs to the
    sync (the sync branch, any gitsync/... branch, a rescue branch)."""
    title = request.title.strip()
    if not title:
        raise ConfigError("A pull request needs a title.")
    if len(title) > MAX_TITLE_CHARS:
        raise ConfigError(f"The title is longer than {MAX_TITLE_CHARS} characters.")
    if any(c in title for c in "\r\n"):
        raise ConfigError("The title is one line.")
    if "\0" in title + request.body:
        raise ConfigError("Neither the title nor the description may hold a NUL character.")
    if len(request.body) > MAX_BODY_CHARS:
        raise ConfigError(f"The description is longer than {MAX_BODY_CHARS} characters.")
    name = request.branch
    try:
        validate_branch(name)
    except ConfigError:
        raise ConfigError(f"{name!r} is not a name git takes for a branch.") from None
    if name.startswith("-") or name == "HEAD":
        raise ConfigError(f"{name!r} is not a name git takes for a branch.")
    if name == sync_branch:
        raise ConfigError(
            f"{name} is the branch this workspace syncs to; publish to a branch of its own."
        )
    if name.startswith(SYNC_NAMESPACE) or rescues.belongs_to(request.ref, sync_branch):
        raise ConfigError(
            f"Branches under {SYNC_NAMESPACE} (and rescue branches) belong to the sync; choose"
            " another name."
        )


def check_not_base(branch: str, bases: Iterable[str | None]) -> None:
    """Refuse to publish onto the branch the work is based on (or the remote's default
    branch): a pull request needs a branch of its own."""
    for base in bases:
        if base is not None and branch == base.removeprefix("refs/heads/"):
            raise ConfigError(
                f"{branch} is the branch your work is based on; a pull request into it needs a"
                " branch of its own. Choose another name."
            )


def resolve_source(repo: SyncRepository, source: str | None) -> pygit2.Oid:
    """The snapshot to publish: the sync branch's tip (None), a version (an annotated tag
    refs/tags/<sync branch>/<name>), or a snapshot of the sync branch named by its id (or an
    unambiguous prefix). NotFound (404) for anything else."""
    repo.refresh_history()
    git, tip = repo.repo, repo.tip()
    if source is None:
        if tip is None:
            raise GitSyncError("There is nothing to publish yet: the workspace has no snapshot.")
        return tip
    unknown = NotFound(f"There is no snapshot or version {source!r} of {repo.branch} here.")
    version = versions.find(git, repo.branch, source)
    if version is not None:
        return version
    if tip is None or not _SHA_PREFIX.fullmatch(source):
        raise unknown
    try:
        found = git.get(source)
    except (ValueError, KeyError):  # an ambiguous prefix
        raise unknown from None
    if not isinstance(found, pygit2.Commit) or not is_snapshot(found):
        raise unknown
    oid = pygit2.Oid(hex=str(found.id))
    if not repo.is_ancestor(oid, tip):
        raise unknown
    return oid


def find_base(repo: SyncRepository, snapshot: pygit2.Oid) -> Base:
    """The commit `snapshot`'s work started from, checked (`SyncRepository.base_of`: a
    commit here, in the snapshot's history), and its branch. A snapshot that records no base
    (the workspace started empty) has none; one whose base is not here, or not in its history,
    is refused: a pull request on the wrong parent would show changes nobody made."""
    repo.refresh_history()
    recorded = repo.recorded_base(snapshot)
    base, head = repo.base_of(snapshot)
    if base is None and (recorded.base is not None or recorded.cut):
        named = f" ({str(recorded.base)[:12]})" if recorded.base is not None else ""
        raise GitSyncError(
            f"The commit your work started from{named} is not in this workspace and the remote"
            " did not send it, so the pull request would have no parent to compare with."
            " Nothing was published."
        )
    branch = head.removeprefix("refs/heads/") if head is not None else None
    return Base(base, branch)


def published_tree(
    repo: SyncRepository,
    snapshot: pygit2.Oid,
    base: pygit2.Oid | None,
    excludes: Iterable[str],
    withheld: Mapping[str, str],
) -> pygit2.Oid:
    """`snapshot`'s tree where each excluded or withheld path keeps the base's entry (or is
    left out); see the module's docstring. Only paths that differ from the base are looked at
    (a tree diff skips unchanged folders), so this costs what the work changed."""
    git = repo.repo
    tree = git[snapshot].peel(pygit2.Commit).tree
    base_tree = git[base].peel(pygit2.Commit).tree if base is not None else None
    index = pygit2.Index()
    index.read_tree(tree)
    if base_tree is None:
        paths = {entry.path for entry in index}
    else:
        paths = set()
        for delta in base_tree.diff_to_tree(tree).deltas:
            paths.update((delta.old_file.path, delta.new_file.path))
    patterns = tuple(excludes)
    for path in sorted(paths):
        if not (filters.is_excluded(path, patterns) or path in withheld):
            continue
        if path in index:
            index.remove(path)
        kept = _blob_entry(base_tree, path) if base_tree is not None else None
        if kept is not None:
            index.add(kept)
    written: pygit2.Oid = index.write_tree(git)
    return written


def _blob_entry(tree: pygit2.Tree, path: str) -> pygit2.IndexEntry | None:
    try:
        entry = tree[path]
    except KeyError:
        return None
    if entry.type == pygit2.enums.ObjectType.TREE:
        return None
    return pygit2.IndexEntry(path, entry.id, entry.filemode)


def commit_message(title: str, body: str, sync_branch: str) -> str:
    """Title, a blank line, the description, and the trailer that marks the commit as
    published from `sync_branch`."""
    parts = [title.strip()]
    text = body.replace("\r\n", "\n").strip()
    if text:
        parts.append(text)
    parts.append(f"{PUBLISHED_TRAILER}: {sync_branch}")
    return "\n\n".join(parts) + "\n"


def published_from(raw_commit: bytes | None) -> str | None:
    """The sync branch a raw commit object says it was published from: the trailer, alone on
    its line in the message's last paragraph, naming a valid branch; else None. Whoever
    pushed the commit wrote it (see the module's docstring for what it permits)."""
    if raw_commit is None:
        return None
    message = raw_commit.partition(b"\n\n")[2].decode("utf-8", "replace")
    last = message.strip().replace("\r\n", "\n").split("\n\n")[-1]
    for line in last.splitlines():
        key, separator, value = line.partition(": ")
        if key == PUBLISHED_TRAILER and separator:
            value = value.strip()
            valid = value and pygit2.reference_is_valid_name(f"refs/heads/{value}")
            return value if valid else None
    return None


def raw_commit(repo: SyncRepository, oid: pygit2.Oid) -> bytes | None:
    """A commit object's raw bytes, if it is here."""
    if oid not in repo.repo.odb:
        return None
    kind, data = repo.repo.odb.read(oid)
    return bytes(data) if kind == pygit2.enums.ObjectType.COMMIT else None


def make_commit(
    repo: SyncRepository,
    request: Request,
    snapshot: pygit2.Oid,
    base: Base,
    on_top: pygit2.Oid | None,
    excludes: Iterable[str],
    withheld: Mapping[str, str],
) -> Made:
    """Write the publish commit and point `request.local_ref` at it (see `Made`).

    Its parent is the base commit, or `on_top`, the branch's tip when this workspace published
    to it before (with the base as a second parent if the work has a newer base since: the pull
    request then shows the work, not what the base brought). Author and committer are the user.
    """
    git = repo.repo
    tree = published_tree(repo, snapshot, base.commit, excludes, withheld)
    if on_top is not None:
        previous = git[on_top].peel(pygit2.Commit)
        if previous.tree_id == tree:
            return Made(on_top, new=False, root=False)
        parents = [on_top]
        if base.commit is not None and not repo.is_ancestor(base.commit, on_top):
            parents.append(base.commit)
    elif base.commit is not None:
        if git[base.commit].peel(pygit2.Commit).tree_id == tree:
            raise GitSyncError(
                "Nothing to publish: the workspace holds no changes from the commit its work"
                " started from."
            )
        parents = [base.commit]
    else:
        if len(git[tree].peel(pygit2.Tree)) == 0:
            raise GitSyncError("Nothing to publish: the workspace holds no files to sync.")
        parents = []
    name, email = repo.author()
    user = pygit2.Signature(name, UNKNOWN_EMAIL if email == SIGNATURE_EMAIL else email)
    message = commit_message(request.title, request.body, repo.branch)
    oid = git.create_commit(None, user, user, message, tree, parents)
    git.references.create(request.local_ref, oid, force=True)
    log.debug("gitsync: publish commit %s for %s", oid, request.branch)
    return Made(oid, new=True, root=not parents)


def forget(repo: SyncRepository, request: Request) -> None:
    """Drop the ref the publish commit waited on (pushed, or given up on)."""
    reference = repo.repo.references.get(request.local_ref)
    if reference is not None:
        reference.delete()
