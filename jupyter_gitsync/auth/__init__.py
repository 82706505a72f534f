"""Where the push token comes from. Tokens live in memory only and are never logged.

Providers, asked in this order (see `service.AuthService.from_settings`): the GitHub device-flow
sign-in from the UI (`device.py`), GITSYNC_TOKEN / GITHUB_TOKEN, the JupyterHub auth_state
(`hub.py`), a GitHub App installation token (`github_app.py`).
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable, Mapping
from typing import Protocol

TOKEN_ENV_VARS = ("GITSYNC_TOKEN", "GITHUB_TOKEN")


class TokenProvider(Protocol):
    """One source of a token; returns None when it has none. Called on the git thread, so a
    provider may block (e.g. ask the hub's API)."""

    def token(self) -> str | None: ...


class EnvTokenProvider:
    """An explicit token from the environment: GITSYNC_TOKEN, else GITHUB_TOKEN.

    Read from this process's environment, both variables are then removed from it (unless
    `keep_in_environment`): kernels and terminals started later inherit the server's
    environment, and code in them must not find the push token there.
    """

    name = "env"

    def __init__(
        self, environ: Mapping[str, str] | None = None, keep_in_environment: bool = False
    ) -> None:
        env = os.environ if environ is None else environ
        self._token = next((env[name] for name in TOKEN_ENV_VARS if env.get(name)), None)
        if environ is None and not keep_in_environment:
            for name in TOKEN_ENV_VARS:
                _scrub(name)
                os.environ.pop(name, None)

    def token(self) -> str | None:
        return self._token


def _scrub(name: str) -> None:
    """Overwrite the value of environment variable `name` where the C library keeps it. Once
    unset it is gone from the environment children inherit, but the bytes stay in memory that
    `/proc/<pid>/environ` shows to every process of the same user, kernels included."""
    try:
        libc = ctypes.CDLL(None)
        libc.getenv.restype = ctypes.c_void_p
        libc.getenv.argtypes = [ctypes.c_char_p]
        value = libc.getenv(name.encode())
        if value:
            ctypes.memset(value, ord("*"), len(ctypes.string_at(value)))
    except (OSError, AttributeError, ValueError):  # not a C library we know: unset is all
        pass


class Credentials:
    """The providers, asked in order. `epoch` changes whenever a new token may be available,
    and listeners (the engine) are told, so that a push refused for its token is retried."""

    def __init__(self, providers: list[TokenProvider]) -> None:
        self.providers: list[TokenProvider] = []
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        self.epoch = 0
        for provider in providers:
            self.add(provider)

    def add(self, provider: TokenProvider) -> None:
        """Ask `provider` after those already here."""
        self.providers.append(provider)
        bind = getattr(provider, "bind", None)
        if bind is not None:
            bind(self.changed)  # providers that get tokens by themselves announce them

    def token(self) -> str | None:
        """The first token any provider has (called on the git thread when a push needs it)."""
        active = self.active()
        return None if active is None else active[1]

    def active(self) -> tuple[TokenProvider, str] | None:
        """The first provider that has a token, with that token. May block, like `token()`."""
        for provider in self.providers:
            token = provider.token()
            if token:
                return provider, token
        return None

    def refused(self) -> None:
        """The remote refused the token: providers that can fetch a fresh one (the hub's
        auth_state, a refresh token) do so and call `changed()`. Runs on the git thread."""
        for provider in self.providers:
            on_refused = getattr(provider, "refused", None)
            if on_refused is not None:
                on_refused()

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call `listener` (from any thread) whenever `changed()` is called."""
        self._listeners.append(listener)

    def changed(self) -> None:
        """A new token may be there (after sign-in or a refresh): tell the engine to push."""
        with self._lock:
            self.epoch += 1
        for listener in list(self._listeners):
            listener()

    def secrets(self) -> list[str]:
        """Every token currently known, for redaction. Providers that fetch tokens list what
        they hold with `secrets()` (which never blocks: the engine calls this on the loop)."""
        found: list[str | None] = []
        for provider in self.providers:
            held = getattr(provider, "secrets", None)
            found.extend(held() if held is not None else [provider.token()])
        return [t for t in found if t]
