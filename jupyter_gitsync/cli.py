"""`jupyter gitsync …`: status, sync, restore, resume and publish from a terminal or a Binder
`start`; history and versions.

`status`, `sync`, `resume` and `publish` talk to the running Jupyter server of the workspace
(the same API the JupyterLab badge uses). `restore` works without a server, before one starts,
with the same code the server runs at start-up. `log`, `versions` and `save-version` read and
write the workspace's repository directly (reading needs no lock; a version is a new tag, which
the running server pushes with the branch), so they work with or without a server.

No command imports jupyter_server: a Binder `start` script waits for `restore`, and importing
the server (jupyter_events, jsonschema and its grammars) took 5.1 s of a 5.7 s start. Each
command imports the package's modules it needs inside its own function, so that `restore`
loads neither the history (and its notebook diffs) nor asyncio (26 ms of its 0.2 s of imports,
most of the rest being pygit2), and the commands that talk to the server load no pygit2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from .errors import AuthRequired, GitSyncError, RemoteUnavailable

# Exit codes scripts can rely on (also listed in `jupyter gitsync --help`).
OK = 0
FAILED = 1
USAGE = 2
SIGN_IN_REQUIRED = 3
REMOTE_UNAVAILABLE = 4
CONFLICT = 5
NO_SERVER = 6

EXIT_CODES = f"""exit codes:
  {OK}  done
  {FAILED}  failed (the message says why)
  {USAGE}  wrong arguments
  {SIGN_IN_REQUIRED}  the remote needs a token, or refused it
  {REMOTE_UNAVAILABLE}  the remote could not be reached
  {CONFLICT}  restored, but local files that the remote also changed were kept; the remote's
     versions are on the rescue branch that the message names
  {NO_SERVER}  no running Jupyter server serves this workspace (status, sync, resume, publish)
