"""Where the push token comes from. Tokens live in memory only and are never logged."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Protocol

TOKEN_ENV_VARS = ("GITSYNC_TOKEN", "GITHUB_TOKEN")


class TokenProvider(Protocol):
    """One source of a token; returns None when it has none."""

    def token(self) -> str | None: ...


class EnvTokenProvider:
    """An explicit token from the environment: GITSYNC_TOKEN, else GITHUB_TOKEN."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._token = next((env[name] for name in TOKEN_ENV_VARS if env.get(name)), None)

    def token(self) -> str | None:
        return self._token


class Credentials:
    """The providers, asked in order; `epoch` changes whenever a new token may be available."""

    def __init__(self, providers: list[TokenProvider]) -> None:
        self._providers = providers
        self._lock = threading.Lock()
        self.epoch = 0

    def token(self) -> str | None:
        """The first token any provider has (called on the git thread when a push needs it)."""
        for provider in self._providers:
            token = provider.token()
            if token:
                return token
        return None

    def changed(self) -> None:
        """Tell the engine a new token may be there (after sign-in), so it retries pushing."""
        with self._lock:
            self.epoch += 1

    def secrets(self) -> list[str]:
        """Every token currently known, for redaction."""
        return [t for t in (p.token() for p in self._providers) if t]
