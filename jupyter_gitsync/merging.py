"""Merging two snapshots: this workspace's and the remote's. Changes that do not overlap are
combined, notebooks cell by cell (nbdime); where both changed the same thing this workspace's
version is kept whole and the other is left for a rescue branch.

Blocking; runs on the engine's git thread. It writes objects, never refs or files.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pygit2

from . import notebooks
from .repository import (
    SESSION_TRAILER,
    SIGNATURE_EMAIL,
    SIGNATURE_NAME,
    SyncRepository,
    raw_parents,
)
from .rescues import blob_at

_DISPLACED_SEARCH_DEPTH = 200  # commits walked back through a fast-forward


@dataclass(frozen=True)
class Merged:
    """The result of merging two snapshots: the merge commit and the paths both changed."""

    commit: pygit2.Oid
    conflicts: list[str]


RESCUE_TRAILER = "Gitsync-Rescue"
KEPT_PREFIX = "Kept this workspace's version of: "


def merge_snapshots(
    repo: SyncRepository,
    ours: pygit2.Oid,
    theirs: pygit2.Oid,
    rescue: str = "",
    session: str | None = None,
) -> Merged:
    """Three-way merge two snapshots into a commit on top of both. Where both changed a file
    the message names it and `rescue`, the branch the caller keeps `theirs` on, so that the
    session whose version was displaced can be told when it takes this merge in. `session`:
    the label of the session that merges (history shows it).

    The base is the best common ancestor by the parents each commit names, also across a
    shallow cut (`SyncRepository.merge_bases`), never one picked by commit date. With no merge
    base in a shallow history, the remote snapshot's recorded base commit stands in, so a
    shallow clone never turns into a false conflict.
    """
    git = repo.repo
    base = _merge_base(repo, ours, theirs)
    trees = [git[c].peel(pygit2.Tree) for c in (ours, theirs)]
    ancestor = git[base].peel(pygit2.Tree) if base is not None else _empty_tree(git)
    index = git.merge_trees(ancestor, trees[0], trees[1])
    conflicts: list[str] = []
    kept: list[str] = []
    if index.conflicts is not None:
        for base_entry, mine, other in list(index.conflicts):
            path = (mine or other).path
            del index.conflicts[path]
            merged = _merge_notebook(git, base_entry, mine, other)
            if merged is not None:
                index.add(merged)
                continue
            conflicts.append(path)
            if mine is not None:  # keep this workspace's version whole
                index.add(pygit2.IndexEntry(mine.path, mine.id, mine.mode))
                kept.append(path)
    conflicts.extend(_under_kept_files(index, kept))
    tree = index.write_tree(git)
    message = f"Merge the remote's snapshots of {repo.branch}\n"
    trailers = []
    if conflicts:
        message += f"\n{KEPT_PREFIX}{', '.join(sorted(conflicts))}\n"
        if rescue:
            trailers.append(f"{RESCUE_TRAILER}: {rescue}")
    if session:
        trailers.append(f"{SESSION_TRAILER}: {session}")
    if trailers:
        message += "\n" + "\n".join(trailers) + "\n"
    committer = pygit2.Signature(SIGNATURE_NAME, SIGNATURE_EMAIL)
    author = pygit2.Signature(*repo.author())
    commit = git.create_commit(None, author, committer, message, tree, [ours, theirs])
    return Merged(commit=commit, conflicts=sorted(conflicts))


def _merge_base(repo: SyncRepository, ours: pygit2.Oid, theirs: pygit2.Oid) -> pygit2.Oid | None:
    bases = repo.merge_bases(ours, theirs)
    if bases:
        return bases[0]
    # No common history here. The commit the remote snapshot was based on is the right base
    # when this workspace grew from it too: provably, or as far as a shallow clone (whose
    # history stops short) can tell.
    recorded = repo.base_of(theirs)[0]
    if (
        recorded is not None
        and recorded in repo.repo
        and (repo.repo.is_shallow or repo.is_ancestor(recorded, ours))
    ):
        return recorded
    return None


def _under_kept_files(index: pygit2.Index, kept: list[str]) -> list[str]:
    """A file this workspace kept where the other side has a folder (a file/folder conflict,
    which libgit2 reports on the file alone): the folder's entries go, to the rescue branch
    with the rest of that side. Returns their paths."""
    prefixes = tuple(f"{path}/" for path in kept)
    if not prefixes:
        return []
    under = [entry.path for entry in index if entry.path.startswith(prefixes)]
    for path in under:
        index.remove(path)
    return under


def _merge_notebook(
    git: pygit2.Repository,
    base: pygit2.IndexEntry | None,
    mine: pygit2.IndexEntry | None,
    other: pygit2.IndexEntry | None,
) -> pygit2.IndexEntry | None:
    """Both sides changed a notebook: merge its cells, or None if they really conflict."""
    if mine is None or other is None or not str(mine.path).endswith(".ipynb"):
        return None
    base_blob = git[base.id].peel(pygit2.Blob).data if base is not None else None
    merged = notebooks.merge(
        base_blob, git[mine.id].peel(pygit2.Blob).data, git[other.id].peel(pygit2.Blob).data
    )
    if merged is None:
        return None
    return pygit2.IndexEntry(mine.path, git.create_blob(merged), mine.mode)


def _empty_tree(git: pygit2.Repository) -> pygit2.Tree:
    return git[git.TreeBuilder().write()].peel(pygit2.Tree)


def rescue_branch_name(branch: str, commit: pygit2.Oid) -> str:
    """Where a snapshot that could not be merged is kept, e.g.
    gitsync/ada-rescue-20261126-091412-5f3c2a1b. The commit is in the name, so one name always
    means one commit: two sessions rescuing in the same second never collide."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{branch}-rescue-{stamp}-{str(commit)[:8]}"


