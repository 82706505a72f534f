"""A real git smart-HTTP server for tests and for ``make demo``.

Bare repositories under a root directory are served through git's own ``git http-backend`` CGI,
so libgit2 and the git CLI talk to the same protocol implementation they meet on a real forge.
Requests need HTTP Basic auth whose password is the current token (any username, GitHub uses
``x-access-token``). Like GitHub, repositories serve protocol v2 and filtered fetches
(``uploadpack.allowFilter``); ``allow_fetch_by_id`` also lets clients fetch any reachable
commit by its id, as GitHub does. Tests can change the token, inject failures and delays, stop
and restart the server on the same port, and inspect a log of the requests it answered. Stdlib
only.

As a script (for the demo)::

    python tests/gitserver.py --root DIR [--port N] [--token-file PATH] [--create NAME]

prints ``READY <url>`` once listening and stops cleanly on SIGTERM/SIGINT (SIGHUP re-reads the
token file, so a demo can rotate or expire the token).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import functools
import hmac
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote

REALM = "gitsync-test"
_TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)

# CGI response headers that must not be forwarded to the client: the server
# frames the body itself (Content-Length) and decides about keep-alive.
_HOP_BY_HOP = frozenset(
    {"connection", "content-length", "keep-alive", "transfer-encoding", "status", "upgrade"}
)

# Environment variables handed down to http-backend; everything else (GIT_DIR from a hook,
# the user's credentials, ...) is deliberately not inherited.
_INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


class RequestRecord(NamedTuple):
    """One answered request, as kept in :attr:`GitHTTPServer.requests` (never holds the token)."""

    method: str
    path: str  # request target, including the query string
    status: int
    user: str | None  # username from a Basic auth header, None when no credentials were sent
    chunked: bool  # request body came with Transfer-Encoding: chunked
    body_size: int  # de-chunked request body size in bytes
    content_encoding: str | None  # e.g. "gzip"


@functools.cache
def http_backend_path() -> Path:
    """Locate ``git-http-backend`` in git's exec path (it is not on PATH)."""
    exec_path = subprocess.run(
        ["git", "--exec-path"], check=True, capture_output=True, text=True
    ).stdout.strip()
    backend = Path(exec_path) / "git-http-backend"
    if not backend.exists():
        raise FileNotFoundError(f"git-http-backend not found in {exec_path}")
    return backend


