"""Thin REST handlers for signing in to GitHub: authenticate, authorize, call the AuthService,
answer JSON. Errors answer `{"message": ...}` in plain words; no answer ever holds a token."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

from .github import AuthError
from .service import AuthService

AUTH_RESOURCE = "gitsync"


class _AuthHandler(APIHandler):
    auth_resource = AUTH_RESOURCE

    def initialize(self, auth: AuthService) -> None:
        self.auth = auth

    async def _answer(self, work: Awaitable[dict[str, Any]], status: int = 200) -> None:
        try:
            result = await work
        except AuthError as exc:
            self.set_status(exc.status)
            self.finish(json.dumps({"message": exc.message}))
            return
        self.set_status(status)
        self.finish(json.dumps(result))


class AuthStatusHandler(_AuthHandler):
    """GET /gitsync/auth: who is signed in, how, and any running sign-in.
    DELETE /gitsync/auth: sign out (forget the device-flow token)."""

    # Asking who is signed in is not user activity: the idle culler must still cull.
    _track_activity = False

    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self._answer(self.auth.describe())

    @web.authenticated
    @authorized
    async def delete(self) -> None:
        self.auth.sign_out()
        await self._answer(self.auth.describe())


class DeviceFlowHandler(_AuthHandler):
    """POST /gitsync/auth/device: start a GitHub device-flow sign-in; answers with user_code,
    verification_uri, expires_in and interval."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        await self._answer(self.auth.start_device_flow())


class ForkHandler(_AuthHandler):
    """POST /gitsync/auth/fork: fork the remote into the signed-in user's account; answers with
    the fork's clone_url (GitHub creates it in the background)."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        await self._answer(self.auth.fork(), status=202)


def auth_handlers(auth: AuthService) -> list[tuple[str, type[APIHandler], dict[str, Any]]]:
    """The routes, relative to {base_url}."""
    kwargs = {"auth": auth}
    return [
        (r"/gitsync/auth", AuthStatusHandler, kwargs),
        (r"/gitsync/auth/device", DeviceFlowHandler, kwargs),
        (r"/gitsync/auth/fork", ForkHandler, kwargs),
    ]
