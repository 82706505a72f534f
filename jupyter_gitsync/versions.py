"""Versions: snapshots the user named, kept as annotated tags `refs/tags/<sync branch>/<name>`.

Why tags: an annotated tag is the object git has for "this commit, under this name, with this
message, named at this time by this person"; GitHub lists it under the repository's tags, where
it can be browsed and downloaded as an archive. Under refs/tags/ it cannot clash with the sync
branch's own ref (refs/heads/gitsync/ada and refs/tags/gitsync/ada/draft-1 live apart, where
refs/heads/gitsync/ada/draft-1 could not exist beside the branch), and the sync branch's
name in front keeps each user's versions apart.

Versions are pushed with the branch (`unpushed`, in the engine's push), never forced and never
deleted by the sync. What the remote has is recorded under `refs/gitsync/versions/` by the
transport (as `refs/gitsync/remote/` records the branch). A restore fetches the versions of
the branch that are not here (`wanted`).

Blocking; the git thread writes the tags, the transport thread the records of what was pushed
and the versions a restore brings (only names that are not here).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import pygit2

from .errors import ConfigError, NotFound
from .repository import iso_time, message_of, printable
from .transport import Fetch, RemoteHeads

TAG_PREFIX = "refs/tags/"
PUSHED_PREFIX = "refs/gitsync/versions/"  # what the remote has (written by the transport)
MAX_NAME_CHARS = 100
MAX_MESSAGE_CHARS = 5000
_NAME = re.compile(r"[^\x00-\x20\x7f~^:?*\[\\/]+")


@dataclass(frozen=True)
class Version:
    """One named version: its name, the snapshot, when it was named, and why."""

    name: str
    sha: str
    time: str | None
    message: str
    pushed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sha": self.sha,
            "time": self.time,
            "message": self.message,
            "pushed": self.pushed,
        }


def prefix(branch: str) -> str:
    """Where the versions of `branch` are: refs/tags/<branch>/."""
    return f"{TAG_PREFIX}{branch}/"


def validate_name(branch: str, name: str) -> str:
    """The tag ref of version `name`, or ConfigError (400) in plain words: one path segment
    that git takes as a ref name (no "..", no ".lock" at the end, no spaces or control
    characters, no "/"), at most MAX_NAME_CHARS characters."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("Give the version a name, like draft-1.")
    if len(name) > MAX_NAME_CHARS:
        raise ConfigError(f"A version's name has at most {MAX_NAME_CHARS} characters.")
    ref = f"{prefix(branch)}{name}"
    if (
        not _NAME.fullmatch(name)
        or name.startswith((".", "-"))
        or not pygit2.reference_is_valid_name(ref)
    ):
        raise ConfigError(
            f"{printable(name, 120)!r} cannot be a version's name: use letters, digits and"
            " . _ - (no spaces, no '/', no '..', not ending in '.lock')."
        )
    return ref


def _pushed_ref(branch: str, name: str) -> str:
    return f"{PUSHED_PREFIX}{branch}/{name}"


def list_versions(repo: pygit2.Repository, branch: str) -> list[Version]:
    """The versions of `branch` here, newest first. A tag someone pushed without a message
    (a lightweight tag) is listed with its commit's time."""
    found = []
    start = prefix(branch)
    for ref in repo.references.iterator():
        name = ref.name
        if not name.startswith(start):
            continue
        short = name[len(start) :]
        if "/" in short or not _NAME.fullmatch(short):
            continue
        version = _read(repo, branch, short, ref)
        if version is not None:
            found.append(version)
    found.sort(key=lambda v: (v.time or "", v.name), reverse=True)
    return found


def _read(repo: pygit2.Repository, branch: str, name: str, ref: pygit2.Reference) -> Version | None:
    try:
        target = repo.get(ref.target)
        commit = target.peel(pygit2.Commit) if target is not None else None
    except (ValueError, KeyError, pygit2.GitError):
        return None  # a tag of something that is not here, or not a commit
    if commit is None:
        return None
    pushed = repo.references.get(_pushed_ref(branch, name))
    was_pushed = pushed is not None and pushed.target == ref.target
    if isinstance(target, pygit2.Tag):
        tagger = target.tagger
        when = iso_time(tagger.time) if tagger is not None else iso_time(commit.commit_time)
        message = message_of(target.raw_message)[:MAX_MESSAGE_CHARS]
    else:
        when, message = iso_time(commit.commit_time), ""
    return Version(name, str(commit.id), when, message, was_pushed)


