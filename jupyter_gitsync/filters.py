"""Which paths are ours to sync: pure functions over workspace-relative POSIX paths."""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

DEFAULT_EXCLUDES: tuple[str, ...] = (
    ".ipynb_checkpoints",
    "__pycache__",
    ".virtual_documents",
    ".cache",
    ".local",
    ".ipython",
    ".jupyter",
    ".config",
    "node_modules",
    "dask-worker-space",
    ".DS_Store",
)

DEFAULT_MAX_FILE_SIZE_BYTES = 50 * 1024 * 1024


def is_git_internal(relpath: str) -> bool:
    """True for the repository's own `.git` directory and anything in it."""
    return relpath == ".git" or relpath.startswith(".git/")


def is_excluded(relpath: str, excludes: Iterable[str]) -> bool:
    """True if any component of `relpath` matches one of the glob patterns in `excludes`.

    Patterns name files or directories anywhere in the tree, like `.gitignore` lines without a
    slash; a pattern with a slash is matched against the whole path.
    """
    if is_git_internal(relpath):
        return True
    parts = relpath.split("/")
    for pattern in excludes:
        if "/" in pattern.strip("/"):
            if fnmatchcase(relpath, pattern.strip("/")):
                return True
        elif any(fnmatchcase(part, pattern.rstrip("/")) for part in parts):
            return True
    return False


def as_ignore_rules(excludes: Iterable[str]) -> str:
    """The same patterns in gitignore syntax, so libgit2's own scans skip those trees too."""
    return "".join(f"{pattern}\n" for pattern in excludes)


def too_large(size: int, limit: int) -> bool:
    """True for a file that GitHub (and our limit) would not take."""
    return limit > 0 and size > limit
