"""The small set of failures the engine tells users about, and the redactor that keeps secrets
out of every message."""

from __future__ import annotations

import re
from collections.abc import Iterable

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")
_TOKEN_SHAPES = re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})\b")


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Remove secrets, URL credentials and anything shaped like a GitHub token from `text`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _USERINFO.sub(r"\g<scheme>", text)
    return _TOKEN_SHAPES.sub("***", text)


class GitSyncError(Exception):
    """A failure with a plain-words message for the user; `kind` is stable for programs."""

    kind = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(GitSyncError):
    """The settings cannot work (bad branch name, no remote, unusable workspace)."""

    kind = "config"


class WorkspaceError(GitSyncError):
    """The workspace or its .git cannot be read or written (permissions, full disk)."""

    kind = "workspace"


class AuthRequired(GitSyncError):
    """The remote wants a token we do not have, or refused the one we sent."""

    kind = "auth"


class TokenMissing(AuthRequired):
    """There is no token at all: nobody signed in and none is configured (not a refusal)."""

    kind = "no-token"


class LoginUnknown(AuthRequired):
    """No branch to push to yet: on Binder the branch is named after the GitHub login, which
    is not known (nobody signed in, or the token in use has no login)."""

    kind = "no-login"


class RemoteUnavailable(GitSyncError):
    """The remote could not be reached or answered with a server error; worth retrying."""

    kind = "network"


class RateLimited(RemoteUnavailable):
    """The remote is limiting requests (HTTP 429): wait at least `RATE_LIMIT_WAIT_SECONDS`,
    as GitHub asks of clients that hit a secondary rate limit."""


RATE_LIMIT_WAIT_SECONDS = 60.0


class DeadlineExceeded(RemoteUnavailable):
    """A network operation was given up on at its deadline (the remote stalled, took too
    long, or the server is stopping)."""


class RemoteNotFound(GitSyncError):
    """The remote URL does not lead to a git repository we may use."""

    kind = "not-found"


class PermissionDenied(GitSyncError):
    """The signed-in user may not push to the remote; forking it is the way on."""

    kind = "permission"


class PushRejected(GitSyncError):
    """The remote refused the update, e.g. because the branch moved on since our last push."""

    kind = "rejected"


class NotFound(GitSyncError):
    """What was asked for is not here: a snapshot, a file at a snapshot, a version."""

    kind = "missing"


# What a remote's answer means, worded once for both ways of reaching it (libgit2 in
# `transport`, the git command line in `gitcli`); `detail` is the remote's own words, redacted.


def redirected_elsewhere(detail: str) -> RemoteNotFound:
    return RemoteNotFound(
        "The remote sent the request on to another address; the token is only ever sent to"
        f" the remote's own address. Set the remote to where the repository is ({detail})."
    )


def rate_limited(detail: str) -> RateLimited:
    return RateLimited(
        f"The remote is limiting requests for now; trying again in a minute ({detail})."
    )


def access_refused(detail: str) -> AuthRequired:
    return AuthRequired(
        "The remote refused access: the token may not allow pushing here, or the remote"
        f" is limiting requests for a while ({detail}). Checked again now and then."
    )


def token_refused(detail: str) -> AuthRequired:
    return AuthRequired(f"The remote refused the token ({detail}).")
