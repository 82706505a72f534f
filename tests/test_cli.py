"""`jupyter gitsync` as a Binder start script or a terminal user runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from jupyter_gitsync import cli
from tests.github_stub import GitHubStub
from tests.gitserver import GitHTTPServer
from tests.helpers import SNAPSHOT_BRANCH as BRANCH
from tests.helpers import LocalSession, files, git, ref_or_none, show, wait_until
from tests.test_server_process import jupyter_server

ROOT = Path(__file__).resolve().parent.parent


def run(
    *args: str, token: str | None = None, cwd: Path | None = None, python: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITSYNC_", "GITHUB_"))}
    if token is not None:
        env["GITSYNC_TOKEN"] = token
    # importable from any cwd, installed or not
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, *python, "-m", "jupyter_gitsync.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_explains_each_command_and_the_exit_codes() -> None:
    top = run("--help")
    assert top.returncode == 0
    for command in ("status", "sync", "restore", "resume", "log", "versions", "save-version"):
        assert command in top.stdout
        sub = run(command, "--help")
        assert sub.returncode == 0 and "usage: jupyter gitsync " + command in sub.stdout
    assert "exit codes" in top.stdout
    assert run().returncode == cli.USAGE
    assert run("restore", "--no-such-option").returncode == cli.USAGE


SERVER_MODULES = ("jupyter_server", "jupyter_events", "jsonschema", "tornado")


def imported(process: subprocess.CompletedProcess[str]) -> set[str]:
    """The top-level packages a `python -X importtime` child imported (from its stderr)."""
    found = set()
    for line in process.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            found.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return found


def test_restore_and_help_never_import_the_jupyter_server(
    tmp_path: Path, earlier_session: Path, remote_url: str, token: str
) -> None:
    """A Binder start script waits for `restore`: importing jupyter_server (and
    jupyter_events, jsonschema) was most of its start-up, and it needs none of them."""
    target = tmp_path / "home"
    target.mkdir()
    runs = [
        run("--help", python=("-X", "importtime")),
        run("restore", "--help", python=("-X", "importtime")),
        run("status", "--dir", str(tmp_path), python=("-X", "importtime")),  # no server there
        run("restore", "--branch", BRANCH, "--remote", remote_url, str(target), token=token,
            python=("-X", "importtime")),
    ]  # fmt: skip
    assert runs[-1].returncode == cli.OK, runs[-1].stderr[-2000:]
    assert files(target) == files(earlier_session)
    for process in runs:
        modules = imported(process)
        assert "jupyter_gitsync" in modules  # the import log is there at all
        assert not modules & set(SERVER_MODULES), process.args


# What a restore has no use for: the server's engine and its event loop (asyncio, the worker
# threads), the history and its notebook diffs. Each was part of a Binder start's wait.
NOT_FOR_RESTORE = (
    *SERVER_MODULES,
    "asyncio",
    "nbdime",
    "nbformat",
    "jupyter_gitsync.app",
    "jupyter_gitsync.engine",
    "jupyter_gitsync.workers",
    "jupyter_gitsync.history",
    "jupyter_gitsync.rewind",
    "jupyter_gitsync.publish",
)

# Runs `jupyter gitsync ARGS` in this process, then prints the modules it had imported.
_MODULES_AFTER = """
import json, sys
from jupyter_gitsync import cli
code = cli.main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def modules_after(*args: str, token: str | None = None) -> tuple[int, set[str]]:
    """The exit code of `jupyter gitsync ARGS` and every module the command imported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITSYNC_", "GITHUB_"))}
    if token is not None:
        env["GITSYNC_TOKEN"] = token
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", _MODULES_AFTER, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    return answer["code"], set(answer["modules"])


def test_each_command_imports_only_what_it_needs(
    tmp_path: Path, earlier_session: Path, remote_url: str, token: str
) -> None:
    """`restore` brings in the restore and nothing of the server, its engine or the history;
    the commands that only talk to a running server do not load pygit2 at all."""
    target = tmp_path / "home"
    target.mkdir()
    code, modules = modules_after(
        "restore", "--quiet", "--branch", BRANCH, "--remote", remote_url, str(target), token=token
    )
    assert code == cli.OK
    assert files(target) == files(earlier_session)
    assert {"jupyter_gitsync.restore", "jupyter_gitsync.transport", "pygit2"} <= modules
    assert not modules & set(NOT_FOR_RESTORE), sorted(modules & set(NOT_FOR_RESTORE))

    code, modules = modules_after("status", "--dir", str(tmp_path))  # no server there
    assert code == cli.NO_SERVER
    assert "jupyter_gitsync.cli" in modules
    assert not modules & {"pygit2", "jupyter_gitsync.repository", *NOT_FOR_RESTORE}

    code, modules = modules_after("log", "--dir", str(target), "--branch", BRANCH)
    assert code == cli.OK  # the history, when asked for
    assert "jupyter_gitsync.history" in modules


@pytest.mark.skipif(shutil.which("jupyter-gitsync") is None, reason="package not installed")
def test_it_is_a_jupyter_subcommand() -> None:
    out = subprocess.run(["jupyter", "gitsync", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "restore" in out.stdout


def test_restore_an_empty_directory(
    tmp_path: Path, earlier_session: Path, remote_url: str, token: str
) -> None:
    target = tmp_path / "binder-home"
    target.mkdir()
    out = run("restore", "--branch", BRANCH, "--remote", remote_url, str(target), token=token)
    assert out.returncode == cli.OK, out.stderr
    assert "Restored the latest snapshot." in out.stdout
    assert files(target) == files(earlier_session)
    assert git(target, "rev-parse", "HEAD") == git(earlier_session, "rev-parse", "HEAD")
    assert token not in out.stdout + out.stderr


def test_restore_exit_codes(
    tmp_path: Path,
    earlier_session: Path,
    clone_into: Callable[[Path], Path],
    git_server: GitHTTPServer,
    remote_url: str,
    token: str,
) -> None:
    (tmp_path / "a").mkdir()
    wrong = run("restore", "--branch", BRANCH, "--remote", remote_url, str(tmp_path / "a"),
                token="not-the-token")  # fmt: skip
    assert wrong.returncode == cli.SIGN_IN_REQUIRED, wrong.stderr
    assert "refused the token" in wrong.stderr and "not-the-token" not in wrong.stderr

    crashed = clone_into(tmp_path / "crashed")
    (crashed / "analysis.ipynb").write_text("my own edit\n")
    conflict = run("restore", "--branch", BRANCH, str(crashed), token=token)  # remote = origin
    assert conflict.returncode == cli.CONFLICT, conflict.stderr
    assert "rescue" in conflict.stdout
    assert (crashed / "analysis.ipynb").read_text() == "my own edit\n"

    git_server.stop()
    (tmp_path / "b").mkdir()
    down = run("restore", "--branch", BRANCH, "--remote", remote_url, str(tmp_path / "b"),
               token=token)  # fmt: skip
    assert down.returncode == cli.REMOTE_UNAVAILABLE, down.stderr
    assert list((tmp_path / "b").iterdir()) in ([], [tmp_path / "b" / ".git"])


def test_a_remote_that_never_answers_is_given_up_on(
    tmp_path: Path, earlier_session: Path, git_server: GitHTTPServer, remote_url: str, token: str
) -> None:
    """A remote that takes the connection and never answers (a stalled proxy): `restore` and
    `save-version` give up after `--stall-timeout` with the exit code for an unreachable remote
    and a plain message, and leave the directory as it was; a bad value is refused."""
    git_server.delay_seconds = 3600.0  # from now on it answers nothing
    target = tmp_path / "binder-home"
    target.mkdir()
    hung = run("restore", "--branch", BRANCH, "--remote", remote_url, "--stall-timeout", "2",
               "--quiet", str(target), token=token)  # fmt: skip
    assert hung.returncode == cli.REMOTE_UNAVAILABLE, hung.stderr
    assert token not in hung.stdout + hung.stderr
    assert [p.name for p in target.iterdir()] in ([], [".git"])
    assert not (target / ".git").exists() or git(target, "status", "--porcelain") == ""

    saved = run("save-version", "v1", "--dir", str(earlier_session), "--branch", BRANCH,
                "--remote", remote_url, "--stall-timeout", "2", token=token)  # fmt: skip
    assert saved.returncode == cli.REMOTE_UNAVAILABLE, saved.stderr
    assert "Saved version v1" in saved.stdout  # named here; the server pushes it later

    bad = run("restore", "--stall-timeout", "-1", str(target), token=token)
    assert bad.returncode not in (cli.OK, cli.REMOTE_UNAVAILABLE)
    assert "--stall-timeout must be a positive number" in bad.stderr


def test_no_running_server(tmp_path: Path) -> None:
    out = run("status", "--dir", str(tmp_path), cwd=tmp_path)
    assert out.returncode == cli.NO_SERVER
    assert "no running Jupyter server" in out.stderr


def test_status_sync_and_resume_talk_to_the_running_server(
    tmp_path: Path,
    earlier_session: Path,
    clone_into: Callable[[Path], Path],
    git_server: GitHTTPServer,
    remote: str,
    remote_url: str,
    token: str,
) -> None:
    workspace = clone_into(tmp_path / "ws")
    env = {
        "GITSYNC_REMOTE_URL": remote_url,
        "GITSYNC_BRANCH": "gitsync/cli",
        "GITSYNC_TOKEN": token,
        "GITSYNC_COMMIT_DELAY": "60",  # only `sync` makes snapshots in this test
    }
    with jupyter_server(workspace, tmp_path, env) as server:
        where = ("--url", server.url, "--token", server.token)
        wait_until(lambda: run("status", *where).returncode == cli.OK, what="synced")
        status = run("status", "--json", *where)
        assert '"branch": "gitsync/cli"' in status.stdout

        (workspace / "from-cli.txt").write_text("sync now\n")
        synced = run("sync", *where)
        assert synced.returncode == cli.OK, synced.stderr
        bare = git_server.repo_path(remote)
        assert show(bare, "refs/heads/gitsync/cli", "from-cli.txt") == b"sync now\n"

        resumed = run("resume", BRANCH, *where)
        assert resumed.returncode == cli.OK, resumed.stderr
        assert f"syncing to {BRANCH}" in resumed.stdout
        assert files(workspace) == files(earlier_session)
        assert ref_or_none(bare, f"refs/heads/{BRANCH}") is not None

        missing = run("resume", "no-such-branch", *where)
        assert missing.returncode == cli.FAILED
        assert "no branch named 'no-such-branch'" in missing.stderr


def _login(where: tuple[str, ...]) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITSYNC_", "GITHUB_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.Popen(
        [sys.executable, "-m", "jupyter_gitsync.cli", "login", *where],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_login_from_a_terminal_signs_the_running_server_in(
    tmp_path: Path,
    clone_into: Callable[[Path], Path],
    git_server: GitHTTPServer,
    remote: str,
    remote_url: str,
    token: str,
) -> None:
    """`jupyter gitsync login` shows GitHub's device code and waits; a denied code exits 3
    with GitHub's reason; an approved one exits 0, and the server (not the command) holds the
    token: the work is pushed, and the token is in neither the command's output nor a file."""
    github = GitHubStub().start()
    github.interval = 1
    try:
        workspace = clone_into(tmp_path / "ws")
        env = {
            "GITSYNC_REMOTE_URL": remote_url,
            "GITSYNC_BRANCH": "gitsync/cli",
            "GITSYNC_CLIENT_ID": github.client_id,
            "GITSYNC_GITHUB_URL": github.url,
            "GITSYNC_GITHUB_API_URL": github.url,
            "GITSYNC_COMMIT_DELAY": "0.2",
        }
        with jupyter_server(workspace, tmp_path / "server", env) as server:
            where = ("--url", server.url, "--token", server.token)
            (workspace / "before-login.txt").write_text("kept until signed in\n")
            wait_until(
                lambda: run("status", *where).returncode == cli.SIGN_IN_REQUIRED,
                what="sign-in required",
            )
            denied = _login(where)
            assert denied.stdout is not None
            assert "enter the code" in denied.stdout.readline()
            github.deny(github.latest_code().user_code)
            _, err = denied.communicate(timeout=60)
            assert denied.returncode == cli.SIGN_IN_REQUIRED, err
            assert "cancelled" in err

            signing_in = _login(where)
            assert signing_in.stdout is not None
            first = signing_in.stdout.readline()
            code = github.latest_code().user_code
            assert code in first and f"{github.url}/login/device" in first
            github.approve(code, login="octocat", token=token)
            out, err = signing_in.communicate(timeout=60)
            assert signing_in.returncode == cli.OK, err
            assert "Signed in to GitHub as @octocat." in out
            assert token not in first + out + err
            bare = git_server.repo_path(remote)
            wait_until(
                lambda: show(bare, "refs/heads/gitsync/cli", "before-login.txt"),
                what="the work pushed with the server's new token",
            )
        assert not [
            p for p in tmp_path.rglob("*") if p.is_file() and token.encode() in p.read_bytes()
        ]
    finally:
        github.stop()