"""


class NoServer(Exception):
    """No running Jupyter server for the workspace."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `jupyter gitsync` (and `jupyter-gitsync`)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return USAGE
    try:
        return int(args.run(args))
    except NoServer as exc:
        print(f"jupyter gitsync: {exc}", file=sys.stderr)
        return NO_SERVER
    except AuthRequired as exc:
        print(f"jupyter gitsync: {exc.message}", file=sys.stderr)
        return SIGN_IN_REQUIRED
    except RemoteUnavailable as exc:
        print(f"jupyter gitsync: {exc.message}", file=sys.stderr)
        return REMOTE_UNAVAILABLE
    except GitSyncError as exc:
        print(f"jupyter gitsync: {exc.message}", file=sys.stderr)
        return FAILED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jupyter gitsync",
        description="Keep a Jupyter workspace continuously saved to its git remote.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    status = commands.add_parser(
        "status",
        help="show what the sync engine of the running server is doing",
        description="Show the sync state of the running Jupyter server for this workspace:"
        " branch, remote, last sync, pending and skipped files, and any error.",
    )
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    _server_options(status)
    status.set_defaults(run=_status)

    sync = commands.add_parser(
        "sync",
        help="snapshot and push now",
        description="Ask the running server to snapshot the workspace and push it now;"
        " waits until it is done.",
    )
    _server_options(sync)
    sync.set_defaults(run=_sync)

    restore_cmd = commands.add_parser(
        "restore",
        help="restore a workspace from its sync branch (no server needed)",
        description="Bring DIR up to the latest snapshot of the sync branch, as the server does"
        " at start-up: an empty directory or a fresh clone gets the snapshot's files, with HEAD"
        " on the commit the snapshot was based on; local changes are kept and merged. Use it"
        " in a Binder `start` script. The token comes from GITSYNC_TOKEN or GITHUB_TOKEN.",
    )
    restore_cmd.add_argument("dir", nargs="?", default=".", help="the workspace (default: .)")
    restore_cmd.add_argument(
        "--branch", help="the sync branch (default: GITSYNC_BRANCH, else gitsync/<user>)"
    )
    restore_cmd.add_argument(
        "--remote",
        help="the remote URL (default: GITSYNC_REMOTE_URL, else the workspace's origin,"
        " else BINDER_REPO_URL)",
    )
    restore_cmd.add_argument("--quiet", action="store_true", help="no progress output")
    _network_options(restore_cmd)
    restore_cmd.set_defaults(run=_restore)

    resume = commands.add_parser(
        "resume",
        help="save current work, then switch to BRANCH and restore it",
        description="Ask the running server to snapshot and push the current work, then switch"
        " the sync branch to BRANCH and restore its latest snapshot. A branch that is not a"
        " sync branch (say main) is restored and a new sync branch starts from it.",
    )
    resume.add_argument("branch", help="the branch to resume from")
    _server_options(resume)
    resume.set_defaults(run=_resume)

    publish = commands.add_parser(
        "publish",
        help="publish the workspace as BRANCH and open a pull request",
        description="Ask the running server to publish the workspace's work as one commit on"
        " BRANCH (on top of the commit the work started from), push it, and open a pull"
        " request on GitHub; prints what happened and the pull request's link. Publishing"
        " to a BRANCH published from this workspace before adds a commit to it (its pull"
        " request follows). Off GitHub the branch is only pushed.",
    )
    publish.add_argument(
        "branch", help="the branch to publish to (a new name, or one published before)"
    )
    publish.add_argument("--title", required=True, help="the pull request's title")
    publish.add_argument("--body", default="", help="the pull request's description")
    publish.add_argument(
        "--from",
        dest="source",
        metavar="SHA|VERSION",
        help="publish this snapshot or version instead of the workspace as it is now",
    )
    _server_options(publish)
    publish.set_defaults(run=_publish)

    login = commands.add_parser(
        "login",
        help="sign the running server in to GitHub (device flow, from a terminal)",
        description="Sign the running Jupyter server in to GitHub, as the badge's 'Sign in to"
        " GitHub' does: prints a code and the page to enter it on, then waits. The server"
        " asks GitHub for the token itself and keeps it in memory; it never passes through"
        " this command, a file or a terminal.",
    )
    _server_options(login)
    login.set_defaults(run=_login)

    log_cmd = commands.add_parser(
        "log",
        help="list the snapshots of the sync branch, or those that changed PATH",
        description="List the snapshots of the sync branch, newest first: all of them, or those"
        " that changed PATH (renames followed). Each line: snapshot id, time, message, the"
        " versions named on it and the session that made it. Reads the workspace's repository"
        " (no server needed); where a shallow restore left the history short, says so.",
    )
    log_cmd.add_argument("path", nargs="?", help="a file, relative to the workspace")
    log_cmd.add_argument(
        "-n", type=int, default=20, metavar="N", help="how many snapshots (default 20, most 500)"
    )
    _repo_options(log_cmd)
    log_cmd.set_defaults(run=_log)

    versions_cmd = commands.add_parser(
        "versions",
        help="list the named versions of the sync branch",
        description="List the versions (named snapshots: tags refs/tags/<sync branch>/<name>),"
        " newest first, and whether the remote has each yet.",
    )
    _repo_options(versions_cmd)
    versions_cmd.set_defaults(run=_versions)

    save = commands.add_parser(
        "save-version",
        help="name the latest snapshot NAME",
        description="Name the sync branch's latest snapshot (or --at SHA) NAME, with a message:"
        " an annotated tag refs/tags/<sync branch>/NAME. The running server pushes it with the"
        " branch; with a token in GITSYNC_TOKEN or GITHUB_TOKEN it is pushed now as well. The"
        " server snapshots each save within seconds; `jupyter gitsync sync` first makes sure.",
    )
    save.add_argument("name", help="letters, digits and . _ - (no spaces, no '/')")
    save.add_argument("-m", "--message", default="", help="what this version is")
    save.add_argument("--at", metavar="SHA", help="a snapshot other than the latest")
    save.add_argument(
        "--remote",
        help="where to push it (default: GITSYNC_REMOTE_URL, else the workspace's origin)",
    )
    _repo_options(save)
    _network_options(save)
    save.set_defaults(run=_save_version)
    return parser


def _repo_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", default=".", help="the workspace (default: current dir)")
    parser.add_argument(
        "--branch", help="the sync branch (default: GITSYNC_BRANCH, else gitsync/<user>)"
    )


def _network_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stall-timeout",
        type=float,
        metavar="SECONDS",
        help="give up on a remote that sends or takes nothing for this long (default: 30)",
    )


