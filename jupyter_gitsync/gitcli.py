"""Pushing through the git command line, for a first push of many objects (see `Transport.push`
for when, and why: git sends our packed blobs as they are, libgit2 packs every object again).

The token reaches git through a credential helper only, and the helper reads it from a pipe
this process inherits to it: never in an argument, an environment variable or a file. The
helper (`credential_helper`, a shell function given with `-c credential.helper=...`; its text
holds no secret) answers git's `get` alone, and only for the remote's own origin (scheme and
host[:port]); git is told not to follow redirects, and a request for any other address gets
nothing. git runs with none of the user's or the system's configuration (no other credential
helper, no URL rewriting from there), no hooks, no prompts, and C messages, which
`classify` turns into the same failures `transport` reports.

Deadlines: git's own low-speed limit ends a transfer that moves nothing for `stall_seconds`;
the process group is killed when it outlives `deadline_seconds`, or when the caller's `Watch`
is cancelled (the engine's network lane does so at its deadlines). Any data git reports
(progress on stderr) touches the watch, as libgit2's callbacks do.

Blocking; runs on the transport thread.
"""

from __future__ import annotations

import contextlib
import math
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .errors import (
    AuthRequired,
    ConfigError,
    DeadlineExceeded,
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
from .watch import Watch

TOKEN_USERNAME = "x-access-token"  # what GitHub expects as the Basic-auth user for a token
_POLL_SECONDS = 0.05
_KEPT_STDERR_BYTES = 64 * 1024  # of git's messages, the last ones (progress is most of it)
_TOKENISH_ENV = frozenset({"GITSYNC_TOKEN", "GITHUB_TOKEN", "GH_TOKEN", "SSH_ASKPASS"})
_PROGRESS_PREFIXES = (
    "Enumerating objects",
    "Counting objects",
    "Delta compression",
    "Compressing objects",
    "Writing objects",
    "Total ",
    "remote: Resolving deltas",
    "To ",
)

TokenGetter = Callable[[], "str | None"]


def available() -> bool:
    """Whether a git command line is there to push with."""
    return shutil.which("git") is not None


def supports(url: str) -> bool:
    """Whether `url` is one this module pushes to: HTTP(S) without credentials in it."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and "@" not in parts.netloc


def push(
    gitdir: Path,
    url: str,
    token: TokenGetter,
    updates: dict[str, str],
    stall_seconds: float,
    deadline_seconds: float | None,
    watch: Watch | None = None,
) -> list[str]:
    """Push each commit of `updates` (remote ref name -> commit id) to that ref of the remote
    at `url`, never forcing. Returns the refs the remote now holds at those commits (updated
    or already there); any refusal raises PushRejected (the others may have landed)."""
    if not supports(url):
        raise ConfigError("Only an http(s) URL without credentials in it can be pushed to here.")
    watch = watch or Watch()
    url, protocol, host = _normalised(url)
    secret = token() or ""
    if any(c in secret for c in "\n\r\0"):
        raise AuthRequired("The token holds characters no token has. Sign in again.")
    read_end, write_end = os.pipe()
    try:
        # A token is far shorter than a pipe's buffer: this write never blocks.
        os.write(write_end, f"{secret}\n".encode() if secret else b"")
    finally:
        os.close(write_end)
    command = [
        "git",
        "--git-dir",
        str(gitdir),
        *_config(url, credential_helper(read_end, protocol, host), stall_seconds),
        "push",
        "--porcelain",
        "--progress",
        "--no-verify",
        url,
        *(f"{oid}:{ref}" for ref, oid in updates.items()),
    ]
    try:
        process = subprocess.Popen(
            command,
            cwd=gitdir,
            env=git_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(read_end,),
            start_new_session=True,
        )
    except OSError as exc:
        raise RemoteUnavailable(f"git could not be started ({exc.strerror}).") from None
    finally:
        os.close(read_end)  # git holds its own copy; the token is in the pipe alone now
    output = _Output(process)
    try:
        _wait(process, output, watch, deadline_seconds)
    except GitSyncError as exc:
        exc.message = redact(exc.message, [secret])
        exc.args = (exc.message,)
        raise
    except BaseException:  # interrupted: git does not outlive the call
        _kill(process)
        raise
    finally:
        output.join()
    results = parse_porcelain(output.stdout_text())
    rejected = [f"{ref} {reason}".strip() for ref, (ok, reason) in results.items() if not ok]
    if rejected:
        raise PushRejected(
            redact(f"The remote refused the update: {'; '.join(rejected)}", [secret])
        )
    if process.returncode != 0:
        raise classify(redact(output.message(), [secret]), token_set=bool(secret))
    missing = [ref for ref in updates if ref not in results]
    if missing:
        raise RemoteUnavailable(f"git did not say what became of {', '.join(missing)}.")
    return [ref for ref in updates if results[ref][0]]


def credential_helper(fd: int, protocol: str, host: str) -> str:
    """The value for `credential.helper`: a shell function that reads git's request on stdin
    and, for a `get` from `protocol`://`host` only, answers with the token read from the pipe
    at `fd` (`/dev/fd/N`: dash takes no descriptor above 9 after `<&`). Everything it runs is
    a shell builtin, so the token is in no process's arguments."""
    return (
        "!f() { p= h=; while IFS= read -r l; do case $l in"
        " protocol=*) p=${l#protocol=};; host=*) h=${l#host=};; esac; done;"
        f' test "$1" = get && test "$p" = {shlex.quote(protocol)}'
        f' && test "$h" = {shlex.quote(host)} || return 0;'
        f' IFS= read -r t </dev/fd/{fd} || return 0; test -n "$t" || return 0;'
        f" printf 'username=%s\\npassword=%s\\n' {TOKEN_USERNAME} \"$t\"; }}; f"
    )


def git_environment() -> dict[str, str]:
    """This process's environment without git's own variables or a token, and with git kept
    away from the user's and the system's configuration, prompts, and translated messages."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GIT_") and k not in _TOKENISH_ENV and "TOKEN" not in k.upper()
    }
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS="",  # empty: no askpass program at all (core.askPass and SSH_ASKPASS too)
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        LC_ALL="C",
        LANGUAGE="C",
    )
    return env


def parse_porcelain(text: str) -> dict[str, tuple[bool, str]]:
    """`git push --porcelain`'s lines (`<flag>\\t<from>:<to>\\t<summary>`), as remote ref ->
    (landed, summary): ` ` updated, `*` new, `=` there already; `!` refused."""
    results: dict[str, tuple[bool, str]] = {}
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) < 3 or len(fields[0]) != 1:
            continue
        target = fields[1].rsplit(":", 1)[-1]
        results[target] = (fields[0] in " *=", fields[2].strip())
    return results


def classify(message: str, token_set: bool = True) -> GitSyncError:
    """Map what git said when a push failed to the failure the user should hear about (the
    same as `transport.classify` gives for libgit2's words)."""
    lowered = message.lower()
    if "could not read username" in lowered or "could not read password" in lowered:
        if not token_set:
            return TokenMissing("The remote needs a token, and none is set.")
        return RemoteNotFound(
            "The remote asked for credentials for another address; the token is only ever"
            f" sent to the remote's own address. Set the remote to where the repository is"
            f" ({message})."
        )
    if any(f"error: {code}" in lowered for code in ("301", "302", "303", "307", "308")):
        return redirected_elsewhere(message)
    if "error: 429" in lowered or "too many requests" in lowered:
        return rate_limited(message)
    if "error: 403" in lowered:
        return access_refused(message)
    if "authentication failed" in lowered or "error: 401" in lowered:
        return token_refused(message)
    if ("repository" in lowered and "not found" in lowered) or "error: 404" in lowered:
        return RemoteNotFound(f"The remote URL does not lead to a git repository ({message}).")
    if any(
        s in lowered
        for s in ("[rejected]", "[remote rejected]", "non-fast-forward", "fetch first", "declined")
    ):
        return PushRejected(f"The remote refused the push ({message}).")
    if "too slow" in lowered or "timed out" in lowered:
        return RemoteUnavailable(f"The remote stopped answering ({message}).")
    return RemoteUnavailable(f"The remote could not be reached ({message}).")


def _normalised(url: str) -> tuple[str, str, str]:
    """`url` with its host in lower case, and the protocol and host[:port] git will name in
    its credential request for it (the origin `transport._origin` binds the token to)."""
    parts = urlsplit(url)
    hostname = parts.hostname or ""
    shown = f"[{hostname}]" if ":" in hostname else hostname
    host = f"{shown}:{parts.port}" if parts.port else shown
    return urlunsplit(parts._replace(netloc=host)), parts.scheme, host


def _config(url: str, helper: str, stall_seconds: float) -> list[str]:
    """git's settings for the push, on top of the repository's own config (`-c` comes last).
    The http ones are given for `url` itself too: the repository's config may hold
    `http.<url>.*` settings, and the most specific URL wins there (an empty `extraHeader`
    drops every extra header, one that might carry other credentials)."""
    http = [
        ("followRedirects", "false"),  # the token goes to the remote's origin only
        ("lowSpeedLimit", "1"),
        ("lowSpeedTime", str(max(1, math.ceil(stall_seconds)))),
        ("extraHeader", ""),
    ]
    scopes = ["http."] + ([f"http.{url}."] if not any(c in url for c in "= \t\n") else [])
    settings = [
        ("credential.helper", ""),  # drops any helper the repository's config names
        ("credential.helper", helper),
        ("credential.useHttpPath", "false"),
        *((f"{scope}{key}", value) for scope in scopes for key, value in http),
        ("core.hooksPath", os.devnull),  # the user's hooks are theirs, not the sync's
        ("core.askPass", ""),
        ("push.recurseSubmodules", "no"),
        ("push.gpgSign", "false"),
    ]
    return [arg for key, value in settings for arg in ("-c", f"{key}={value}")]


@dataclass
class _Output:
    """git's stdout and stderr, drained by threads of their own (a full pipe would stall git);
    `activity` counts the reads, which `_wait` turns into touches of the watch."""

    process: subprocess.Popen[bytes]
    activity: int = 0
    _stdout: bytearray = field(default_factory=bytearray)
    _stderr: bytearray = field(default_factory=bytearray)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        for stream, kept, limit in (
            (self.process.stdout, self._stdout, None),
            (self.process.stderr, self._stderr, _KEPT_STDERR_BYTES),
        ):
            assert stream is not None
            thread = threading.Thread(
                target=self._drain, args=(stream.fileno(), kept, limit), daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _drain(self, fd: int, kept: bytearray, limit: int | None) -> None:
        while chunk := os.read(fd, 65536):
            kept.extend(chunk)
            if limit is not None and len(kept) > limit:
                del kept[: len(kept) - limit]
            self.activity += 1

    def join(self) -> None:
        for thread in self._threads:
            thread.join()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def stdout_text(self) -> str:
        return self._stdout.decode("utf-8", "replace")

    def message(self) -> str:
        """What git said, without its progress lines, on one line."""
        text = self._stderr.decode("utf-8", "replace").replace("\r", "\n")
        lines = [line.strip() for line in text.splitlines()]
        said = [line for line in lines if line and not line.startswith(_PROGRESS_PREFIXES)]
        return " ".join(said[-6:]) or f"git exited with status {self.process.returncode}"


def _wait(
    process: subprocess.Popen[bytes], output: _Output, watch: Watch, deadline_seconds: float | None
) -> None:
    """Wait for git to end; kill its process group at the deadline or when the watch is
    cancelled."""
    started = time.monotonic()
    seen = 0
    while True:
        try:
            process.wait(timeout=_POLL_SECONDS)
            return
        except subprocess.TimeoutExpired:
            pass
        try:
            if output.activity != seen:
                seen = output.activity
                watch.touch()
            elif watch.cancelled:
                raise DeadlineExceeded(watch.reason)
        except DeadlineExceeded:
            _kill(process)
            raise
        if deadline_seconds is not None and time.monotonic() - started >= deadline_seconds:
            _kill(process)
            raise RemoteUnavailable(f"The remote took longer than {deadline_seconds:g} s.")


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):  # ended meanwhile
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
