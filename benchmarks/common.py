"""What every figure needs: sizes, result rows, generated workspaces, the loopback git server,
git with the token in its environment, a real `jupyter server` process, and measured children.

Workspaces and remotes are generated once per run under one temp dir and reused by the figures
that can share them (a figure that changes a workspace works on its own clone or copy).
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.jupyter_process import JupyterProcess, jupyter_process
from tests.jupyter_process import free_port as free_port  # re-exported

REPO_ROOT = Path(__file__).resolve().parent.parent
BRANCH = "gitsync/bench"
TOKEN_USER = "x-access-token"
_T0 = time.monotonic()


def log(message: str) -> None:
    """Progress on stderr, with the time since the run started."""
    print(f"[{time.monotonic() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


# -- sizes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """How big a run is: `FULL` for `make bench`, `QUICK` for `--quick`."""

    files: int  # the large workspace (50k)
    small_files: int  # the small workspace (1k)
    notebooks_mb: float  # the notebook-heavy workspace
    reps: int  # repetitions of cheap measurements (P1)
    reps_expensive: int  # repetitions of expensive ones (P3, P6)
    saves: int  # P2 saves
    burst: int  # P5 writes
    idle_seconds: float  # P5 idle CPU window
    edit_burst: int  # P4 edits after the initial sync
    p7_saves: int
    p7_notebook_mb: float
    p8_snapshots: int  # the sync branch's history behind the tip
    p8_notebook_mb: float
    p9_snapshots: int  # snapshots of the 10 changed files on top of the launch commit
    p10_saves: int  # saves of the plot-heavy notebook (the figure is scaled to 1,000)
    p10_figures: int  # its figures (PNG outputs of 100-300 kB)
    p11_snapshots: int  # the sync branch's history a file's history is read from


FULL = Sizes(
    files=50_000,
    small_files=1_000,
    notebooks_mb=100,
    reps=11,
    reps_expensive=3,
    saves=20,
    burst=100_000,
    idle_seconds=10,
    edit_burst=2_000,
    p7_saves=100,
    p7_notebook_mb=5,
    p8_snapshots=1000,
    p8_notebook_mb=1.6,
    p9_snapshots=50,
    p10_saves=100,  # 1,000 take ~15 min here (snapshot 0.25 s and push 0.8 s at 2.2 MB)
    p10_figures=8,
    p11_snapshots=10_000,
)
QUICK = Sizes(
    files=2_000,
    small_files=200,
    notebooks_mb=8,
    reps=3,
    reps_expensive=2,
    saves=5,
    burst=5_000,
    idle_seconds=2,
    edit_burst=200,
    p7_saves=10,
    p7_notebook_mb=1,
    p8_snapshots=100,
    p8_notebook_mb=0.4,
    p9_snapshots=10,
    p10_saves=20,
    p10_figures=8,
    p11_snapshots=1_000,
)


def human_count(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


# -- results --------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table. `ratio` is ours / baseline; `met` is None where no target is set."""

    figure: str
    what: str
    unit: str
    ours: float | None
    baseline: float | None = None
    baseline_name: str = ""
    target: str = "—"
    target_ratio: float | None = None  # met if ratio <= this
    target_abs: float | None = None  # met if ours <= this (same unit as ours)
    ratio: float | None = None
    met: bool | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.ours is not None and self.baseline:
            self.ratio = self.ours / self.baseline
        if self.target_ratio is not None and self.ratio is not None:
            self.met = self.ratio <= self.target_ratio
        elif self.target_abs is not None and self.ours is not None:
            self.met = self.ours <= self.target_abs

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


def ms(seconds: float) -> float:
    return seconds * 1000.0


# -- generated content ----------------------------------------------------------------------

_SYLLABLES = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "do", "be", "ph", "qu", "an", "el", "or"]


def _vocabulary(rng: random.Random) -> list[str]:
    words = ["".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4))) for _ in range(5000)]
    return [*words, "def", "return", "import", "self", "for", "in", "if", "=", "(", ")", ":"]


def _text(rng: random.Random, words: list[str], size: int) -> str:
    """Source-like text of about `size` bytes, drawn afresh (files share words, not long runs,
    so git finds no deltas between different files, as in a real repository)."""
    lines = []
    total = 0
    while total < size:
        line = " ".join(rng.choices(words, k=rng.randint(3, 12)))
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines) + "\n"


