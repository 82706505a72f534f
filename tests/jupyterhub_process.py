"""A real JupyterHub process, configured the way the README tells an admin to: its
`jupyterhub_config.py` block as it stands, followed by the lines that put the hub on loopback,
point GitHub's URLs at tests/github_stub.py, keep the database in a temporary directory, and
give the tests a service token to drive the hub's REST API with. JupyterHub starts its own
configurable-http-proxy (installed by `make setup` into .hub-tools/).

A user logs in with plain HTTP, as a browser would: a cookie jar following the redirects from
the hub to GitHub's authorize page (where the stub's `browser_login` is signed in and
approves) and back to the hub's OAuth callback."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from tests.github_stub import GitHubStub
from tests.helpers import wait_until
from tests.jupyter_process import REPO_ROOT, free_port

README = REPO_ROOT / "README.md"
HUB_SECTION = "### Using the GitHub token JupyterHub already has"
PROXY = "configurable-http-proxy"
PROXY_DIR = REPO_ROOT / ".hub-tools" / "node_modules" / ".bin"  # where `make setup` puts it
TESTS_SERVICE = "gitsync-tests"
HUB_POLL_SECONDS = 0.2  # asking the hub is a request it logs; the machine has more to do


def readme_hub_config() -> str:
    """The ```python block of the README's JupyterHub section, exactly as it stands."""
    text = README.read_text()
    section = text[text.index(HUB_SECTION) :]
    section = section[: section.index("\n## ")]
    blocks = re.findall(r"^```python\n(.*?)^```$", section, flags=re.S | re.M)
    assert len(blocks) == 1, f"expected one python block in the README's hub section: {blocks}"
    return str(blocks[0])


def proxy_command() -> str:
    """configurable-http-proxy from PATH (the Makefile puts .hub-tools on it), else from
    .hub-tools itself, so that pytest run by hand finds it too."""
    found = shutil.which(PROXY) or shutil.which(PROXY, path=str(PROXY_DIR))
    if found is None:
        raise AssertionError(
            f"{PROXY} is not installed: `make setup` installs it (npm) into {PROXY_DIR}"
        )
    return found


@dataclass
class Hub:
    """A running hub: its public URL (the proxy), the tests' admin token, its log."""

    url: str
    token: str
    process: subprocess.Popen[bytes]
    log: Path
    github: GitHubStub
    pids: set[int] = field(default_factory=set)  # single-user servers seen, for teardown

    @property
    def api_url(self) -> str:
        return f"{self.url}/hub/api"

    def api(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> requests.Response:
        """A request to the hub's REST API (as the tests' service unless `token` is given)."""
        return requests.request(
            method,
            f"{self.api_url}/{path}",
            json=body,
            headers={"Authorization": f"token {token or self.token}"},
            timeout=30,
        )

    def user(self, name: str) -> dict[str, Any]:
        response = self.api("GET", f"users/{quote(name, safe='')}")
        response.raise_for_status()
        user: dict[str, Any] = response.json()
        return user

    def create_user(self, name: str) -> None:
        response = self.api("POST", f"users/{quote(name, safe='')}")
        assert response.status_code == 201, response.text

    def set_auth_state(self, name: str, auth_state: dict[str, Any] | None) -> None:
        """What a login stores (an admin may set it too: PATCH /users/{name})."""
        response = self.api("PATCH", f"users/{quote(name, safe='')}", {"auth_state": auth_state})
        assert response.status_code == 200, response.text

    def server(self, name: str) -> dict[str, Any] | None:
        """The user's default server as the hub sees it (None: not running)."""
        server: dict[str, Any] | None = self.user(name).get("servers", {}).get("")
        if server and (server.get("state") or {}).get("pid"):
            self.pids.add(int(server["state"]["pid"]))
        return server

    def start_server(self, name: str, timeout: float = 60) -> dict[str, Any]:
        """Start the user's server through the hub and wait until the hub says it is ready."""
        response = self.api("POST", f"users/{quote(name, safe='')}/server")
        assert response.status_code in (201, 202), response.text
        return wait_until(
            lambda: (s := self.server(name)) and s.get("ready") and s,
            timeout,
            what=f"{name}'s server to be ready",
            interval=HUB_POLL_SECONDS,
        )

    def stop_server(self, name: str) -> None:
        """What an admin's *Stop Server* does: DELETE /hub/api/users/{name}/server."""
        response = self.api("DELETE", f"users/{quote(name, safe='')}/server")
        assert response.status_code in (202, 204), response.text

    def new_token(self, name: str, scopes: list[str] | None = None) -> str:
        """An API token owned by `name` (by default one that may use their server)."""
        body = {"scopes": scopes or ["access:servers!user"], "note": "gitsync tests"}
        response = self.api("POST", f"users/{quote(name, safe='')}/tokens", body)
        assert response.status_code == 201, response.text
        return str(response.json()["token"])

    def browser(self) -> Browser:
        return Browser(self)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def log_tail(self, chars: int = 4000) -> str:
        with suppress(OSError):
            return self.log_text()[-chars:]
        return ""


class Browser:
    """Plain HTTP with a cookie jar, following redirects as a browser does."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.session = requests.Session()

    def log_in(self) -> requests.Response:
        """Log in with GitHub: the hub sends the browser to GitHub's authorize page, GitHub
        sends it back to the hub's callback with a code, the hub exchanges the code for a token
        and keeps it in auth_state. Ends on the hub's home page."""
        response = self.session.get(
            f"{self.hub.url}/hub/oauth_login", params={"next": "/hub/home"}, timeout=30
        )
        visited = [urlsplit(r.url).path for r in [*response.history, response]]
        assert response.status_code == 200, (response.status_code, visited, self.hub.log_tail())
        assert visited == [
            "/hub/oauth_login",
            "/login/oauth/authorize",
            "/hub/oauth_callback",
            "/hub/home",
        ], visited
        return response


@contextmanager
def jupyterhub_process(
    tmp: Path,
    github: GitHubStub,
    extra_config: str = "",
    *,
    start_timeout: float = 60,
    stop_timeout: float = 30,
) -> Iterator[Hub]:
    """Run the README's hub config (GitHub at `github`, then `extra_config`) in `tmp`. The
    stub's OAuth App gets the hub's callback URL registered. Stops the hub afterwards, and
    with it the proxy and every user's server."""
    tmp.mkdir(parents=True, exist_ok=True)
    port, hub_port, proxy_api_port = free_port(), free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    token = secrets.token_hex(32)
    github.oauth_callback_url = f"{url}/hub/oauth_callback"
    config = tmp / "jupyterhub_config.py"
    config.write_text(
        readme_hub_config()
        + _test_settings(tmp, github, hub_port, proxy_api_port, url, token)
        + extra_config
    )
    env = _hub_environment(tmp, github)
    log = tmp / "hub.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    hub = Hub(url, token, process, log, github)
    try:
        _wait_for_hub(hub, start_timeout)
        yield hub
    finally:
        _stop(hub, tmp, stop_timeout)


def _test_settings(
    tmp: Path, github: GitHubStub, hub_port: int, proxy_api_port: int, url: str, token: str
) -> str:
    """What the tests add after the README's block: nothing that changes its meaning."""
    return f"""

# -- added by tests/jupyterhub_process.py: loopback, GitHub at the stub, files in {tmp} --
c.JupyterHub.bind_url = {url!r}
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = [{proxy_command()!r}]
c.JupyterHub.db_url = "sqlite:///{tmp / "jupyterhub.sqlite"}"
c.JupyterHub.cookie_secret_file = {str(tmp / "jupyterhub_cookie_secret")!r}
c.GitHubOAuthenticator.github_url = {github.url!r}
c.GitHubOAuthenticator.github_api = {github.url!r}
c.JupyterHub.services.append({{"name": {TESTS_SERVICE!r}, "api_token": {token!r}}})
c.JupyterHub.load_roles.append(
    {{
        "name": {TESTS_SERVICE!r},
        "scopes": ["admin:users", "admin:servers", "tokens", "admin:auth_state", "read:hub"],
        "services": [{TESTS_SERVICE!r}],
    }}
)
"""


def _hub_environment(tmp: Path, github: GitHubStub) -> dict[str, str]:
    """What an admin gives the hub: the OAuth App, the callback URL, a crypt key. The proxy
    and the single-user command are found on PATH; PYTHONPATH reaches the user servers (the
    hub keeps it for them), so they import this checkout's extension."""
    inherited = {
        k: v
        for k, v in os.environ.items()
        if k in ("PATH", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")
    }
    path = os.pathsep.join(
        [str(Path(sys.executable).parent), str(PROXY_DIR), inherited.get("PATH", os.defpath)]
    )
    return {
        **inherited,
        "PATH": path,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), inherited.get("PYTHONPATH")])),
        "HOME": str(tmp),
        "GITHUB_CLIENT_ID": github.client_id,
        "GITHUB_CLIENT_SECRET": github.client_secret,
        "OAUTH_CALLBACK_URL": str(github.oauth_callback_url),
        "JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32),
    }


def _wait_for_hub(hub: Hub, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if hub.process.poll() is not None:
            raise AssertionError(f"the hub exited with {hub.process.returncode}:\n{hub.log_tail()}")
        with suppress(requests.RequestException):
            if requests.get(f"{hub.api_url}/", timeout=5).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"the hub did not answer within {timeout} s:\n{hub.log_tail()}")
        time.sleep(0.25)  # each early try is an error in the proxy's log


def _stop(hub: Hub, tmp: Path, timeout: float) -> None:
    """SIGTERM the hub (it stops the user servers and the proxy it started); then make sure
    nothing this hub started outlives it."""
    if hub.process.poll() is None:
        hub.process.send_signal(signal.SIGTERM)
        try:
            hub.process.wait(timeout)
        except subprocess.TimeoutExpired:
            hub.process.kill()
            hub.process.wait()
    leftovers = set(hub.pids)
    proxy_pid = tmp / "jupyterhub-proxy.pid"
    with suppress(OSError, ValueError):
        leftovers.add(int(proxy_pid.read_text().strip()))
    for pid in leftovers:
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def process_environment(pid: int) -> bytes:
    """What /proc/<pid>/environ shows of a process: its environment as it started."""
    return Path(f"/proc/{pid}/environ").read_bytes()