def _deadlines(args: argparse.Namespace) -> None:
    """libgit2's socket timeouts for this process: without them a remote that takes the
    connection and never answers (a stalled proxy) would hold the command forever."""
    from .transport import (
        DEFAULT_CONNECT_TIMEOUT_SECONDS,
        DEFAULT_STALL_TIMEOUT_SECONDS,
        configure_timeouts,
    )

    stall_seconds = args.stall_timeout or DEFAULT_STALL_TIMEOUT_SECONDS
    if not 0 < stall_seconds < float("inf"):
        raise GitSyncError("--stall-timeout must be a positive number of seconds")
    configure_timeouts(DEFAULT_CONNECT_TIMEOUT_SECONDS, stall_seconds)


def _server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir", default=".", help="the workspace whose server to ask (default: current dir)"
    )
    parser.add_argument("--url", help="the server's URL, if not found automatically")
    parser.add_argument("--token", help="the server's token (default: from its runtime file)")


# -- talking to the running server ------------------------------------------------------------


def _find_server(args: argparse.Namespace) -> tuple[str, str]:
    if args.url:
        return args.url.rstrip("/") + "/", args.token or os.environ.get("JUPYTER_TOKEN", "")
    workspace = Path(args.dir).resolve()
    for info in _running_servers():
        root = Path(info.get("root_dir") or info.get("notebook_dir") or "/").resolve()
        if workspace == root or root in workspace.parents:
            return info["url"].rstrip("/") + "/", args.token or info.get("token", "")
    raise NoServer(f"no running Jupyter server serves {workspace} (use --url and --token)")


def _running_servers() -> Iterator[dict[str, Any]]:
    """What each running Jupyter server wrote into its runtime file, as jupyter_server's
    `list_running_servers` reads it, without importing jupyter_server (seconds of start-up,
    most of it building JSON-schema grammars this command never uses)."""
    from jupyter_core.paths import jupyter_runtime_dir

    runtime = Path(jupyter_runtime_dir())
    for path in sorted(runtime.glob("jpserver-*.json")) if runtime.is_dir() else ():
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # being written, or not ours to read
        if isinstance(info, dict) and _alive(info.get("pid")):
            yield info


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True  # another user's process, alive
    except OSError:
        return False
    return True


def _call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    import urllib.error  # here: `restore` talks to no server and starts faster without them
    import urllib.request

    url, token = _find_server(args)
    request = urllib.request.Request(
        url + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"token {token}"} if token else {},
    )
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            answer = json.loads(exc.read() or b"{}")
        except ValueError:
            answer = {}
        message = answer.get("message") or f"the server answered HTTP {exc.code}"
        if exc.code in (401, 403) and answer.get("kind") not in _AUTH_KINDS:
            raise GitSyncError(f"the server refused the request ({message})") from None
        raise _error_for(answer.get("kind"), message) from None
    except urllib.error.URLError as exc:
        raise NoServer(f"cannot reach the Jupyter server at {url} ({exc.reason})") from None


# Failures that signing in (or a token) fixes.
_AUTH_KINDS = (AuthRequired.kind, "no-token", "no-login")


def _error_for(kind: str | None, message: str) -> GitSyncError:
    if kind in _AUTH_KINDS:
        return AuthRequired(message)
    if kind == "network":
        return RemoteUnavailable(message)
    return GitSyncError(message)


def _status_code(status: dict[str, Any]) -> int:
    error = status.get("error") or {}
    if status.get("state") == "auth-required":
        return SIGN_IN_REQUIRED
    if status.get("state") == "offline":
        return REMOTE_UNAVAILABLE
    if status.get("state") == "conflict" or error.get("kind") == "rejected":
        return CONFLICT
    if status.get("state") == "error":
        return FAILED
    return OK


def _describe(status: dict[str, Any], out: TextIO) -> None:
    lines = [
        f"state:        {status['state']}",
        f"branch:       {status['branch']}",
        f"remote:       {status.get('remote_url') or '-'}",
        f"last synced:  {status.get('last_synced_at') or 'never'}",
        f"unpushed:     {status.get('unpushed_commits', 0)} snapshot(s)",
    ]
    if status.get("pending_paths"):
        lines.append(f"pending:      {', '.join(status['pending_paths'][:10])}")
    for skipped in status.get("skipped") or []:
        lines.append(f"skipped:      {skipped['path']} ({skipped['reason']})")
    if status.get("error"):
        lines.append(f"error:        {status['error']['message']}")
    if status.get("notice"):
        lines.append(f"notice:       {status['notice']['message']}")
    if status.get("watching") == "polling":
        lines.append(f"watching:     polling. {status.get('watching_message') or ''}".rstrip())
    print("\n".join(lines), file=out)


