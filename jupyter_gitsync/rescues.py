"""Rescue branches: where a version that lost a collision is kept, and when one has served its
purpose.

A rescue branch is made when a merge keeps this workspace's version of a file and the other
side's goes elsewhere, or when a local file the sync never owned is kept where the remote has
something else. Another session's merge can also name one that holds this workspace's version.
Each is recorded with the paths it is there for, in `.git/gitsync/rescues.json`, so that it can
be listed, pushed after a restart, and pruned:

- *merged*: every path it is there for has the same content in the sync branch's tip (the
  user took that version back): it is deleted by itself, here and on the remote;
- *superseded*: a later rescue branch of the same files grew from it (two sessions bouncing one
  file make one per bounce): the earlier one is deleted, its commit stays in the later one's
  history;
- anything else is unmerged work and is never deleted by itself. Past `limit` branches per
  sync branch, the user is told instead.

Blocking; the engine calls it on its git thread only.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pygit2

log = logging.getLogger(__name__)

REGISTRY_FILE = "rescues.json"
BRANCH_INFIX = "-rescue-"
DEFAULT_LIMIT = 20


@dataclass
class Rescue:
    """One rescue branch: its full ref, the commit it holds, when it was made, the paths it
    is there for, and whether the remote has it."""

    ref: str
    commit: str
    created: str
    paths: list[str]
    pushed: bool

    @property
    def name(self) -> str:
        return self.ref.removeprefix("refs/heads/")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "created": self.created, "paths": self.paths[:100]}


def belongs_to(ref: str, branch: str) -> bool:
    """True for a rescue branch of the sync branch `branch`."""
    return ref.startswith(f"refs/heads/{branch}{BRANCH_INFIX}")


class RescueBranches:
    """The rescue branches of this workspace, as refs and as records."""

    def __init__(self, git: pygit2.Repository, private_dir: Path) -> None:
        self._git = git
        self._file = private_dir / REGISTRY_FILE
        self._records: dict[str, Rescue] = self._load()

    # -- records ---------------------------------------------------------------------------------

    def add(self, ref: str, commit: pygit2.Oid, paths: Iterable[str], pushed: bool) -> None:
        """Keep `commit` on `ref` (one name always means one commit) and record why."""
        if self._git.references.get(ref) is None:
            self._git.references.create(ref, commit)
        known = self._records.get(ref)
        self._records[ref] = Rescue(
            ref=ref,
            commit=str(commit),
            created=known.created if known else _now_iso(),
            paths=sorted({*(known.paths if known else ()), *paths}),
            pushed=pushed or bool(known and known.pushed),
        )
        self._save()

    def unpushed(self) -> list[str]:
        """Refs the remote does not have yet (pushed at the next push, also after a restart)."""
        return [r.ref for r in self._records.values() if not r.pushed]

    def mark_pushed(self, refs: Iterable[str]) -> None:
        for ref in refs:
            if ref in self._records:
                self._records[ref].pushed = True
        self._save()

    def get(self, name: str) -> Rescue | None:
        return self._records.get(f"refs/heads/{name}")

    def forget(self, ref: str) -> None:
        """Delete the local ref and the record (the caller deleted the remote's first)."""
        reference = self._git.references.get(ref)
        if reference is not None:
            reference.delete()
        self._records.pop(ref, None)
        self._save()

    # -- what to show and what to prune ----------------------------------------------------------

    def of(self, branch: str) -> list[Rescue]:
        """The rescue branches of sync branch `branch`, newest first."""
        found = [r for r in self._records.values() if belongs_to(r.ref, branch)]
        return sorted(found, key=lambda r: r.created, reverse=True)

    def settled(self, branch: str, tip: pygit2.Oid | None) -> list[Rescue]:
        """Rescue branches of `branch` that hold nothing the user could miss: merged into
        `tip`, or superseded by a later one."""
        rescues = self.of(branch)
        done: list[Rescue] = []
        for rescue in rescues:
            if not rescue.paths or rescue.commit not in self._git:
                continue  # nothing recorded to compare: never deleted by itself
            if (tip is not None and self._merged(rescue, tip)) or self._superseded(rescue, rescues):
                done.append(rescue)
        return done

    def _merged(self, rescue: Rescue, tip: pygit2.Oid) -> bool:
        commit = pygit2.Oid(hex=rescue.commit)
        return all(
            blob_at(self._git, commit, p) == blob_at(self._git, tip, p) for p in rescue.paths
        )

    def _superseded(self, rescue: Rescue, others: list[Rescue]) -> bool:
        """Another rescue branch of the same files (or more) grew from this one's commit."""
        commit = pygit2.Oid(hex=rescue.commit)
        for other in others:
            if other.commit not in self._git or not set(rescue.paths) <= set(other.paths):
                continue
            newer = pygit2.Oid(hex=other.commit)
            if newer != commit and self._git.descendant_of(newer, commit):
                return True
        return False

    # -- the file --------------------------------------------------------------------------------

    def _load(self) -> dict[str, Rescue]:
        """The records whose refs still exist (a ref deleted by hand is forgotten)."""
        try:
            raw = json.loads(self._file.read_text(encoding="utf-8"))
            records = [Rescue(**item) for item in raw["rescues"]]
        except FileNotFoundError:
            return {}
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("gitsync: %s could not be read (%s); starting a new one", self._file, exc)
            return {}
        return {r.ref: r for r in records if self._git.references.get(r.ref) is not None}

    def _save(self) -> None:
        self._file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._file.with_suffix(".tmp")
        data = {"rescues": [asdict(r) for r in self._records.values()]}
        temporary.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(temporary, self._file)


def blob_at(git: pygit2.Repository, commit: pygit2.Oid, path: str) -> pygit2.Oid | None:
    """The id of what `commit` holds at `path`, or None."""
    try:
        return git[commit].peel(pygit2.Tree)[path].id
    except KeyError:
        return None


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")
