"""A local stand-in for GitHub's OAuth flows and REST API (GitHub is the one system the tests
cannot run; everything else, JupyterHub included, is the real thing).

A small tornado app on 127.0.0.1, on its own thread and event loop, so that blocking clients
(the App provider on the git thread) and async ones (the Jupyter event loop, JupyterHub's
OAuthenticator) can both talk to it. It follows GitHub's documented requests and answers
(docs.github.com: "Authorizing OAuth apps" and its troubleshooting pages):

- `GET /login/oauth/authorize` (web flow) → 302 to the registered callback URL with `code` and
  `state`, or with `error` (redirect_uri_mismatch, access_denied); PKCE with S256 only
- `POST /login/device/code` → device_code, user_code, verification_uri, expires_in, interval
- `POST /login/oauth/access_token` → a token (`access_token`, `token_type`, `scope`), JSON with
  `Accept: application/json` and form-encoded otherwise, or HTTP 200 with `{"error": ...}`
  (bad_verification_code, redirect_uri_mismatch, authorization_pending, slow_down,
  expired_token, access_denied, incorrect_device_code, incorrect_client_credentials,
  unsupported_grant_type, bad_refresh_token)
- `GET /user` (`Authorization: Bearer|token`) → the user, `X-OAuth-Scopes`; 401 Bad credentials
- `GET /repos/{o}/{r}` → the repository with the caller's `permissions`
- `POST /repos/{o}/{r}/forks` → 202 and the fork
- `POST /repos/{o}/{r}/pulls` ("Create a pull request": `title`, `head` (`branch`, or
  `owner:branch` from a fork in the same network), `base`, `body`) → 201 with the pull request
  (`number`, `html_url`, `state`, `head` and `base` objects); 422 "Validation Failed" for a head
  or base branch the git repository behind it does not have (`field` head/base, `code`
  invalid), for a pull request already open for that head ("A pull request already exists for
  owner:branch."), and for a missing field; 401 Bad credentials; 403 without push access to the
  head repository; 404 for a repository that is not there
- `GET /repos/{o}/{r}/pulls?head=owner:branch&state=open|closed|all&base=` → the list
- `GET /repos/{o}/{r}/installation`, `POST /app/installations/{id}/access_tokens` (App JWT)

Tests drive its state: who is signed in to GitHub in the browser, approve, deny or expire a
code, demand slow_down, make tokens expire (with refresh tokens), revoke tokens, make one
endpoint answer with a failure (`fail`) or wait before it answers (`hold`).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import jwt
import tornado.httpclient
import tornado.httpserver
import tornado.netutil
import tornado.web

from tests.gitserver import GitHTTPServer

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
WEB_CODE_SECONDS = 600  # "The temporary code will expire after 10 minutes."
_ERRORS_DOC = "/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/"
_TOKEN_ERRORS_DOC = (
    "/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/"
)


def new_token(prefix: str) -> str:
    """A GitHub-shaped token made at run time (gho_ OAuth, ghu_ App user, ghr_ refresh...)."""
    return f"{prefix}_{secrets.token_hex(18)}"


@dataclass
class DeviceCode:
    """One device-flow sign-in, as GitHub keeps it."""

    device_code: str
    user_code: str
    expires_at: float
    state: str = "pending"  # pending | approved | denied | expired | used
    login: str = "octocat"
    token: str | None = None
    pending_polls: int = 0  # authorization_pending answers still to give after approval
    polls: int = 0


@dataclass
class WebCode:
    """A temporary code of the web flow, as GitHub keeps it until it is exchanged."""

    login: str
    scopes: list[str]
    redirect_uri: str | None  # as given to /login/oauth/authorize (None: the registered one)
    expires_at: float
    code_challenge: str | None = None


@dataclass
class Token:
    login: str | None
    kind: str  # oauth | user | installation
    scopes: str = ""
    expires_at: float | None = None
    installation: int | None = None
    repositories: list[str] = field(default_factory=list)


@dataclass
class Repo:
    owner: str
    name: str
    pushers: set[str] = field(default_factory=set)
    installation: int | None = None
    parent: str | None = None  # owner/name of the repository this is a fork of


@dataclass
class Pull:
    """A pull request as GitHub keeps it: in repository `repo` (owner/name), from branch
    `head_ref` of `head_owner`'s repository in the same network into `base`."""

    number: int
    repo: str
    title: str
    body: str | None
    head_owner: str
    head_repo: str
    head_ref: str
    head_sha: str
    base: str
    base_sha: str
    user: str
    state: str = "open"


