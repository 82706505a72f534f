"""GitHub's device flow against the local GitHub stand-in: sign-in, slow_down, expiry, denial,
refreshing expiring GitHub App user tokens, sign-out."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator

import pytest

from jupyter_gitsync.auth import device as device_module
from jupyter_gitsync.auth.device import DEVICE_GRANT, DeviceFlowProvider
from jupyter_gitsync.auth.github import AuthError, GitHubSettings
from tests.github_stub import GitHubStub, new_token
from tests.helpers import async_wait_until


@pytest.fixture
def github() -> Iterator[GitHubStub]:
    stub = GitHubStub().start()
    yield stub
    stub.stop()


class Sleeps:
    """Stands in for asyncio.sleep: records what the provider waits, and only yields."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        await asyncio.sleep(0)


def make(
    github: GitHubStub, sleep: Callable[[float], Awaitable[None]] | None = None
) -> tuple[DeviceFlowProvider, list[str]]:
    """A provider on the stub; the list records the token each `changed()` announced. Tests of
    expiring tokens use real time (an instant sleep would refresh in a tight loop)."""
    provider = DeviceFlowProvider(
        github.client_id,
        GitHubSettings(github.url, github.url),
        sleep=sleep or Sleeps(),
    )
    announced: list[str] = []
    provider.bind(lambda: announced.append(provider.token() or ""))
    return provider, announced


async def test_sign_in_at_githubs_pace(github: GitHubStub) -> None:
    sleeps = Sleeps()
    provider, announced = make(github, sleeps)
    info = await provider.start()
    assert info["verification_uri"] == f"{github.url}/login/device"
    assert info["interval"] == 5 and 0 < info["expires_in"] <= 900
    assert len(info["user_code"]) == 9 and info["state"] == "pending"
    issued = new_token("gho")
    github.approve(info["user_code"], login="ada", token=issued, after_polls=2)

    await async_wait_until(provider.token, what="the token")
    assert provider.token() == issued
    assert announced == [issued]
    assert sleeps.calls == [5, 5, 5]  # two authorization_pending, then the token
    assert github.polls() == 3
    assert provider.flow_status() is None and not provider.busy
    assert provider.granted_scopes == ["repo"]
    assert issued in provider.secrets()
    polls = github.form_requests("/login/oauth/access_token")
    codes = {code.device_code for code in github.device_codes.values()}
    assert polls and all(
        set(p) == {"client_id", "device_code", "grant_type"}
        and (p["client_id"], p["grant_type"]) == (github.client_id, DEVICE_GRANT)
        and p["device_code"] in codes
        for p in polls
    )
    assert github.form_requests("/login/device/code") == [
        {"client_id": github.client_id, "scope": "repo"}
    ]


async def test_slow_down_adds_five_seconds_each_time(github: GitHubStub) -> None:
    sleeps = Sleeps()
    provider, _ = make(github, sleeps)
    info = await provider.start()
    github.slow_downs = 2
    github.approve(info["user_code"])
    await async_wait_until(provider.token, what="the token")
    assert sleeps.calls == [5, 10, 15]


async def test_a_second_start_while_pending_reuses_the_code(github: GitHubStub) -> None:
    provider, _ = make(github, Sleeps())
    first = await provider.start()
    second = await provider.start()
    assert second["user_code"] == first["user_code"]
    assert len(github.form_requests("/login/device/code")) == 1
    provider.sign_out()
    assert provider.flow_status() is None and not provider.busy


@pytest.mark.parametrize(("act", "state"), [("expire", "expired"), ("deny", "denied")])
async def test_expiry_and_denial_end_the_flow(github: GitHubStub, act: str, state: str) -> None:
    provider, announced = make(github)
    info = await provider.start()
    getattr(github, act)(info["user_code"])
    ended = await async_wait_until(
        lambda: (provider.flow_status() or {}).get("state") == state and not provider.busy,
        what=state,
    )
    assert ended
    status = provider.flow_status()
    assert status is not None
    assert status["user_code"] == info["user_code"]
    assert status["verification_uri"] == info["verification_uri"]
    assert status["message"]
    assert provider.token() is None and announced == []
    assert github.polls() == 1  # polling stopped at the answer


