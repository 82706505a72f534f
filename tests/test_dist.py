"""The wheel a release publishes installs into a fresh virtualenv with no Node.js anywhere, and
Jupyter finds both halves enabled: the server extension and the prebuilt JupyterLab extension.

Slow (it builds the wheel and installs it with its dependencies, as a Binder image or a hub
image would), so it runs once per test run."""

from __future__ import annotations

import os
import re
import shutil
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.wheel import InstalledWheel, run

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(installed_wheel: InstalledWheel) -> Path:
    return installed_wheel.wheel


def test_the_wheel_holds_both_extensions_and_nothing_else(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    data = next(n for n in names if ".data/data/" in n).split("/data/")[0] + "/data/"
    share = f"{data}share/jupyter/labextensions/jupyter-gitsync/"
    assert f"{share}package.json" in names
    assert f"{share}install.json" in names
    assert any(n.startswith(f"{share}static/remoteEntry.") for n in names)
    assert f"{data}etc/jupyter/jupyter_server_config.d/jupyter_gitsync.json" in names
    assert "jupyter_gitsync/events/status-v1.yaml" in names
    assert not [n for n in names if n.startswith(("tests/", "node_modules/", "labextension/"))]


def test_the_wheel_installs_and_enables_itself_without_nodejs(
    installed_wheel: InstalledWheel, tmp_path: Path
) -> None:
    venv = installed_wheel.venv
    path = str(venv / "bin")
    assert shutil.which("node", path=path) is None  # (jlpm comes with jupyterlab; it needs node)
    env = {"PATH": path, "HOME": str(tmp_path), "JUPYTER_PLATFORM_DIRS": "1"}
    servers = plain(run([str(venv / "bin" / "jupyter"), "server", "extension", "list"], env))
    assert re.search(r"^\s*jupyter_gitsync enabled$", servers, re.M), servers
    assert re.search(r"^\s*jupyter_gitsync \S+ OK$", servers, re.M), servers  # it imports
    labs = plain(run([str(venv / "bin" / "jupyter"), "labextension", "list"], env))
    assert re.search(
        r"^\s*jupyter-gitsync v\S+ enabled OK \(python, jupyter_gitsync\)$", labs, re.M
    ), labs
    cli = run([str(venv / "bin" / "jupyter-gitsync"), "--help"], env)
    assert "restore" in cli


def plain(text: str) -> str:
    """Without the terminal colours Jupyter's listings use."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def test_the_release_workflow_builds_with_make_dist_and_publishes_on_a_tag() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert triggers["push"]["tags"] == ["v*"]
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    assert any("make dist" in step.get("run", "") for step in steps)
    publish = [s for s in steps if "pypa/gh-action-pypi-publish" in s.get("uses", "")]
    assert publish, "publishes to PyPI"
    jobs = workflow["jobs"]
    assert any(job.get("permissions", {}).get("id-token") == "write" for job in jobs.values())
    assert os.path.exists(ROOT / "install.json")