def _git_env() -> dict[str, str]:
    """A minimal, isolated environment for git subprocesses (no user/system config)."""
    env = {k: os.environ[k] for k in _INHERITED_ENV if k in os.environ}
    env.setdefault("PATH", os.defpath)
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    env["GIT_CONFIG_GLOBAL"] = os.devnull
    return env


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that reuses the port, tracks open connections and stays quiet."""

    allow_reuse_address = True  # SO_REUSEADDR: restart on the same port despite TIME_WAIT
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], owner: GitHTTPServer) -> None:
        self.owner = owner
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def close_connections(self) -> None:
        """Abort every open (keep-alive or in-flight) client connection."""
        with self.connections_lock:
            conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that went away; report anything else (without request data)."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)) or self.owner._stopping.is_set():
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Handles one client connection: auth, test controls, then the git http-backend CGI."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # TCP_NODELAY, otherwise each response stalls ~40 ms
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def send_response(self, code: int, message: str | None = None) -> None:
        """Log the request before the client can see any byte of the answer (no test races)."""
        pending = getattr(self, "_pending", None)
        if pending is not None:
            self.server.owner._record(pending._replace(status=code))
            self._pending = None
        super().send_response(code, message)

    def log_message(self, format: str, *args: Any) -> None:
        """Log only when the owner is verbose; the request line never contains the token."""
        if self.server.owner.verbose:
            sys.stderr.write(f"gitserver: {self.address_string()} {format % args}\n")

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    # -- request handling ------------------------------------------------------------------

    def _quickack(self) -> None:
        """ACK at once (Linux): clients with Nagle on send bodies in pieces and would wait for
        our delayed ACK (~40 ms) before each next piece. The flag resets itself, so re-arm it
        before every read."""
        if _TCP_QUICKACK is not None:
            with contextlib.suppress(OSError):
                self.connection.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)

    def _read_body(self) -> tuple[bytes, bool]:
        """Read the request body, de-chunking Transfer-Encoding: chunked."""
        te = self.headers.get("Transfer-Encoding", "").lower()
        if "chunked" in te:
            parts: list[bytes] = []
            while True:
                self._quickack()
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("client closed connection inside chunked body")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    break
                self._quickack()
                parts.append(self.rfile.read(size))
                self._quickack()
                self.rfile.readline(65537)  # CRLF after the chunk data
            while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(parts), True
        length = int(self.headers.get("Content-Length") or 0)
        self._quickack()
        return (self.rfile.read(length) if length else b""), False

    def _basic_user_password(self) -> tuple[str, str] | None:
        """Decode the Basic Authorization header, or None if absent or malformed."""
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(":")
        return (user, password) if sep else None

    def _send_simple(self, status: int, text: str, *, close: bool = False) -> None:
        """Send a short plain-text response."""
        body = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", f'Basic realm="{REALM}"')
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _serve(self) -> None:
        owner = self.server.owner
        body, chunked = self._read_body()
        creds = self._basic_user_password()
        self._pending: RequestRecord | None = RequestRecord(
            method=self.command,
            path=self.path,
            status=0,  # 0 stays in the log if no response was sent (client gone, server stopped)
            user=creds[0] if creds else None,
            chunked=chunked,
            body_size=len(body),
            content_encoding=self.headers.get("Content-Encoding"),
        )
        try:
            delay = owner.delay_seconds
            if delay:
                owner._stopping.wait(delay)
            fail_status = owner.fail_status
            token = owner.token
            if fail_status is not None:
                self._send_simple(fail_status, f"injected failure {fail_status}")
            elif token is not None and (
                creds is None or not hmac.compare_digest(creds[1].encode(), token.encode())
            ):
                self._send_simple(401, "authentication required", close=True)
            else:
                self._run_backend(body, creds[0] if creds else None)
        finally:
            if self._pending is not None:
                owner._record(self._pending)
                self._pending = None

    def _run_backend(self, body: bytes, user: str | None) -> None:
        """Run git http-backend for this request and relay its response."""
        owner = self.server.owner
        path, _, query = self.path.partition("?")
        env = _git_env()
        env.update(
            {
                "GATEWAY_INTERFACE": "CGI/1.1",
                "SERVER_PROTOCOL": self.request_version,
                "SERVER_SOFTWARE": "gitsync-test-gitserver",
                "GIT_PROJECT_ROOT": str(owner.root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "PATH_INFO": unquote(path),
                "QUERY_STRING": query,
                "REQUEST_METHOD": self.command,
                "REMOTE_ADDR": self.client_address[0],
                "CONTENT_LENGTH": str(len(body)),
            }
        )
        if user is not None:
            env["REMOTE_USER"] = user
        optional = {
            "CONTENT_TYPE": "Content-Type",
            "HTTP_CONTENT_ENCODING": "Content-Encoding",
            "GIT_PROTOCOL": "Git-Protocol",
            "HTTP_ACCEPT": "Accept",
        }
        for var, header in optional.items():
            value = self.headers.get(header)
            if value is not None:
                env[var] = value
        proc = subprocess.run(
            [str(http_backend_path())], input=body, env=env, capture_output=True, check=False
        )
        if owner.verbose and proc.stderr:
            sys.stderr.write("gitserver: http-backend: " + proc.stderr.decode(errors="replace"))
        status, headers, payload = _parse_cgi_output(proc.stdout)
        if status is None:
            self._send_simple(500, f"http-backend failed (exit {proc.returncode})")
            return
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _parse_cgi_output(output: bytes) -> tuple[int | None, list[tuple[str, str]], bytes]:
    """Split CGI output into (status, headers, body); status None if the output is unusable."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        head, found, body = output.partition(sep)
        if found:
            break
    else:
        return None, [], b""
    status = 200
    headers: list[tuple[str, str]] = []
    for raw in head.decode("latin-1").splitlines():
        name, colon, value = raw.partition(":")
        if not colon:
            continue
        name, value = name.strip(), value.strip()
        if name.lower() == "status":
            try:
                status = int(value.split()[0])
            except (ValueError, IndexError):
                return None, [], b""
        else:
            headers.append((name, value))
    return status, headers, body