async def test_a_code_that_expired_locally_is_not_polled(github: GitHubStub) -> None:
    github.device_expires_in = 0
    provider, _ = make(github)
    await provider.start()
    await async_wait_until(lambda: not provider.busy, what="the flow to end")
    assert (provider.flow_status() or {}).get("state") == "expired"
    assert github.polls() == 0


async def test_no_client_id_is_a_plain_400(github: GitHubStub) -> None:
    provider = DeviceFlowProvider(None, GitHubSettings(github.url, github.url))
    with pytest.raises(AuthError) as caught:
        await provider.start()
    assert caught.value.status == 400
    assert "GITSYNC_CLIENT_ID" in caught.value.message
    assert github.requests == []


async def test_an_unknown_client_id_is_reported(github: GitHubStub) -> None:
    provider = DeviceFlowProvider("Iv1.unknown", GitHubSettings(github.url, github.url))
    with pytest.raises(AuthError) as caught:
        await provider.start()
    assert caught.value.status == 502
    assert "client ID" in caught.value.message


async def test_github_unreachable_is_reported(github: GitHubStub) -> None:
    url = github.url
    github.stop()
    provider = DeviceFlowProvider("Iv1.x", GitHubSettings(url, url))
    with pytest.raises(AuthError) as caught:
        await provider.start()
    assert "could not be reached" in caught.value.message


async def test_expiring_tokens_are_refreshed_before_they_expire(github: GitHubStub) -> None:
    github.token_expires_in = 2  # GitHub App user tokens: expires_in and a refresh token
    github.interval = 0
    provider, announced = make(github, asyncio.sleep)  # the refresh is due 1.5 s after sign-in
    info = await provider.start()
    github.approve(info["user_code"], login="ada")
    first = await async_wait_until(provider.token, what="the token")
    first_secrets = set(provider.secrets())
    second = await async_wait_until(
        lambda: provider.token() if provider.token() != first else None, what="the refresh"
    )
    refreshes = [
        f
        for f in github.form_requests("/login/oauth/access_token")
        if f["grant_type"] == "refresh_token"
    ]
    assert len(refreshes) >= 1
    assert refreshes[0]["refresh_token"] in first_secrets
    assert refreshes[0]["client_id"] == github.client_id
    assert announced[:2] == [first, second]
    # old and new tokens and refresh tokens are all redacted
    assert first_secrets <= set(provider.secrets()) and second in provider.secrets()
    provider.sign_out()
    assert provider.token() is None and not provider.busy


async def test_a_refused_token_is_refreshed(
    github: GitHubStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    github.token_expires_in = 8 * 3600
    github.interval = 0
    provider, announced = make(github, asyncio.sleep)
    info = await provider.start()
    github.approve(info["user_code"])
    first = await async_wait_until(provider.token, what="the token")

    # right after sign-in a refusal means missing permission: refreshing would not help
    scheduled = set(provider._tasks)  # the refresh due in 8 h
    await asyncio.to_thread(provider.refused)  # its call_soon_threadsafe has run by now
    assert set(provider._tasks) == scheduled
    assert provider.token() == first

    monkeypatch.setattr(device_module, "FRESH_SECONDS", 0.0)
    await asyncio.to_thread(provider.refused)
    await async_wait_until(lambda: provider.token() != first, what="the refresh")
    assert announced[-1] == provider.token()
    await provider.close()


async def test_a_failed_refresh_keeps_the_token_and_forgets_the_refresh_token(
    github: GitHubStub,
) -> None:
    github.token_expires_in = 8 * 3600
    github.interval = 0
    provider, _ = make(github, asyncio.sleep)
    info = await provider.start()
    github.approve(info["user_code"])
    token = await async_wait_until(provider.token, what="the token")
    github.refresh_tokens.clear()  # GitHub forgot it: bad_refresh_token
    assert await provider.refresh() is False
    assert provider.token() == token
    assert await provider.refresh() is False  # nothing left to try
    await provider.close()
