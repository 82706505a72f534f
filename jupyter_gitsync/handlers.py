"""Thin REST handlers: authenticate, authorize, call the engine, answer JSON."""

from __future__ import annotations

import json

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

from .engine import SyncEngine

AUTH_RESOURCE = "gitsync"


class _EngineHandler(APIHandler):
    auth_resource = AUTH_RESOURCE

    def initialize(self, engine: SyncEngine) -> None:
        self.engine = engine


class StatusHandler(_EngineHandler):
    """GET /gitsync/status: what the engine is doing, without credentials."""

    # Polling the status is not user activity: the idle culler must still cull.
    _track_activity = False

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.finish(json.dumps(self.engine.status_json()))


class SyncHandler(_EngineHandler):
    """POST /gitsync/sync: snapshot and push now; answers with the status when done."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.finish(json.dumps(await self.engine.sync_now()))