def _status(args: argparse.Namespace) -> int:
    status = _call(args, "GET", "gitsync/status")
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        _describe(status, sys.stdout)
    return _status_code(status)


def _sync(args: argparse.Namespace) -> int:
    status = _call(args, "POST", "gitsync/sync", {})
    _describe(status, sys.stdout)
    return _status_code(status)


def _login(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    flow = _call(args, "POST", "gitsync/auth/device", {})
    print(
        f"Open {flow['verification_uri']} and enter the code:  {flow['user_code']}\n"
        f"(it expires in {int(flow.get('expires_in', 900)) // 60} minutes; waiting…)",
        file=out,
        flush=True,
    )
    pause = max(1.0, float(flow.get("interval") or 5))
    while True:
        auth = _call(args, "GET", "gitsync/auth")
        if auth.get("signed_in") and auth.get("device_flow") is None:
            who = f" as @{auth['login']}" if auth.get("login") else ""
            print(f"Signed in to GitHub{who}.", file=out)
            return OK
        running = auth.get("device_flow") or {}
        if running.get("state") not in (None, "pending"):
            raise AuthRequired(running.get("message") or f"The sign-in {running['state']}.")
        if not running:
            raise AuthRequired("The sign-in ended without a token (signed out meanwhile?).")
        time.sleep(pause)  # GitHub's own pace, as the server polls GitHub


def _resume(args: argparse.Namespace) -> int:
    answer = _call(args, "POST", "gitsync/resume", {"branch": args.branch})
    print(answer.get("message", ""))
    return _status_code(answer)


def _publish(args: argparse.Namespace) -> int:
    request = {"branch": args.branch, "title": args.title, "body": args.body}
    if args.source:
        request["source"] = args.source
    answer = _call(args, "POST", "gitsync/publish", request)
    print(answer.get("message", ""))
    if answer.get("pull_request_url"):
        print(answer["pull_request_url"])
    return OK


# -- restore without a server ---------------------------------------------------------------


class _ProgressBar:
    """One line on stderr that fills up; plain lines when stderr is not a terminal."""

    def __init__(self, out: TextIO, quiet: bool) -> None:
        self.out = out
        self.quiet = quiet
        self.tty = out.isatty()
        self.phase = ""
        self.shown_at = 0.0

    def __call__(self, phase: str, done: int, total: int, size: int) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if phase == self.phase and now - self.shown_at < 0.1 and done < total:
            return
        label = {"fetch": "Fetching", "checkout": "Writing files"}.get(phase, phase)
        if not self.tty:
            if phase != self.phase:
                print(f"{label}…", file=self.out, flush=True)
            self.phase = phase
            return
        if phase != self.phase and self.phase:
            self.out.write("\n")
        self.phase, self.shown_at = phase, now
        width = 30
        filled = int(width * done / total) if total else 0
        extra = f" {size / 1e6:.1f} MB" if size else ""
        bar = "#" * filled + "-" * (width - filled)
        self.out.write(f"\r{label:14} [{bar}] {done}/{total}{extra}")
        self.out.flush()

    def close(self) -> None:
        if self.tty and self.phase and not self.quiet:
            self.out.write("\n")


def _restore(args: argparse.Namespace) -> int:
    from . import origin, restore  # see the module's docstring: only what `restore` needs
    from .auth import Credentials, EnvTokenProvider
    from .repository import SyncRepository, default_user, limit_pack_mappings
    from .snapshots import Snapshotter

    limit_pack_mappings()  # a restore's peak memory (see there)
    _deadlines(args)
    workspace = Path(args.dir).resolve()
    if not workspace.is_dir():
        raise GitSyncError(f"{workspace} is not a directory")
    branch = args.branch or os.environ.get("GITSYNC_BRANCH") or f"gitsync/{default_user()}"
    configured = args.remote or os.environ.get("GITSYNC_REMOTE_URL")
    url = origin.detect(configured, None, os.environ)
    if url is None and not (workspace / ".git").exists():
        raise GitSyncError("no remote to restore from: give --remote or set GITSYNC_REMOTE_URL")
    repo = SyncRepository(workspace, branch)
    url = origin.detect(configured, repo.origin_url(), os.environ)
    if url is None:
        raise GitSyncError("no remote to restore from: give --remote or set GITSYNC_REMOTE_URL")
    credentials = Credentials([EnvTokenProvider()])
    bar = _ProgressBar(sys.stderr, args.quiet)
    try:
        result = restore.run_restore(repo, Snapshotter(repo), url, credentials.token, bar)
    finally:
        bar.close()
    print(result.message)
    return CONFLICT if result.conflicts else OK


# -- history and versions, read from the repository -------------------------------------------


def _open(args: argparse.Namespace) -> tuple[Any, str]:
    """The workspace's repository (a plain pygit2 one: the running server holds the engine's
    lock, and reading needs none) and the sync branch."""
    import pygit2

    from .repository import default_user

    workspace = Path(args.dir).resolve()
    try:
        repo = pygit2.Repository(str(workspace))
    except pygit2.GitError:
        raise GitSyncError(f"{workspace} is not a git repository") from None
    branch = args.branch or os.environ.get("GITSYNC_BRANCH") or f"gitsync/{default_user()}"
    return repo, branch


def _log(args: argparse.Namespace) -> int:
    from . import history, versions  # see the module's docstring

    if not 1 <= args.n <= history.MAX_LIMIT:
        raise GitSyncError(f"-n must be from 1 to {history.MAX_LIMIT}")
    repo, branch = _open(args)
    marks = versions.by_commit(versions.list_versions(repo, branch))
    page = history.read_history(repo, Path(repo.path), branch, args.path, args.n, None, marks)
    if not page.entries and not page.cut:
        print(f"No snapshots on {branch} yet.")
    for entry in page.entries:
        named = f"  [{', '.join(entry.versions)}]" if entry.versions else ""
        by = f"  ({entry.session})" if entry.session else ""
        where = f"  {entry.path}" if args.path and entry.path not in (None, args.path) else ""
        summary = entry.message.splitlines()[0] if entry.message else ""
        print(f"{entry.sha[:12]}  {entry.time or '-':25}  {summary}{named}{where}{by}")
    if page.cut:
        print("(the history here stops: a restore fetched only the latest snapshots; the"
              " server fetches older ones when its History panel asks)")  # fmt: skip
    elif page.more:
        print(f"(more: -n {min(args.n * 2, history.MAX_LIMIT)})")
    return OK


def _versions(args: argparse.Namespace) -> int:
    from . import versions  # see the module's docstring

    repo, branch = _open(args)
    listed = versions.list_versions(repo, branch)
    if not listed:
        print(f"No versions of {branch} yet (jupyter gitsync save-version NAME -m MESSAGE).")
    for version in listed:
        summary = version.message.splitlines()[0] if version.message else ""
        pushed = "" if version.pushed else "  (not pushed yet)"
        print(f"{version.name:24}  {version.sha[:12]}  {version.time or '-':25}  {summary}{pushed}")
    return OK


def _save_version(args: argparse.Namespace) -> int:
    from . import history, origin, versions  # see the module's docstring
    from .auth import Credentials, EnvTokenProvider
    from .repository import author_of
    from .transport import Transport

    _deadlines(args)
    repo, branch = _open(args)
    if args.at is not None:
        target = history.commit_at(repo, args.at).id
    else:
        ref = repo.references.get(f"refs/heads/{branch}")
        if ref is None:
            raise GitSyncError(f"{branch} has no snapshots yet to name")
        target = ref.resolve().target
    tagger = versions.tagger_now(*author_of(repo))
    version = versions.create(repo, branch, args.name, args.message, target, tagger)
    print(f"Saved version {version.name} of {branch} at {version.sha[:12]}.")
    token = Credentials([EnvTokenProvider()]).token
    configured = args.remote or os.environ.get("GITSYNC_REMOTE_URL")
    remote = repo.remotes["origin"].url if "origin" in repo.remotes.names() else None
    url = origin.detect(configured, remote, os.environ)
    if token() is None or url is None:
        print("The running server pushes it with the branch (or the next one that starts).")
        return OK
    pending = versions.unpushed(repo, branch)
    ref = f"{versions.prefix(branch)}{args.name}"
    mine: dict[str, str | None] = {ref: pending[ref]} if ref in pending else {}
    Transport(Path(repo.path)).push(url, token, mine)
    print(f"Pushed it to {url}.")
    return OK


if __name__ == "__main__":
    sys.exit(main())