@dataclass(frozen=True)
class Displaced:
    """This workspace's files that another session's merge replaced: their paths, and the
    rescue branch that merge kept this workspace's version on (with its commit)."""

    paths: list[str]
    rescue: str | None = None
    commit: pygit2.Oid | None = None


def displaced_by_merges(
    repo: SyncRepository, mine: pygit2.Oid, incoming: pygit2.Oid, final: pygit2.Oid
) -> Displaced:
    """Files whose version from `mine` another session's merge on `incoming` replaced, and
    that still differ in `final` (what this workspace takes: `incoming` itself, or its merge
    with `mine`); and the rescue branch that merge kept `mine`'s side on."""
    git = repo.repo
    paths: list[str] = []
    rescue: tuple[str, pygit2.Oid] | None = None
    commit = git[incoming].peel(pygit2.Commit)
    for _ in range(_DISPLACED_SEARCH_DEPTH):
        # the parents the commit names: a shallow fetch may have cut them off in libgit2's view
        parents = raw_parents(git, commit.id)
        if repo.is_ancestor(commit.id, mine) or not parents:
            break  # back in this workspace's own history
        if len(parents) == 2 and repo.is_ancestor(parents[1], mine):
            text = commit.raw_message.decode("utf-8", "replace")
            for line in text.splitlines():
                if line.startswith(KEPT_PREFIX):
                    paths.extend(p for p in line.removeprefix(KEPT_PREFIX).split(", ") if p)
                elif line.startswith(f"{RESCUE_TRAILER}: ") and rescue is None:
                    rescue = (line.partition(": ")[2].strip(), parents[1])
        if parents[0] not in git:
            break  # the history here ends before this workspace's own
        commit = git[parents[0]].peel(pygit2.Commit)
    still = [p for p in sorted(set(paths)) if blob_at(git, mine, p) != blob_at(git, final, p)]
    if not still or rescue is None:
        return Displaced(still)
    return Displaced(still, *rescue)
