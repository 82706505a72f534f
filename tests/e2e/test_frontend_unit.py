"""The frontend's unit tests (jest, `jlpm test`), run from pytest so that `make test` stays the
one entry point for every test."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.e2e.lab import ROOT

JEST = ROOT / "node_modules" / "jest" / "bin" / "jest.js"


def test_the_frontend_unit_tests_pass() -> None:
    node = shutil.which("node")
    if node is None or not JEST.exists():
        reason = "node or the frontend's node_modules are missing (`make setup` installs them)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    result = subprocess.run(
        [node, str(JEST), "--ci", "--silent", "--maxWorkers=2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