class GitHTTPServer:
    """Smart-HTTP git server over ``git http-backend`` on 127.0.0.1, with test controls.

    ``token``, ``fail_status`` and ``delay_seconds`` may be set at any time from any thread;
    ``stop()``/``start()`` (alias ``pause()``/``resume()``) keep the port, so clients see the
    remote go away (connection refused) and come back at the same URL.
    """

    def __init__(
        self, root: Path, token: str | None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"refusing to bind a non-loopback address: {host}")
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.verbose = False
        self._port = port
        self._lock = threading.Lock()  # guards the test controls and the request log
        self._lifecycle = threading.Lock()  # serialises start()/stop()
        self._token = token
        self._fail_status: int | None = None
        self._delay_seconds = 0.0
        self._requests: list[RequestRecord] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> GitHTTPServer:
        """Start listening (on the previous port if restarted); no-op if already running."""
        with self._lifecycle:
            if self._server is not None:
                return self
            self._stopping.clear()
            server = _Server((self.host, self._port), self)
            self._port = server.server_address[1]
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"gitserver:{self._port}",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop listening and abort open connections; the port is kept for a later start()."""
        with self._lifecycle:
            server, thread = self._server, self._thread
            if server is None:
                return
            self._stopping.set()  # also wakes handlers sleeping in delay_seconds
            server.shutdown()
            server.server_close()
            server.close_connections()
            if thread is not None:
                thread.join()
            self._server = self._thread = None

    def pause(self) -> None:
        """Make the remote unreachable (connection refused): same as :meth:`stop`."""
        self.stop()

    def resume(self) -> None:
        """Bring the remote back on the same port: same as :meth:`start`."""
        self.start()

    @property
    def running(self) -> bool:
        """Whether the server is currently accepting connections."""
        return self._server is not None

    def __enter__(self) -> GitHTTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port (known once the server has been started)."""
        if not self._port:
            raise RuntimeError("server has not been started yet")
        return self._port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    def repo_url(self, name: str) -> str:
        """Clone URL of repository ``name``: ``http://127.0.0.1:PORT/name.git``."""
        return f"{self.url}/{_repo_dirname(name)}"

    def repo_path(self, name: str) -> Path:
        """Filesystem path of the bare repository ``name``."""
        return self.root / _repo_dirname(name)

    # -- test controls -----------------------------------------------------------------------

    @property
    def token(self) -> str | None:
        """The accepted token; None disables authentication."""
        with self._lock:
            return self._token

    @token.setter
    def token(self, value: str | None) -> None:
        with self._lock:
            self._token = value

    @property
    def fail_status(self) -> int | None:
        """If set, every request is answered with this HTTP status (before auth)."""
        with self._lock:
            return self._fail_status

    @fail_status.setter
    def fail_status(self, value: int | None) -> None:
        with self._lock:
            self._fail_status = value

    @property
    def delay_seconds(self) -> float:
        """Delay applied to every request before answering it."""
        with self._lock:
            return self._delay_seconds

    @delay_seconds.setter
    def delay_seconds(self, value: float) -> None:
        with self._lock:
            self._delay_seconds = float(value)

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of the answered requests, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        """Forget the request log."""
        with self._lock:
            self._requests.clear()

    def count(self, status: int | None = None, *, with_credentials: bool | None = None) -> int:
        """Count logged requests, optionally by status and by whether credentials were sent."""
        return sum(
            1
            for r in self.requests
            if (status is None or r.status == status)
            and (with_credentials is None or (r.user is not None) == with_credentials)
        )

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    # -- repositories ------------------------------------------------------------------------

    def create_repo(
        self, name: str, initial_files: dict[str, bytes] | None = None, branch: str = "main"
    ) -> Path:
        """Create a pushable bare repo, optionally with one commit of ``initial_files``."""
        path = self.repo_path(name)
        env = _git_env()
        _git(["init", "--quiet", "--bare", f"--initial-branch={branch}", str(path)], env=env)
        env["GIT_DIR"] = str(path)
        _serving_config(env)
        if initial_files:
            _git(
                ["fast-import", "--quiet"],
                env=env,
                stdin=_fast_import_stream(initial_files, branch),
            )
        return path

    def fork_repo(self, source: str, target: str) -> Path:
        """A copy of repository `source` (all its branches) under the name `target`."""
        path = self.repo_path(target)
        env = _git_env()
        _git(["clone", "--quiet", "--bare", str(self.repo_path(source)), str(path)], env=env)
        env["GIT_DIR"] = str(path)
        _serving_config(env)
        return path

    def allow_fetch_by_id(self, name: str, allowed: bool = True) -> None:
        """Let clients of repository `name` fetch any reachable commit by its id."""
        env = {**_git_env(), "GIT_DIR": str(self.repo_path(name))}
        value = "true" if allowed else "false"
        _git(["config", "uploadpack.allowReachableSHA1InWant", value], env=env)