def by_commit(versions: list[Version]) -> dict[str, list[str]]:
    """Commit id -> the names of the versions on it (newest first)."""
    marks: dict[str, list[str]] = {}
    for version in versions:
        marks.setdefault(version.sha, []).append(version.name)
    return marks


def create(
    repo: pygit2.Repository,
    branch: str,
    name: str,
    message: str,
    commit: pygit2.Oid,
    tagger: pygit2.Signature,
) -> Version:
    """Name snapshot `commit` `name`; ConfigError (400) for a name git refuses or one that
    exists, and then nothing is written."""
    ref = validate_name(branch, name)
    if not isinstance(message, str):
        raise ConfigError("A version's message is text.")
    message = message.strip()
    if len(message) > MAX_MESSAGE_CHARS:
        raise ConfigError(f"A version's message has at most {MAX_MESSAGE_CHARS} characters.")
    if repo.references.get(ref) is not None:
        raise ConfigError(f"There is already a version named {name!r}; choose another name.")
    if not isinstance(repo.get(commit), pygit2.Commit):
        raise NotFound(f"There is no snapshot {commit} here.")
    text = f"{message}\n" if message else ""
    tag = repo.create_tag(
        ref.removeprefix(TAG_PREFIX), commit, pygit2.enums.ObjectType.COMMIT, tagger, text
    )
    version = _read(repo, branch, name, repo.references[ref])
    assert version is not None, tag
    return version


def resolve(repo: pygit2.Repository, branch: str, source: str) -> pygit2.Oid:
    """The snapshot `source` names: a full commit id, or the name of a version of `branch`.
    ConfigError (400) when it is neither, NotFound (404) when it is not here."""
    if isinstance(source, str) and re.fullmatch(r"[0-9a-f]{40}", source):
        from . import history  # here: a restore reads versions, and needs no history module

        return history.commit_at(repo, source).id
    validate_name(branch, source)
    if repo.references.get(f"{prefix(branch)}{source}") is None:
        raise NotFound(f"There is no version named {source!r}.")
    found = find(repo, branch, source)
    if found is None:
        raise NotFound(f"The version {source!r} names no snapshot that is here.")
    return found


def find(repo: pygit2.Repository, branch: str, name: str) -> pygit2.Oid | None:
    """The snapshot version `name` of `branch` names; None when `name` is no version's name,
    there is no such version, or its tag names no commit that is here."""
    if not _NAME.fullmatch(name):  # no "/" either: one path segment
        return None
    ref = f"{prefix(branch)}{name}"
    reference = repo.references.get(ref) if pygit2.reference_is_valid_name(ref) else None
    version = _read(repo, branch, name, reference) if reference is not None else None
    return pygit2.Oid(hex=version.sha) if version is not None else None


def tagger_now(name: str, email: str) -> pygit2.Signature:
    """Who named the version, and now."""
    now = dt.datetime.now(dt.timezone.utc)
    return pygit2.Signature(name, email, int(now.timestamp()), 0)


def unpushed(repo: pygit2.Repository, branch: str) -> dict[str, str]:
    """The versions the remote does not have as they are here: tag ref -> the ref that records
    what was pushed (for `Transport.push`). Cheap when all are pushed (the engine asks after
    every snapshot): two refs compared per version."""
    wanted = {}
    start = prefix(branch)
    for ref in repo.references.iterator():
        name = ref.name[len(start) :]
        if not ref.name.startswith(start) or "/" in name or not _NAME.fullmatch(name):
            continue
        pushed = repo.references.get(_pushed_ref(branch, name))
        if pushed is not None and pushed.target == ref.target:
            continue
        if _read(repo, branch, name, ref) is not None:  # a tag of a commit that is here
            wanted[ref.name] = _pushed_ref(branch, name)
    return wanted


def wanted(heads: RemoteHeads, repo: pygit2.Repository, branch: str) -> list[Fetch]:
    """What to fetch so that the remote's versions of `branch` are here too: each tag whose
    name is valid and is not here (one that is here is never replaced), into its tag ref and
    into the record of what the remote has."""
    fetches = []
    start = prefix(branch)
    for ref, oid in sorted(heads.refs.items()):
        if not ref.startswith(start) or ref.endswith("^{}"):
            continue
        name = ref[len(start) :]
        try:
            validate_name(branch, name)
        except ConfigError:
            continue  # a name from the remote that we would not have made: not brought in
        if repo.references.get(ref) is not None:
            continue
        fetches.append(Fetch(ref, ref, oid, is_sync_branch=False))
        fetches.append(Fetch(ref, _pushed_ref(branch, name), oid, is_sync_branch=False))
    return fetches