def test_log_versions_and_save_version_read_and_write_the_repository(
    tmp_path: Path,
    clone_into: Callable[[Path], Path],
    git_server: GitHTTPServer,
    remote: str,
    remote_url: str,
    token: str,
) -> None:
    """`log`, `versions` and `save-version` work on the workspace's repository, with or without
    a server; `save-version` pushes the version at once when a token is there."""
    workspace = clone_into(tmp_path / "ws")
    session = LocalSession(workspace, BRANCH, session="cli-test 2026-12-01T08:00:00Z")
    made = []
    for i in range(3):
        (workspace / "paper.ipynb").write_text(f'{{"cells": [], "n": {i}}}')
        snapshot = session.snapshot(None)
        assert snapshot is not None
        made.append(snapshot.commit)
    (workspace / "other.txt").write_text("x")
    assert session.snapshot(None) is not None
    session.push(remote_url, lambda: token)
    where = ("--dir", str(workspace), "--branch", BRANCH)

    log = run("log", "paper.ipynb", *where)
    assert log.returncode == cli.OK, log.stderr
    lines = log.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [sha[:12] for sha in reversed(made)]
    assert "(cli-test 2026-12-01T08:00:00Z)" in lines[0]
    whole = run("log", "-n", "2", *where)
    assert len(whole.stdout.splitlines()) == 3 and "(more: -n 4)" in whole.stdout
    assert run("log", "-n", "0", *where).returncode == cli.FAILED
    assert run("log", "../x", *where).returncode == cli.FAILED
    assert run("log", "paper.ipynb", *where, "--branch", "gitsync/nobody").stdout.startswith(
        "No snapshots"
    )

    assert "No versions" in run("versions", *where).stdout
    saved = run("save-version", "draft-1", "-m", "First draft", *where, token=token)
    assert saved.returncode == cli.OK, saved.stderr
    assert "Pushed it" in saved.stdout and token not in saved.stdout + saved.stderr
    tag = f"refs/tags/{BRANCH}/draft-1"
    bare = git_server.repo_path(remote)
    assert git(bare, "rev-parse", f"{tag}^{{commit}}") == git(workspace, "rev-parse", BRANCH)
    listed = run("versions", *where)
    assert listed.stdout.split()[:2] == ["draft-1", git(workspace, "rev-parse", BRANCH)[:12]]
    assert "not pushed" not in listed.stdout
    assert "[draft-1]" in run("log", *where).stdout.splitlines()[0]

    older = run("save-version", "first", "--at", made[0], *where)  # no token: left to the server
    assert older.returncode == cli.OK and "running server pushes it" in older.stdout
    assert "(not pushed yet)" in run("versions", *where).stdout
    for bad in ("a..b", "x.lock", "a/b", "draft-1"):
        refused = run("save-version", bad, "-m", "m", *where)
        assert refused.returncode == cli.FAILED, bad
    assert git(workspace, "tag", "-l").splitlines() == [
        f"{BRANCH}/draft-1",
        f"{BRANCH}/first",
    ]
    session.close()
