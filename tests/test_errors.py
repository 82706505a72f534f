from __future__ import annotations

import secrets

from jupyter_gitsync.errors import redact


def test_redact_removes_known_secrets_and_url_credentials() -> None:
    token = secrets.token_hex(16)
    text = f"push to https://x-access-token:{token}@example.org/r.git failed ({token})"
    cleaned = redact(text, [token, None])
    assert token not in cleaned
    assert "https://example.org/r.git" in cleaned


def test_redact_removes_github_token_shapes() -> None:
    shaped = "ghp_" + secrets.token_hex(18)
    assert shaped not in redact(f"token {shaped} refused")