class GitHubStub:
    """GitHub and JupyterHub on 127.0.0.1; every control may be used from any thread."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.client_id = f"Iv1.{secrets.token_hex(8)}"
        self.client_secret = secrets.token_hex(20)
        # The OAuth App's registered callback URL (web flow); None: the web flow is refused.
        self.oauth_callback_url: str | None = None
        # Who is signed in to GitHub in the browser that comes to /login/oauth/authorize and
        # approves the app (None: the user cancels, access_denied).
        self.browser_login: str | None = "octocat"
        self.web_codes: dict[str, WebCode] = {}
        self.on_token: list[Callable[[str, str], None]] = []  # (login, token) of each web login
        self.interval = 5  # what the device code endpoint tells clients to wait
        self.device_expires_in = 900
        self.token_expires_in: int | None = None  # set: GitHub App user tokens that expire
        self.scopes = "repo"
        self.slow_downs = 0  # answer this many token polls with slow_down
        self.device_codes: dict[str, DeviceCode] = {}
        self.tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[str, str] = {}  # refresh token -> login
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # method, path, form fields
        self.forks: list[str] = []
        self.pulls: list[Pull] = []
        # "METHOD /path" -> an HTTP status that endpoint answers with instead (GitHub failing)
        self.fail: dict[str, int] = {}
        # "METHOD /path" -> an event that endpoint waits for before it answers (a slow GitHub)
        self.hold: dict[str, threading.Event] = {}
        self._web_issued: list[tuple[str, str]] = []  # (token, login), oldest first
        # GitHub App
        self.app_id = str(secrets.randbelow(900000) + 100000)
        self.app_public_key: str | None = None
        self.installation_token_ttl = 3600
        self.next_installation_token: str | None = None
        self.jwt_claims: list[dict[str, Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: tornado.httpserver.HTTPServer | None = None
        self.port = 0
        # Git hosting: GitHub serves each repository's git smart-HTTP endpoints on its own
        # origin (https://github.com/<owner>/<repo>.git). With `git` set, those paths go to
        # that real git server (git's own http-backend), and repositories and forks made
        # here are made there too.
        self.git: GitHTTPServer | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> GitHubStub:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the GitHub stub did not start")
        return self

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop

        async def listen() -> None:
            app = tornado.web.Application(_routes(self), log_function=lambda handler: None)
            sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
            self._server = tornado.httpserver.HTTPServer(app)
            self._server.add_sockets(sockets)
            self.port = sockets[0].getsockname()[1]

        loop.run_until_complete(listen())
        ready.set()
        loop.run_forever()
        assert self._server is not None
        self._server.stop()
        loop.run_until_complete(self._server.close_all_connections())
        loop.close()

    def stop(self) -> None:
        """Stop listening (idempotent); the port is gone, like GitHub being unreachable."""
        for hold in list(self.hold.values()):
            hold.set()  # a held answer must not keep a thread waiting
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = self._thread = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- test controls: users, repositories ----------------------------------------------------

    def add_user_token(
        self, login: str, token: str | None = None, scopes: str = "repo", kind: str = "oauth"
    ) -> str:
        """A token GitHub accepts for `login` (like a PAT or an OAuth token)."""
        token = token or new_token("gho")
        with self.lock:
            self.tokens[token] = Token(login, kind, scopes)
        return token

    def revoke(self, token: str) -> None:
        with self.lock:
            self.tokens.pop(token, None)

    def add_repo(
        self,
        owner: str,
        name: str,
        pushers: set[str] | None = None,
        installation: int | None = None,
    ) -> None:
        with self.lock:
            self.repos[f"{owner}/{name}"] = Repo(owner, name, set(pushers or ()), installation)
        if self.git is not None and not self.git.repo_path(f"{owner}/{name}").exists():
            self.git.create_repo(f"{owner}/{name}", {"README.md": b"# Project\n"})

    def add_fork(self, source: str, login: str) -> Repo:
        """`login`'s fork of the repository `source` (owner/name), as POST .../forks makes it
        (and its git repository, a copy, when `git` is set)."""
        name = source.split("/")[1]
        with self.lock:
            fork = Repo(login, name, {login}, parent=source)
            self.repos[f"{login}/{name}"] = fork
            self.forks.append(f"{login}/{name}")
        if self.git is not None and not self.git.repo_path(f"{login}/{name}").exists():
            self.git.fork_repo(source, f"{login}/{name}")
        return fork

    def install_app(self, owner: str, name: str) -> int:
        """Install the App on a repository; returns the installation id."""
        installation = secrets.randbelow(9_000_000) + 1_000_000
        with self.lock:
            repo = self.repos.setdefault(f"{owner}/{name}", Repo(owner, name))
            repo.installation = installation
        return installation

    # -- test controls: the device flow --------------------------------------------------------

    def latest_code(self) -> DeviceCode:
        with self.lock:
            return list(self.device_codes.values())[-1]

    def _code(self, user_code: str | None) -> DeviceCode:
        with self.lock:
            if user_code is None:
                return self.latest_code()
            return next(c for c in self.device_codes.values() if c.user_code == user_code)

    def approve(
        self,
        user_code: str | None = None,
        *,
        login: str = "octocat",
        token: str | None = None,
        after_polls: int = 0,
    ) -> None:
        """The user enters the code and authorises; `token` is what GitHub will issue."""
        with self.lock:
            code = self._code(user_code)
            code.state, code.login, code.token = "approved", login, token
            code.pending_polls = after_polls

    def deny(self, user_code: str | None = None) -> None:
        with self.lock:
            self._code(user_code).state = "denied"

    def expire(self, user_code: str | None = None) -> None:
        with self.lock:
            self._code(user_code).state = "expired"

    def polls(self, user_code: str | None = None) -> int:
        with self.lock:
            return self._code(user_code).polls

    def form_requests(self, path: str) -> list[dict[str, str]]:
        with self.lock:
            return [form for _, p, form in self.requests if p == path]

    def web_tokens(self, login: str) -> list[str]:
        """The tokens the web flow issued to `login`, oldest first, whether revoked or not."""
        with self.lock:
            return [t for t, who in self._web_issued if who == login]

    # -- issuing tokens ------------------------------------------------------------------------

    def issue_user_token(self, login: str, token: str | None = None) -> dict[str, Any]:
        """The token endpoint's success answer (with a refresh token when tokens expire)."""
        expiring = self.token_expires_in is not None
        token = token or new_token("ghu" if expiring else "gho")
        now = time.time()
        record = Token(
            login,
            "user" if expiring else "oauth",
            "" if expiring else self.scopes,
            expires_at=None if not expiring else now + float(self.token_expires_in or 0),
        )
        self.tokens[token] = record
        answer: dict[str, Any] = {
            "access_token": token,
            "token_type": "bearer",
            "scope": record.scopes,
        }
        if expiring:
            refresh = new_token("ghr")
            self.refresh_tokens[refresh] = login
            answer.update(
                expires_in=self.token_expires_in,
                refresh_token=refresh,
                refresh_token_expires_in=15897600,
            )
        return answer

    def issue_web_token(self, login: str, scopes: list[str]) -> dict[str, Any]:
        """An OAuth App's token for a code of the web flow: the scopes asked for, no expiry."""
        token = new_token("gho")
        with self.lock:
            self.tokens[token] = Token(login, "oauth", ", ".join(scopes))
            self._web_issued.append((token, login))
        for callback in list(self.on_token):
            callback(login, token)
        return {"access_token": token, "token_type": "bearer", "scope": ",".join(scopes)}

    def user_for(self, authorization: str | None) -> Token | None:
        """The token record behind an `Authorization: Bearer|token <t>` header, if valid."""
        if not authorization:
            return None
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() not in ("bearer", "token"):
            return None
        with self.lock:
            record = self.tokens.get(value.strip())
        if record is None or (record.expires_at is not None and time.time() >= record.expires_at):
            return None
        return record

    def verify_app_jwt(self, authorization: str | None) -> dict[str, Any] | None:
        """The claims of a valid App JWT (RS256, iss = app id, at most 10 minutes), else None."""
        if not authorization or not authorization.startswith("Bearer ") or not self.app_public_key:
            return None
        try:
            claims = jwt.decode(
                authorization[len("Bearer ") :],
                self.app_public_key,
                algorithms=["RS256"],
                options={"require": ["iat", "exp", "iss"]},
                leeway=60,
            )
        except jwt.PyJWTError:
            return None
        if str(claims["iss"]) != self.app_id or claims["exp"] - claims["iat"] > 600:
            return None
        with self.lock:
            self.jwt_claims.append(claims)
        return claims


