"""Thin REST handlers: authenticate, authorize, call the engine, answer JSON."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

from . import publish
from .engine import SyncEngine
from .errors import (
    AuthRequired,
    ConfigError,
    GitSyncError,
    LoginUnknown,
    NotFound,
    RemoteNotFound,
    RemoteUnavailable,
    TokenMissing,
)

# How each failure kind answers over HTTP; the body is always {"message", "kind"}.
_STATUS_CODES = {
    ConfigError.kind: 400,
    AuthRequired.kind: 401,
    TokenMissing.kind: 401,
    LoginUnknown.kind: 401,
    RemoteNotFound.kind: 404,
    NotFound.kind: 404,
    RemoteUnavailable.kind: 502,
}

AUTH_RESOURCE = "gitsync"


class _EngineHandler(APIHandler):
    auth_resource = AUTH_RESOURCE

    def initialize(self, engine: SyncEngine) -> None:
        self.engine = engine

    async def answer(self, work: Awaitable[Any]) -> None:
        """Finish with `work`'s JSON, or with a plain-words error and a fitting status."""
        try:
            result = await work
        except GitSyncError as exc:
            self.set_status(_STATUS_CODES.get(exc.kind, 409))
            self.finish(json.dumps({"message": exc.message, "kind": exc.kind}))
            return
        self.finish(json.dumps(result))


class StatusHandler(_EngineHandler):
    """GET /gitsync/status: what the engine is doing, without credentials."""

    # Polling the status is not user activity: the idle culler must still cull.
    _track_activity = False

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.finish(json.dumps(self.engine.status_json()))


class SyncHandler(_EngineHandler):
    """POST /gitsync/sync: snapshot, push and pull now; answers with the status when done."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        await self.answer(self.engine.sync_now())


class BranchesHandler(_EngineHandler):
    """GET /gitsync/branches: branches to resume from, sync branches first, newest first."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self.answer(_wrap_branches(self.engine))


class ResumeHandler(_EngineHandler):
    """POST /gitsync/resume {"branch": ...}: save current work, then switch and restore."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        branch = _string_field(self.request.body, "branch", "gitsync/ada")
        await self.answer(self.engine.resume(branch))


class RescueDeleteHandler(_EngineHandler):
    """POST /gitsync/rescues/delete {"name": ...}: delete a rescue branch of the sync branch,
    on the remote and here; answers with the status."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        name = _string_field(self.request.body, "name", "gitsync/ada-rescue-…")
        await self.answer(self.engine.delete_rescue(name))


class PublishHandler(_EngineHandler):
    """POST /gitsync/publish {"branch", "title", "body"[, "source"]}: the workspace (or a
    snapshot or version of it) as one commit on a branch of its own, pushed, with a pull
    request on GitHub; answers {"branch", "commit", "pull_request_url", "message"}."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        await self.answer(self.engine.publish(_publish_request(self.request.body)))


def _publish_request(body: bytes) -> publish.Request:
    """The publish request in a JSON body, or a 400 that shows what to send."""
    example = '{"branch": "my-analysis", "title": "...", "body": "...", "source": null}'
    try:
        fields = json.loads(body or b"{}")
        if not isinstance(fields, dict):
            raise TypeError(fields)
        branch, title = fields["branch"], fields["title"]
        text, source = fields.get("body") or "", fields.get("source")
        if not all(isinstance(v, str) for v in (branch, title, text)):
            raise TypeError(fields)
        if source is not None and not isinstance(source, str):
            raise TypeError(source)
        for value in (branch, title, text, source or ""):
            value.encode("utf-8")  # a lone surrogate is neither a name nor text
    except (ValueError, KeyError, TypeError, RecursionError):
        raise web.HTTPError(400, f"Send JSON like {example}.") from None
    return publish.Request(branch, title, text, source or None)


def _string_field(body: bytes, key: str, example: str) -> str:
    """The string `key` of a JSON body, or a 400 that shows what to send."""
    try:
        value = json.loads(body or b"{}")[key]
        if not isinstance(value, str):
            raise TypeError(value)
        value.encode("utf-8")  # a lone surrogate is no branch name
    except (ValueError, KeyError, TypeError, RecursionError):  # RecursionError: deep JSON
        raise web.HTTPError(400, f'Send JSON like {{"{key}": "{example}"}}.') from None
    return value


async def _wrap_branches(engine: SyncEngine) -> dict[str, Any]:
    return {"branches": await engine.branches()}
