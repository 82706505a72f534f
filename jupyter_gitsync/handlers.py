"""Thin REST handlers: authenticate, authorize, call the engine, answer JSON."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

from . import history, publish
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


class HistoryHandler(_EngineHandler):
    """GET /gitsync/history?path=P&limit=N&before=SHA: snapshots that changed P (or all of
    them), newest first."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        path = self._query("path")
        before = self._query("before")
        await self.answer(_history_page(self.engine, path, self._query("limit"), before))

    def _query(self, name: str) -> str | None:
        values = self.get_query_arguments(name, strip=False)
        if len(values) > 1:
            raise web.HTTPError(400, f"Give {name} once.")
        return values[0] if values else None


class FileHandler(HistoryHandler):
    """GET /gitsync/file?path=P&sha=S: the file as that snapshot holds it."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        path, sha = self._query("path"), self._query("sha")
        if path is None or sha is None:
            raise web.HTTPError(400, "Give path and sha, like ?path=a.ipynb&sha=<snapshot>.")
        await self.answer(self.engine.file(path, sha))


class DiffHandler(HistoryHandler):
    """GET /gitsync/diff?path=P&base=SHA[&remote=SHA][&base_path=B][&remote_path=R]: P at
    snapshot base against P at snapshot remote, or on disk now; base_path / remote_path name
    the file on that side where it was renamed."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        path, base, remote = self._query("path"), self._query("base"), self._query("remote")
        if path is None or base is None:
            raise web.HTTPError(400, "Give path and base, like ?path=a.ipynb&base=<snapshot>.")
        names = self._query("base_path"), self._query("remote_path")
        await self.answer(self.engine.diff(path, base, remote, *names))


class VersionsHandler(_EngineHandler):
    """GET /gitsync/versions: the named versions, newest first. POST {"name", "message"[,
    "sha"]}: name a snapshot (default: one of now)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self.answer(self.engine.list_versions())

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = _json_object(self.request.body, '{"name": "draft-1", "message": "…"}')
        name = _string_field(body, "name", "draft-1")
        message = _string_field(body, "message", "…", default="")
        sha = _string_field(body, "sha", "<snapshot>", default=None)
        await self.answer(self.engine.save_version(name, message, sha))


class RestoreFileHandler(_EngineHandler):
    """POST /gitsync/restore-file {"path", "sha"[, "from_path"]}: bring one file back (from
    its name at that snapshot, where it was renamed since); answers with the new snapshot."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = _json_object(self.request.body, '{"path": "a.ipynb", "sha": "<snapshot>"}')
        path = _string_field(body, "path", "a.ipynb")
        sha = _string_field(body, "sha", "<snapshot>")
        from_path = _string_field(body, "from_path", "old-name.ipynb", default=None)
        await self.answer(self.engine.restore_file(path, sha, from_path))


class RestoreWorkspaceHandler(_EngineHandler):
    """POST /gitsync/restore-workspace {"sha"}: bring the synced files back to a snapshot;
    answers with the new snapshot."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = _json_object(self.request.body, '{"sha": "<snapshot>"}')
        await self.answer(self.engine.restore_workspace(_string_field(body, "sha", "<snapshot>")))


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


_REQUIRED = object()


def _json_object(body: bytes, example: str) -> dict[str, Any]:
    """The JSON object of a request body, or a 400 that shows what to send."""
    try:
        value = json.loads(body or b"{}")
    except (ValueError, RecursionError):  # RecursionError: deep JSON
        value = None
    if not isinstance(value, dict):
        raise web.HTTPError(400, f"Send JSON like {example}.")
    return value


def _string_field(
    body: bytes | dict[str, Any], key: str, example: str, default: Any = _REQUIRED
) -> Any:
    """The string `key` of a JSON body (or of its object), or a 400 that shows what to send."""
    try:
        value = body if isinstance(body, dict) else json.loads(body or b"{}")
        if not isinstance(value, dict):
            raise TypeError(value)
        if key not in value and default is not _REQUIRED:
            return default
        value = value[key]
        if not isinstance(value, str):
            raise TypeError(value)
        value.encode("utf-8")  # a lone surrogate is no branch name
    except (ValueError, KeyError, TypeError, RecursionError):  # RecursionError: deep JSON
        raise web.HTTPError(400, f'Send JSON like {{"{key}": "{example}"}}.') from None
    return value


async def _history_page(
    engine: SyncEngine, path: str | None, limit: str | None, before: str | None
) -> dict[str, Any]:
    return await engine.history(path, history.validate_limit(limit), before)


async def _wrap_branches(engine: SyncEngine) -> dict[str, Any]:
    return {"branches": await engine.branches()}
