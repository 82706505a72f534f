"""Which paths are ours to sync: pure functions over workspace-relative POSIX paths."""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Iterable

# What Jupyter, Python, conda/mamba, pip, npm/yarn, shells, editors and Dask write into a
# workspace or a home directory by themselves (with the workspace at HOME, the usual hub
# setup, jupyter-lsp's npm writes ~/.npm/_logs at every start).
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
    ".npm",
    ".yarn",
    ".conda",
    ".mamba",
    ".condarc.d",
    ".bash_history",
    ".python_history",
    ".zsh_history",
    ".lesshst",
    ".viminfo",
    ".wget-hsts",
    ".ssh",
    "dask-worker-space",
    "dask-scratch-space",
    ".DS_Store",
)

DEFAULT_MAX_FILE_SIZE_BYTES = 50_000_000  # "50 MB"; GitHub refuses files over 100 MiB


def is_git_internal(relpath: str) -> bool:
    """True for a `.git` directory or file at any depth (the repository's own, or that of a
    repository nested in the workspace) and anything in it."""
    return ".git" in relpath.split("/")


def is_excluded(relpath: str, excludes: Iterable[str]) -> bool:
    """True if any component of `relpath` matches one of the glob patterns in `excludes`.

    Patterns name files or directories anywhere in the tree, like `.gitignore` lines without a
    slash; a pattern with a slash is matched against the path from the workspace's root (and
    covers everything below what it matches).
    """
    if is_git_internal(relpath):
        return True
    return matches_any(relpath, excludes)


def matches_any(relpath: str, patterns: Iterable[str]) -> bool:
    """The glob matching of `is_excluded`, without its rule for `.git`."""
    parts = relpath.split("/")
    any_part, anchored = _compiled(tuple(patterns))
    if any_part is not None and any(any_part.match(part) for part in parts):
        return True
    return any(
        len(parts) >= depth and pattern.match("/".join(parts[:depth]))
        for depth, pattern in anchored
    )


@functools.lru_cache(maxsize=32)
def _compiled(
    patterns: tuple[str, ...],
) -> tuple[re.Pattern[str] | None, tuple[tuple[int, re.Pattern[str]], ...]]:
    """`patterns` as `fnmatchcase` reads them, compiled once: one expression for those that
    match a path component, and (depth, expression) for those anchored at the root. A first
    full snapshot asks for every one of 50k paths."""
    component = [p.rstrip("/") for p in patterns if "/" not in p.strip("/")]
    anchored = tuple(
        (p.strip("/").count("/") + 1, re.compile(fnmatch.translate(p.strip("/"))))
        for p in patterns
        if "/" in p.strip("/")
    )
    if not component:
        return None, anchored
    return re.compile("|".join(fnmatch.translate(p) for p in component)), anchored


# Paths that run code when a session, a shell, Python, IPython, Jupyter, git or ssh starts, or
# that point those at code. Restore never writes them, whatever `excludes` says: anyone who can
# push to a branch the user restores from would otherwise run code in the user's session (with
# the workspace at HOME, the usual hub setup). Names match at any depth, like excludes.
RUNS_CODE_AT_START: tuple[str, ...] = (
    # shells
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".bash_logout",
    ".bash_aliases",
    ".profile",
    ".zshrc",
    ".zshenv",
    ".zprofile",
    ".zlogin",
    ".cshrc",
    ".tcshrc",
    ".login",
    ".envrc",
    ".env",  # python-dotenv and direnv-like loaders read it at start
    ".config/fish",
    # Python, IPython, Jupyter (startup files, config, kernel specs, site-packages)
    "*.pth",
    "sitecustomize.py",
    "usercustomize.py",
    ".pythonrc",
    ".pythonrc.py",
    ".ipython",
    ".jupyter",
    ".local",
    ".Rprofile",
    # git, ssh, the desktop
    ".gitconfig",
    ".config/git",
    ".ssh",
    ".config/autostart",
)


def runs_code_at_start(relpath: str) -> bool:
    """True for a path that RUNS_CODE_AT_START covers (restore never writes those)."""
    return matches_any(relpath, RUNS_CODE_AT_START)


def as_ignore_rules(excludes: Iterable[str]) -> str:
    """The same patterns in gitignore syntax, so libgit2's own scans skip those trees too."""
    return "".join(f"{pattern}\n" for pattern in excludes)


def too_large(size: int, limit: int) -> bool:
    """True for a file that GitHub (and our limit) would not take."""
    return limit > 0 and size > limit


# Files that hold credentials by name. GitHub's push protection refuses pushes that carry
# secrets, so committing one would block every later push too.
SECRET_FILE_PATTERNS: tuple[str, ...] = (
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    ".git-credentials",
    ".netrc",
    ".pgpass",
    "credentials.json",
)
_SECRET_CONTENT = re.compile(
    rb"(?P<github>\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{60,})\b)"
    rb"|(?P<aws>\b(?:AKIA|ASIA)[0-9A-Z]{16}\b)"
    rb"|(?P<google>\bAIza[0-9A-Za-z_\-]{35}\b)"
    rb"|(?P<slack>\bxox[abposr]-[0-9A-Za-z-]{10,}\b)"
    rb"|(?P<private_key>-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----)"
)
_SECRET_NAMES = {
    "github": "a GitHub token",
    "aws": "an AWS access key",
    "google": "a Google API key",
    "slack": "a Slack token",
    "private_key": "a private key",
}
SECRET_SCAN_BYTES = 8 * 1024 * 1024  # scan this much of each file; secrets sit near the top


def secret_file_reason(relpath: str) -> str | None:
    """Why a file must not be synced because of its name, or None."""
    name = relpath.rsplit("/", 1)[-1]
    if name in (".env.example", ".env.sample", ".env.template"):
        return None
    if _SECRET_FILE.match(name):
        return "looks like a credentials file"
    return None


# `SECRET_FILE_PATTERNS` as `fnmatchcase` reads them, as one expression: asked of every file.
_SECRET_FILE = re.compile("|".join(fnmatch.translate(p) for p in SECRET_FILE_PATTERNS))


# Every pattern above starts with one of these; a search for them alone is ~10x faster than the
# patterns' own over a large notebook, and most files contain none.
_SECRET_PREFIXES = re.compile(
    rb"gh[pousr]_|github_pat_|AKIA|ASIA|AIza|xox|PRIVATE KEY-----",
)


def secret_content_reason(content: bytes) -> str | None:
    """Why content must not be synced because it holds something shaped like a secret."""
    if _SECRET_PREFIXES.search(content) is None:
        return None
    match = _SECRET_CONTENT.search(content)
    if match is None:
        return None
    return f"contains what looks like {_SECRET_NAMES[match.lastgroup or 'github']}"