def layout(n: int) -> list[str]:
    """`n` relative file paths, about 100 per directory, leaf directories grouped 25 a parent
    (50k files: 500 directories under 20 parents)."""
    exts = [".py", ".md", ".csv", ".txt", ".json"]
    leaves = max(1, n // 100)
    paths = []
    for i in range(n):
        leaf = i % leaves
        paths.append(f"pkg{leaf // 25:02d}/mod{leaf % 25:02d}/file{i // leaves:04d}{exts[i % 5]}")
    return paths


def write_files(root: Path, n: int, seed: int = 1) -> list[str]:
    """Write `n` files of about 2 KB (1.5 to 2.5 KB) under `root`; return their paths."""
    rng = random.Random(seed)
    words = _vocabulary(rng)
    paths = layout(n)
    made: set[Path] = set()
    for rel in paths:
        full = root / rel
        if full.parent not in made:
            full.parent.mkdir(parents=True, exist_ok=True)
            made.add(full.parent)
        full.write_text(f"# {rel}\n" + _text(rng, words, rng.randint(1500, 2500)))
    return paths


def notebook(rng: random.Random, size: int, cells: int = 40) -> dict[str, Any]:
    """An nbformat-4 notebook of about `size` bytes: code cells, text outputs and PNG outputs
    (random bytes, base64, as incompressible as real plots)."""
    png_per_cell = max(0, (size - cells * 600) // cells)
    cell_list = []
    for i in range(cells):
        source = [f"x{i} = compute({i}, scale={rng.random():.6f})\n", f"plot(x{i})\n"]
        raw = rng.randbytes(png_per_cell * 3 // 4)
        cell_list.append(
            {
                "cell_type": "code",
                "execution_count": i + 1,
                "id": f"cell-{i:04d}",
                "metadata": {},
                "source": source,
                "outputs": [
                    {"name": "stdout", "output_type": "stream", "text": [f"result {i}: ok\n"]},
                    {
                        "output_type": "display_data",
                        "metadata": {},
                        "data": {
                            "image/png": base64.b64encode(raw).decode(),
                            "text/plain": ["<Figure size 640x480 with 1 Axes>"],
                        },
                    },
                ],
            }
        )
    return {
        "cells": cell_list,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def dump_notebook(nb: dict[str, Any]) -> str:
    """As Jupyter writes it (indent 1, keys sorted, trailing newline)."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def write_notebooks(root: Path, total_mb: float, seed: int = 7) -> list[str]:
    """A notebook-heavy workspace: notebooks of about 2.5 MB adding up to `total_mb`, plus a
    few hundred small files."""
    rng = random.Random(seed)
    count = max(1, round(total_mb / 2.5))
    size = int(total_mb * 1e6 / count)
    paths = []
    for i in range(count):
        rel = f"notebooks/chapter{i // 10:02d}/analysis{i:03d}.ipynb"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(dump_notebook(notebook(rng, size)))
        paths.append(rel)
    small = root / "src"
    paths += [f"src/{p}" for p in write_files(small, 200, seed=seed)]
    return paths


# -- git ------------------------------------------------------------------------------------


def git_env(token: str | None = None) -> dict[str, str]:
    """git without the user's or the system's config; with `token`, sent as an HTTP header
    given through the environment (GIT_CONFIG_COUNT), never written to disk."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "GITSYNC_", "GITHUB_"))}
    env.update(
        {
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_AUTHOR_NAME": "Bench",
            "GIT_AUTHOR_EMAIL": "bench@example.invalid",
            "GIT_COMMITTER_NAME": "Bench",
            "GIT_COMMITTER_EMAIL": "bench@example.invalid",
            "GIT_TERMINAL_PROMPT": "0",
        }
    )
    if token is not None:
        basic = base64.b64encode(f"{TOKEN_USER}:{token}".encode()).decode()
        env.update(
            {
                "GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": "http.extraHeader",
                "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
            }
        )
    return env


def git(*args: str, cwd: Path | None = None, token: str | None = None, stdin: bytes | None = None
        ) -> str:  # fmt: skip
    """Run the git CLI; raise with its stderr on failure."""
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=git_env(token), input=stdin, capture_output=True
    )
    if proc.returncode:
        raise RuntimeError(f"git {' '.join(args[:2])} failed: {proc.stderr.decode()[-2000:]}")
    return proc.stdout.decode().strip()


def ref_of(bare: Path, ref: str) -> str | None:
    """The sha of `ref` in a bare repository, read from the files (fast enough to poll)."""
    try:
        return (bare / ref).read_text().strip() or None
    except FileNotFoundError:
        pass
    try:
        for line in (bare / "packed-refs").read_text().splitlines():
            sha, _, name = line.partition(" ")
            if name == ref:
                return sha
    except FileNotFoundError:
        pass
    return None


def close_repo(repo: Any) -> None:
    """Release a SyncRepository or a LocalSession (its engine lock: one engine per
    repository)."""
    close = getattr(repo, "close", None)
    if close is not None:
        close()


def du(path: Path) -> int:
    """Bytes of the files under `path` (apparent sizes)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def copy_tree(src: Path, dest: Path) -> Path:
    """`cp -a` (fast, keeps nothing shared)."""
    subprocess.run(["cp", "-a", str(src), str(dest)], check=True)
    return dest


def _fast_import(src: Path, bare: Path) -> None:
    """Commit every file under `src` as `main` of `bare`, streamed into `git fast-import` (much
    faster than `git add` of tens of thousands of files, and it writes a pack directly)."""
    proc = subprocess.Popen(
        ["git", "fast-import", "--quiet"], cwd=bare, env=git_env(), stdin=subprocess.PIPE
    )
    assert proc.stdin is not None
    out = proc.stdin
    stamp = f"Bench <bench@example.invalid> {int(time.time())} +0000"
    out.write(f"commit refs/heads/main\nauthor {stamp}\ncommitter {stamp}\n".encode())
    out.write(b"data 15\nInitial commit\n\n")
    for root, dirs, files in os.walk(src):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, src).replace(os.sep, "/")
            with open(full, "rb") as f:
                data = f.read()
            out.write(b"M 100644 inline %s\ndata %d\n%s\n" % (rel.encode(), len(data), data))
    out.write(b"done\n")
    out.close()
    if proc.wait():
        raise RuntimeError("git fast-import failed")


# -- the loopback git server, in its own process ---------------------------------------------


class GitServer:
    """`tests/gitserver.py` in a child process (so its request threads never share a GIL with a
    measurement), serving bare repositories under `root` with token auth."""

    def __init__(self, root: Path, token: str) -> None:
        from tests.gitserver import GitHTTPServer

        self.root = root
        self.token = token
        self._repos = GitHTTPServer(root, token)  # never started: repo creation and paths
        token_file = root.parent / "gitserver-token"
        token_file.write_text(token)
        token_file.chmod(0o600)
        self.process = subprocess.Popen(
            [sys.executable, "tests/gitserver.py", "--root", str(root), "--token-file",
             str(token_file)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        )  # fmt: skip
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode().strip()
        if not line.startswith("READY "):
            raise RuntimeError(f"git server did not start: {line!r}")
        self.url = line.split(" ", 1)[1]

    def repo_url(self, name: str) -> str:
        return f"{self.url}/{name}.git"

    def repo_path(self, name: str) -> Path:
        return self._repos.repo_path(name)

    def create_empty(self, name: str) -> Path:
        path = self.repo_path(name)
        rmtree(path)
        return self._repos.create_repo(name)

    def copy_repo(self, source: str, name: str) -> Path:
        """A new bare repository with the same content as `source` (packs are copied)."""
        dest = self.repo_path(name)
        rmtree(dest)
        copy_tree(self.repo_path(source), dest)
        return dest

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


# -- the run's shared state -------------------------------------------------------------------


class Context:
    """The temp dir, the git server and the generated workspaces of one run."""

    def __init__(self, root: Path, sizes: Sizes) -> None:
        self.root = root
        self.sizes = sizes
        self.token = secrets.token_hex(20)
        (root / "remotes").mkdir(parents=True, exist_ok=True)
        self.server = GitServer(root / "remotes", self.token)
        self._templates: dict[str, Path] = {}
        self._remotes: dict[str, str] = {}
        self._counter = 0

    def close(self) -> None:
        self.server.stop()

    def scratch(self, name: str) -> Path:
        """A fresh, empty directory of this run."""
        self._counter += 1
        path = self.root / "work" / f"{self._counter:03d}-{name}"
        path.mkdir(parents=True)
        return path

    def template(self, kind: str) -> Path:
        """Generated files (no .git): 'files:N' or 'notebooks'. Made once per run."""
        if kind not in self._templates:
            path = self.root / "templates" / kind.replace(":", "-")
            path.mkdir(parents=True)
            start = time.monotonic()
            if kind == "notebooks":
                write_notebooks(path, self.sizes.notebooks_mb)
            else:
                write_files(path, int(kind.split(":")[1]))
            log(f"generated {kind} ({du(path) / 1e6:.0f} MB) in {time.monotonic() - start:.1f} s")
            self._templates[kind] = path
        return self._templates[kind]

    def base_remote(self, kind: str) -> str:
        """A bare repository on the server whose `main` is one commit of the template, packed
        (as a forge serves it). Made once per run; figures copy it before changing it."""
        if kind not in self._remotes:
            name = "base-" + kind.replace(":", "-")
            start = time.monotonic()
            bare = self.server.create_empty(name)
            _fast_import(self.template(kind), bare)
            git("repack", "-adq", cwd=bare)
            git("pack-refs", "--all", cwd=bare)
            log(f"remote {name} ready in {time.monotonic() - start:.1f} s")
            self._remotes[kind] = name
        return self._remotes[kind]

    def clone(self, remote: str, name: str) -> Path:
        """A workspace as Binder or a user makes it: a clone of `remote` (local path, fast)."""
        dest = self.scratch(name) / "ws"
        git("clone", "-q", str(self.server.repo_path(remote)), str(dest))
        git("config", "user.name", "Bench User", cwd=dest)
        git("config", "user.email", "user@example.invalid", cwd=dest)
        return dest

    def plain_copy(self, kind: str, name: str) -> Path:
        """The template's files in a new directory that is not a git repository yet."""
        dest = self.scratch(name) / "ws"
        return copy_tree(self.template(kind), dest)


# -- bytes on the wire -----------------------------------------------------------------------


class CountingProxy:
    """A TCP relay on loopback in front of the git server that counts the bytes the server
    sends to its clients (what a client receives: HTTP headers, ref advertisements, packs)."""

    def __init__(self, upstream_url: str) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(upstream_url)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self.received = 0
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self._lock:
            self.received = 0

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._upstream)
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, counted: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if counted:
                    with self._lock:
                        self.received += len(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed = True
        self._server.close()


# -- measured child processes ---------------------------------------------------------------


@dataclass
class ChildRun:
    wall: float  # seconds, spawn to exit
    maxrss_kb: int  # rusage max RSS: the largest single process of the tree
    tree_peak_kb: int  # sampled: the largest sum of RSS over the live process tree
    returncode: int
    stdout: str
    stderr: str


GNU_TIME = "/usr/bin/time"


def run_measured(
    cmd: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> ChildRun:
    """Run `cmd`; measure wall time, its max RSS, and, sampled every 10 ms with psutil, the
    peak of the summed RSS of the child and its descendants.

    The max RSS comes from GNU time (`%M`, its wait4 rusage of the command: the largest single
    process among the command and the children it waited for). Not from our own wait4: Linux
    carries the high-water RSS of the process that forks into the child's ru_maxrss across
    exec (Python's subprocess uses vfork), so every child would report at least this
    process's own peak."""
    import psutil

    use_time = os.access(GNU_TIME, os.X_OK)
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-child-{os.getpid()}"
    rss_file = Path(f"{tmp}.rss")
    full = [GNU_TIME, "-f", "%M", "-o", str(rss_file), *cmd] if use_time else list(cmd)
    with open(f"{tmp}.out", "wb+") as out, open(f"{tmp}.err", "wb+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(full, env=env, cwd=cwd, stdout=out, stderr=err)
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            try:
                parent = psutil.Process(proc.pid)
            except psutil.Error:
                return
            while not done.is_set():
                total = 0
                try:
                    procs = [parent, *parent.children(recursive=True)]
                except psutil.Error:
                    break
                for p in procs:
                    with contextlib.suppress(psutil.Error):
                        total += p.memory_info().rss
                peak = max(peak, total // 1024)
                done.wait(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    maxrss = usage.ru_maxrss
    if use_time:
        with contextlib.suppress(OSError, ValueError, IndexError):
            maxrss = int(rss_file.read_text().strip().splitlines()[-1])
    for suffix in (".out", ".err", ".rss"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    return ChildRun(wall, maxrss, peak, proc.returncode, stdout, stderr)


# -- a real `jupyter server` with the extension -----------------------------------------------


@dataclass
class JupyterServer(JupyterProcess):
    """The shared server process (tests/jupyter_process.py), with longer request timeouts
    (a large workspace keeps the server busy) and a status poll."""

    def request(self, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
        return super().request(method, path, body, timeout)

    def wait_status(self, predicate: Callable[[dict[str, Any]], bool], timeout: float,
                    what: str) -> dict[str, Any]:  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if predicate(status):
                return status
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}; status: {status}")
            time.sleep(0.05)


@contextmanager
def jupyter_server(
    root: Path, home: Path, env: dict[str, str], extensions: Sequence[str] = ()
) -> Iterator[JupyterServer]:
    """Start `jupyter server` on a free loopback port with jupyter_gitsync (and `extensions`)
    enabled, configured by env vars as a hub or Binder does (tests/test_server_process.py)."""
    enabled = {"jupyter_gitsync": True, **{name: True for name in extensions}}
    with jupyter_process(
        root, home, env, extensions=enabled, start_timeout=120, stop_timeout=120
    ) as server:
        yield JupyterServer(server.url, server.token, server.process, server.log)
