"""Where the workspace came from: pure functions that pick and normalise the remote URL."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

_GITHUB_WEB = re.compile(
    r"^(?P<base>https://(?:www\.)?github\.com/[^/]+/[^/#?]+?)(?:\.git)?"
    r"(?:/(?:tree|blob|commit)/(?P<ref>[^?#]+))?/?(?:[?#].*)?$"
)


def strip_credentials(url: str) -> str:
    """The URL without a password or token in it (a token must never travel inside a URL):
    HTTP(S) URLs lose their user:password@ part; others (ssh://git@host, where the user name
    matters) keep the user name only."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    if parts.scheme.split("+")[-1] in ("http", "https"):
        return urlunsplit(parts._replace(netloc=host))
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host))


def normalise(url: str) -> str:
    """A GitHub web URL (`https://github.com/u/r`, `.../tree/<ref>`) becomes its clone URL."""
    url = strip_credentials(url.strip())
    match = _GITHUB_WEB.match(url)
    if match:
        return match.group("base").replace("://www.", "://") + ".git"
    return url


def launch_ref(url: str) -> str | None:
    """The ref named in a GitHub web URL (`/tree/<ref>`), if any."""
    match = _GITHUB_WEB.match(url.strip())
    return match.group("ref") if match else None


def detect(configured: str | None, origin: str | None, environ: Mapping[str, str]) -> str | None:
    """The remote to sync with: the setting, else the workspace's `origin`, else Binder's
    `BINDER_REPO_URL` (`BINDER_REF_URL` names the launch commit)."""
    for candidate in (configured, origin, environ.get("BINDER_REPO_URL")):
        if candidate:
            return normalise(candidate)
    return None