class _Handler(tornado.web.RequestHandler):
    def initialize(self, stub: GitHubStub) -> None:
        self.stub = stub

    async def prepare(self) -> None:
        endpoint = f"{self.request.method} {self.request.path}"
        with self.stub.lock:
            self.stub.requests.append((self.request.method or "", self.request.path, self.form()))
            hold = self.stub.hold.get(endpoint)
        if hold is not None:  # GitHub taking its time: answer once the test lets it
            await asyncio.get_running_loop().run_in_executor(None, hold.wait)
        with self.stub.lock:
            failure = self.stub.fail.get(endpoint)
        if failure is not None:
            self.reply(failure, _failure_body(failure))

    def form(self) -> dict[str, str]:
        """Form-encoded or JSON body fields (GitHub's OAuth endpoints take both)."""
        body = self.request.body or b""
        if self.request.headers.get("Content-Type", "").startswith("application/json"):
            try:
                data = json.loads(body or b"{}")
            except ValueError:
                return {}
            return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
        return dict(parse_qsl(body.decode()))

    def reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.set_status(status)
        for name, value in (headers or {}).items():
            self.set_header(name, value)
        if "application/json" in self.request.headers.get("Accept", ""):
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.finish(json.dumps(body))
        elif self.request.path.startswith("/login/"):
            # Without Accept: application/json, GitHub answers form-encoded.
            self.set_header("Content-Type", "application/x-www-form-urlencoded")
            self.finish(urlencode(body))
        else:
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.finish(json.dumps(body))

    def bad_credentials(self) -> None:
        self.reply(
            401,
            {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
        )

    def not_found(self) -> None:
        self.reply(404, {"message": "Not Found", "documentation_url": "https://docs.github.com"})


class DeviceCodeHandler(_Handler):
    def post(self) -> None:
        stub, form = self.stub, self.form()
        if form.get("client_id") != stub.client_id:
            self.reply(200, {"error": "incorrect_client_credentials"})
            return
        letters = "BCDFGHJKLMNPQRSTVWXZ"
        user_code = "-".join("".join(secrets.choice(letters) for _ in range(4)) for _ in range(2))
        with stub.lock:
            code = DeviceCode(
                device_code=secrets.token_hex(20),
                user_code=user_code,
                expires_at=time.monotonic() + stub.device_expires_in,
            )
            stub.device_codes[code.device_code] = code
            answer = {
                "device_code": code.device_code,
                "user_code": code.user_code,
                "verification_uri": f"{stub.url}/login/device",
                "expires_in": stub.device_expires_in,
                "interval": stub.interval,
            }
        self.reply(200, answer)


class AuthorizeHandler(_Handler):
    """The web flow's first step: the browser of a user signed in to GitHub comes here, approves
    the app, and is sent back to the app's callback URL with a temporary code."""

    def get(self) -> None:
        stub = self.stub
        state = self.get_argument("state", None)
        callback = stub.oauth_callback_url
        if self.get_argument("client_id", None) != stub.client_id or callback is None:
            self.set_status(404)  # GitHub shows its 404 page for an unknown client_id
            self.finish("Not Found")
            return
        redirect_uri = self.get_argument("redirect_uri", None)
        if redirect_uri is not None and not _redirect_allowed(redirect_uri, callback):
            self._back(callback, state, error="redirect_uri_mismatch")
            return
        challenge = self.get_argument("code_challenge", None)
        method = self.get_argument("code_challenge_method", None)
        if (method is not None or challenge is not None) and (method != "S256" or not challenge):
            self.set_status(400)  # only the S256 method is accepted, with a challenge
            self.finish("Unsupported code_challenge_method")
            return
        login = stub.browser_login
        if login is None:
            self._back(callback, state, error="access_denied")
            return
        code = secrets.token_hex(10)
        scopes = [s for s in self.get_argument("scope", "").replace(",", " ").split() if s]
        with stub.lock:
            stub.web_codes[code] = WebCode(
                login, scopes, redirect_uri, time.monotonic() + WEB_CODE_SECONDS, challenge
            )
        self._back(redirect_uri or callback, state, code=code)

    def _back(self, to: str, state: str | None, **params: str) -> None:
        if "error" in params:
            descriptions = {
                "redirect_uri_mismatch": "The redirect_uri MUST match the registered callback"
                " URL for this application.",
                "access_denied": "The user has denied your application access.",
            }
            params["error_description"] = descriptions[params["error"]]
            params["error_uri"] = _ERRORS_DOC + "#" + params["error"].replace("_", "-")
        if state is not None:
            params["state"] = state
        parts = urlsplit(to)
        query = urlencode([*parse_qsl(parts.query), *params.items()])
        self.redirect(urlunsplit(parts._replace(query=query)))


def _redirect_allowed(redirect_uri: str, callback: str) -> bool:
    """GitHub's rule: the host (sub-domains aside) and port match the callback URL's, and the
    path is the callback's or below it; a loopback callback accepts any port."""
    given, registered = urlsplit(redirect_uri), urlsplit(callback)
    host, want = given.hostname or "", registered.hostname or ""
    loopback = want in ("127.0.0.1", "::1")
    base = registered.path.rstrip("/")
    return (
        given.scheme == registered.scheme
        and (host == want or host.endswith("." + want))
        and (loopback or given.port == registered.port)
        and (given.path == registered.path or given.path.startswith(base + "/"))
    )


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class AccessTokenHandler(_Handler):
    def post(self) -> None:
        stub, form = self.stub, self.form()
        grant = form.get("grant_type")
        answer: dict[str, Any] | WebCode
        with stub.lock:
            if form.get("client_id") != stub.client_id:
                answer = _token_error("incorrect_client_credentials")
            elif grant == "refresh_token":
                answer = self._refresh(form.get("refresh_token", ""))
            elif grant == DEVICE_GRANT:
                answer = self._poll(form.get("device_code", ""))
            elif grant in (None, "authorization_code") and "code" in form:
                answer = self._redeem(form)
            else:
                answer = {"error": "unsupported_grant_type"}
        if isinstance(answer, WebCode):  # outside the lock: on_token callbacks may block
            answer = stub.issue_web_token(answer.login, answer.scopes)
        self.reply(200, answer)

    def _redeem(self, form: dict[str, str]) -> WebCode | dict[str, Any]:
        """A web-flow code that checks out (each is good for one try), or the error GitHub
        answers with."""
        stub = self.stub
        if not hmac.compare_digest(form.get("client_secret", ""), stub.client_secret):
            return _token_error("incorrect_client_credentials")
        code = stub.web_codes.pop(form.get("code", ""), None)
        if code is None or time.monotonic() >= code.expires_at:
            return _token_error("bad_verification_code")
        if code.redirect_uri is not None and form.get("redirect_uri") not in (
            None,
            code.redirect_uri,
        ):
            return _token_error("redirect_uri_mismatch")
        if code.code_challenge is not None and not hmac.compare_digest(
            _s256(form.get("code_verifier", "")), code.code_challenge
        ):
            return _token_error("bad_verification_code")
        return code

    def _poll(self, device_code: str) -> dict[str, Any]:
        stub = self.stub
        code = stub.device_codes.get(device_code)
        if code is None or code.state == "used":
            return {"error": "incorrect_device_code"}
        code.polls += 1
        if code.state == "expired" or time.monotonic() >= code.expires_at:
            code.state = "expired"
            return {"error": "expired_token"}
        if code.state == "denied":
            return {"error": "access_denied"}
        if stub.slow_downs > 0:
            stub.slow_downs -= 1
            stub.interval += 5
            return {"error": "slow_down", "interval": stub.interval}
        if code.state == "approved" and code.pending_polls > 0:
            code.pending_polls -= 1
            return {"error": "authorization_pending"}
        if code.state != "approved":
            return {"error": "authorization_pending"}
        code.state = "used"
        return stub.issue_user_token(code.login, code.token)

    def _refresh(self, refresh_token: str) -> dict[str, Any]:
        login = self.stub.refresh_tokens.pop(refresh_token, None)
        if login is None:
            return {"error": "bad_refresh_token"}
        return self.stub.issue_user_token(login)


class UserHandler(_Handler):
    def get(self) -> None:
        record = self.stub.user_for(self.request.headers.get("Authorization"))
        if record is None:
            self.bad_credentials()
        elif record.kind == "installation":
            self.reply(403, {"message": "Resource not accessible by integration"})
        else:
            headers = {"X-OAuth-Scopes": record.scopes} if record.kind == "oauth" else {}
            self.reply(200, _user_json(record.login or ""), headers)


class RepoHandler(_Handler):
    def get(self, owner: str, name: str) -> None:
        record = self.stub.user_for(self.request.headers.get("Authorization"))
        if record is None:
            self.bad_credentials()
            return
        with self.stub.lock:
            repo = self.stub.repos.get(f"{owner}/{name}")
        if repo is None:
            self.not_found()
            return
        body = _repo_json(self.stub, repo)
        if record.kind != "installation":
            push = record.login == owner or record.login in repo.pushers
            body["permissions"] = {
                "admin": record.login == owner,
                "maintain": record.login == owner,
                "push": push,
                "triage": push,
                "pull": True,
            }
        self.reply(200, body)


class ForkHandler(_Handler):
    def post(self, owner: str, name: str) -> None:
        record = self.stub.user_for(self.request.headers.get("Authorization"))
        if record is None or record.login is None:
            self.bad_credentials()
            return
        with self.stub.lock:
            if f"{owner}/{name}" not in self.stub.repos:
                self.not_found()
                return
        fork = self.stub.add_fork(f"{owner}/{name}", record.login)
        self.reply(202, _repo_json(self.stub, fork))


class PullsHandler(_Handler):
    """Create a pull request, and list them (GitHub's "Pulls" REST API)."""

    def post(self, owner: str, name: str) -> None:
        stub = self.stub
        record = stub.user_for(self.request.headers.get("Authorization"))
        if record is None:
            self.bad_credentials()
            return
        full_name = f"{owner}/{name}"
        with stub.lock:
            repo = stub.repos.get(full_name)
        if repo is None:
            self.not_found()
            return
        try:
            fields = json.loads(self.request.body or b"{}")
        except ValueError:
            self.reply(400, {"message": "Problems parsing JSON", "documentation_url": _PULLS_DOC})
            return
        if not isinstance(fields, dict):
            fields = {}
        for required in ("head", "base", "title"):
            if not isinstance(fields.get(required), str):
                message = f'Invalid request.\n\n"{required}" wasn\'t supplied.'
                self.reply(422, {"message": message, "documentation_url": _PULLS_DOC})
                return
        head, base, title = fields["head"], fields["base"], fields["title"]
        head_owner, _, head_ref = head.rpartition(":")
        head_owner = head_owner or owner
        with stub.lock:
            head_repo = self._in_network(full_name, head_owner)
            if head_repo is not None and not self._may_push(record, head_repo):
                self.reply(403, _failure_body(403))
                return
            head_sha = branch_sha(stub, head_repo, head_ref) if head_repo else None
            base_sha = branch_sha(stub, full_name, base)
            invalid = [
                {"resource": "PullRequest", "field": field, "code": "invalid"}
                for field, sha in (("base", base_sha), ("head", head_sha))
                if sha is None
            ]
            if invalid:
                self.reply(422, _validation_failed(*invalid))
                return
            assert head_repo is not None and head_sha is not None and base_sha is not None
            if any(
                p.repo == full_name
                and p.state == "open"
                and (p.head_owner, p.head_ref) == (head_owner, head_ref)
                for p in stub.pulls
            ):
                message = f"A pull request already exists for {head_owner}:{head_ref}."
                error = {"resource": "PullRequest", "code": "custom", "message": message}
                self.reply(422, _validation_failed(error))
                return
            body = fields.get("body")
            pull = Pull(
                number=len(stub.pulls) + 1,
                repo=full_name,
                title=title,
                body=body if isinstance(body, str) else None,
                head_owner=head_owner,
                head_repo=head_repo,
                head_ref=head_ref,
                head_sha=head_sha,
                base=base,
                base_sha=base_sha,
                user=record.login or "app",
            )
            stub.pulls.append(pull)
            answer = _pull_json(stub, pull)
        self.reply(201, answer, {"Location": answer["url"]})

    def get(self, owner: str, name: str) -> None:
        stub = self.stub
        authorization = self.request.headers.get("Authorization")
        if authorization and stub.user_for(authorization) is None:
            self.bad_credentials()
            return
        full_name = f"{owner}/{name}"
        with stub.lock:
            if full_name not in stub.repos:
                self.not_found()
                return
            state = self.get_argument("state", "open")
            head = self.get_argument("head", None)
            base = self.get_argument("base", None)
            listed = [
                _pull_json(stub, p)
                for p in reversed(stub.pulls)  # newest first, as GitHub sorts by default
                if p.repo == full_name
                and (state == "all" or p.state == state)
                and (head is None or head == f"{p.head_owner}:{p.head_ref}")
                and (base is None or base == p.base)
            ]
        self.reply(200, listed)

    def _in_network(self, full_name: str, head_owner: str) -> str | None:
        """The repository of `head_owner` in `full_name`'s network (itself, or a fork)."""
        if head_owner == full_name.split("/")[0]:
            return full_name
        for candidate in self.stub.repos.values():
            if candidate.owner == head_owner and candidate.parent == full_name:
                return f"{candidate.owner}/{candidate.name}"
        return None

    def _may_push(self, record: Token, head_repo: str) -> bool:
        repo = self.stub.repos.get(head_repo)
        if repo is None:
            return False
        if record.kind == "installation":
            return repo.installation is not None and repo.installation == record.installation
        return record.login == repo.owner or record.login in repo.pushers


class GitHandler(tornado.web.RequestHandler):
    """`<owner>/<repo>.git/...`: handed to the real git server, as GitHub serves git."""

    def initialize(self, stub: GitHubStub) -> None:
        self.stub = stub

    async def _forward(self) -> None:
        if self.stub.git is None:
            self.set_status(404)
            return
        headers = {
            k: v
            for k, v in self.request.headers.get_all()
            if k.lower() in ("authorization", "content-type", "content-encoding", "accept")
        }
        response = await tornado.httpclient.AsyncHTTPClient().fetch(
            self.stub.git.url + self.request.uri,
            method=self.request.method,
            headers=headers,
            body=self.request.body if self.request.method == "POST" else None,
            raise_error=False,
            decompress_response=False,
            request_timeout=60,
        )
        self.set_status(response.code if response.code >= 200 else 502)
        for name in ("Content-Type", "WWW-Authenticate", "Cache-Control"):
            if name in response.headers:
                self.set_header(name, response.headers[name])
        self.finish(response.body or b"")

    async def get(self, path: str) -> None:
        await self._forward()

    async def post(self, path: str) -> None:
        await self._forward()


class InstallationHandler(_Handler):
    def get(self, owner: str, name: str) -> None:
        if self.stub.verify_app_jwt(self.request.headers.get("Authorization")) is None:
            self.reply(401, {"message": "A JSON web token could not be decoded"})
            return
        with self.stub.lock:
            repo = self.stub.repos.get(f"{owner}/{name}")
        if repo is None or repo.installation is None:
            self.not_found()
            return
        self.reply(
            200,
            {"id": repo.installation, "app_id": int(self.stub.app_id), "account": {"login": owner}},
        )


class AccessTokensHandler(_Handler):
    def post(self, installation: str) -> None:
        stub = self.stub
        if stub.verify_app_jwt(self.request.headers.get("Authorization")) is None:
            self.reply(401, {"message": "A JSON web token could not be decoded"})
            return
        try:
            wanted = json.loads(self.request.body or b"{}").get("repositories", [])
        except ValueError:
            wanted = []
        with stub.lock:
            installed = [r.name for r in stub.repos.values() if r.installation == int(installation)]
            if not installed:
                self.not_found()
                return
            if any(name not in installed for name in wanted):
                self.reply(422, {"message": "There is at least one repository that does not exist"})
                return
            token = stub.next_installation_token or new_token("ghs")
            stub.next_installation_token = None
            expires = time.time() + stub.installation_token_ttl
            stub.tokens[token] = Token(
                None,
                "installation",
                expires_at=expires,
                installation=int(installation),
                repositories=list(wanted or installed),
            )
        expires_at = dt.datetime.fromtimestamp(expires, dt.timezone.utc)
        self.reply(
            201,
            {
                "token": token,
                "expires_at": expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "permissions": {"contents": "write", "metadata": "read"},
                "repository_selection": "selected",
            },
        )


def _user_json(login: str) -> dict[str, Any]:
    """The authenticated user as GET /user shows it (the fields clients read; `email` is null
    while the user keeps it private)."""
    user_id = int.from_bytes(hashlib.sha256(login.encode()).digest()[:3], "big")
    return {"login": login, "id": user_id, "type": "User", "name": None, "email": None}


def _token_error(error: str) -> dict[str, str]:
    """The token endpoint's error answer (HTTP 200), with GitHub's description where its
    troubleshooting page gives one."""
    descriptions = {
        "incorrect_client_credentials": "The client_id and/or client_secret passed are incorrect.",
        "redirect_uri_mismatch": "The redirect_uri MUST match the registered callback URL for"
        " this application.",
        "bad_verification_code": "The code passed is incorrect or expired.",
    }
    if error not in descriptions:
        return {"error": error}
    anchor = error.replace("_", "-")
    return {
        "error": error,
        "error_description": descriptions[error],
        "error_uri": f"{_TOKEN_ERRORS_DOC}#{anchor}",
    }


def _repo_json(stub: GitHubStub, repo: Repo) -> dict[str, Any]:
    full_name = f"{repo.owner}/{repo.name}"
    body: dict[str, Any] = {
        "full_name": full_name,
        "name": repo.name,
        "owner": {"login": repo.owner},
        "private": False,
        "fork": repo.parent is not None,
        "html_url": f"{stub.url}/{full_name}",
        "clone_url": f"{stub.url}/{full_name}.git",
        "default_branch": _default_branch(stub, full_name),
    }
    parent = stub.repos.get(repo.parent) if repo.parent else None
    if parent is not None:  # GitHub adds the parent (and the network's source) to a fork
        body["parent"] = body["source"] = {
            "full_name": repo.parent,
            "clone_url": f"{stub.url}/{repo.parent}.git",
            "default_branch": _default_branch(stub, repo.parent),
        }
    return body


def _git_out(stub: GitHubStub, full_name: str, *args: str) -> str | None:
    """What the git CLI says in the repository behind `full_name`, or None (no repository
    there, or git says no)."""
    if stub.git is None or not stub.git.repo_path(full_name).exists():
        return None
    out = subprocess.run(
        ["git", "--git-dir", str(stub.git.repo_path(full_name)), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() if out.returncode == 0 else None


def _default_branch(stub: GitHubStub, full_name: str) -> str:
    head = _git_out(stub, full_name, "symbolic-ref", "HEAD")
    return head.removeprefix("refs/heads/") if head else "main"


def branch_sha(stub: GitHubStub, full_name: str, branch: str) -> str | None:
    """The commit branch `branch` of repository `full_name` is at, in its git repository."""
    if not branch or branch.startswith("-"):
        return None
    return _git_out(stub, full_name, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")


_FAILURES = {
    401: "Bad credentials",
    403: "Resource not accessible by personal access token",
    404: "Not Found",
    422: "Validation Failed",
    500: "Server Error",
    502: "Server Error",
    503: "Service Unavailable",
}
_PULLS_DOC = "https://docs.github.com/rest/pulls/pulls#create-a-pull-request"


def _failure_body(status: int) -> dict[str, Any]:
    return {
        "message": _FAILURES.get(status, "Error"),
        "documentation_url": "https://docs.github.com/rest",
    }


def _validation_failed(*errors: dict[str, str]) -> dict[str, Any]:
    """GitHub's 422 answer: "Validation Failed" and the list of what failed."""
    return {"message": "Validation Failed", "errors": list(errors), "documentation_url": _PULLS_DOC}


def _pull_json(stub: GitHubStub, pull: Pull) -> dict[str, Any]:
    """A pull request as GitHub answers it (the fields clients read)."""
    api = f"{stub.url}/repos/{pull.repo}/pulls/{pull.number}"
    base_owner = pull.repo.split("/")[0]

    def side(owner: str, repo: str, ref: str, sha: str) -> dict[str, Any]:
        return {
            "label": f"{owner}:{ref}",
            "ref": ref,
            "sha": sha,
            "user": {"login": owner},
            "repo": {"full_name": repo, "owner": {"login": owner}, "name": repo.split("/")[1]},
        }

    return {
        "url": api,
        "id": 1_000_000 + pull.number,
        "number": pull.number,
        "html_url": f"{stub.url}/{pull.repo}/pull/{pull.number}",
        "state": pull.state,
        "title": pull.title,
        "body": pull.body,
        "user": {"login": pull.user},
        "draft": False,
        "merged": False,
        "head": side(pull.head_owner, pull.head_repo, pull.head_ref, pull.head_sha),
        "base": side(base_owner, pull.repo, pull.base, pull.base_sha),
    }


def _routes(stub: GitHubStub) -> list[tuple[str, type[_Handler], dict[str, Any]]]:
    kwargs = {"stub": stub}
    part = r"([A-Za-z0-9_.-]+)"
    return [
        (r"/login/oauth/authorize", AuthorizeHandler, kwargs),
        (r"/login/device/code", DeviceCodeHandler, kwargs),
        (r"/login/oauth/access_token", AccessTokenHandler, kwargs),
        (r"/user", UserHandler, kwargs),
        (rf"/repos/{part}/{part}/installation", InstallationHandler, kwargs),
        (rf"/repos/{part}/{part}/forks", ForkHandler, kwargs),
        (rf"/repos/{part}/{part}/pulls", PullsHandler, kwargs),
        (rf"/repos/{part}/{part}", RepoHandler, kwargs),
        (r"/app/installations/([0-9]+)/access_tokens", AccessTokensHandler, kwargs),
        (r"/([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+\.git/.*)", GitHandler, kwargs),
    ]