def _serving_config(env: dict[str, str]) -> None:
    """Pushes over HTTP, and filtered fetches (GitHub serves both)."""
    _git(["config", "http.receivepack", "true"], env=env)
    _git(["config", "uploadpack.allowFilter", "true"], env=env)


def _repo_dirname(name: str) -> str:
    """``name`` -> ``name.git``, rejecting anything that could escape the root."""
    base = name[:-4] if name.endswith(".git") else name
    parts = base.split("/")
    if not base or base.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid repository name: {name!r}")
    return base + ".git"


def _git(args: list[str], env: dict[str, str], stdin: bytes | None = None) -> None:
    """Run a git command, raising with its stderr on failure."""
    proc = subprocess.run(["git", *args], env=env, input=stdin, capture_output=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"git {args[0]} failed: {proc.stderr.decode(errors='replace')}")


def _fast_import_stream(files: dict[str, bytes], branch: str) -> bytes:
    """A ``git fast-import`` stream committing ``files`` as the first commit on ``branch``."""

    def data(payload: bytes) -> Iterator[bytes]:
        yield b"data %d\n" % len(payload)
        yield payload
        yield b"\n"

    stamp = f"gitsync test server <gitsync@example.invalid> {int(time.time())} +0000"
    out: list[bytes] = [
        f"commit refs/heads/{branch}\n".encode(),
        f"author {stamp}\ncommitter {stamp}\n".encode(),
        *data(b"Initial commit\n"),
    ]
    for filename, content in files.items():
        if "\n" in filename or filename.startswith('"') or filename.startswith("/"):
            raise ValueError(f"unsupported file name: {filename!r}")
        out.append(f"M 100644 inline {filename}\n".encode())
        out.extend(data(content))
    out.append(b"done\n")
    return b"".join(out)


# -- command line (make demo) -------------------------------------------------------------------


def _read_token(path: Path | None) -> str | None:
    """Read the token from a file (never argv, which shows up in ps)."""
    if path is None:
        return None
    token = path.read_text(encoding="utf-8").strip()
    if not token:
        raise SystemExit(f"gitserver: token file {path} is empty")
    return token


def main(argv: list[str] | None = None) -> int:
    """Serve bare repos under --root until SIGTERM/SIGINT; SIGHUP re-reads the token file."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--root", type=Path, required=True, help="directory of bare repos")
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: any free)")
    parser.add_argument("--token-file", type=Path, help="file holding the accepted token")
    parser.add_argument(
        "--create",
        action="append",
        default=[],
        metavar="NAME",
        help="create repo NAME (with a README.md on main) if missing; repeatable",
    )
    parser.add_argument("--verbose", action="store_true", help="log requests to stderr")
    args = parser.parse_args(argv)

    token = _read_token(args.token_file)
    if token is None:
        print("gitserver: no --token-file, authentication disabled", file=sys.stderr)
    server = GitHTTPServer(args.root, token, port=args.port)
    server.verbose = args.verbose
    for name in args.create:
        if not server.repo_path(name).exists():
            server.create_repo(name, {"README.md": f"# {name}\n".encode()})

    stop_requested = False

    def on_stop(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    def on_hup(signum: int, frame: object) -> None:
        server.token = _read_token(args.token_file)
        print("gitserver: token reloaded", file=sys.stderr, flush=True)

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    if args.token_file is not None and hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, on_hup)

    server.start()
    print(f"READY {server.url}", flush=True)
    try:
        while not stop_requested:  # a plain flag: Event.set() is not safe in a signal handler
            time.sleep(0.1)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
