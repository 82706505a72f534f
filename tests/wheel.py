"""The wheel a release publishes, built from this checkout and installed into a fresh
virtualenv the way a Binder `requirements.txt` or a hub image installs it (with JupyterLab,
without Node.js). Built once per test run: test_dist checks it, the Binder journey runs it."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILT_FRONTEND = ROOT / "jupyter_gitsync" / "labextension" / "package.json"


@dataclass(frozen=True)
class InstalledWheel:
    wheel: Path
    venv: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python"


def run(command: list[str], env: dict[str, str] | None = None, timeout: float = 900) -> str:
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def build_and_install(where: Path) -> InstalledWheel:
    """Build the wheel into `where`/dist and install it with JupyterLab into `where`/venv."""
    assert BUILT_FRONTEND.exists(), "the frontend is not built: run `make setup` first"
    out = where / "dist"
    run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)])
    [wheel] = out.glob("jupyter_gitsync-*.whl")
    venv = where / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    run([*pip, "--upgrade", "pip"])
    run([*pip, str(wheel), "jupyterlab>=4,<5"])  # as a Binder requirements.txt would
    return InstalledWheel(wheel, venv)
