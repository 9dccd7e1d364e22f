"""Each image installs one service's package alone: a dependency the service imports but its
pyproject.toml does not declare breaks the image and nothing else (the workspace venv has every
package). Here each package is installed alone into a fresh venv, exactly as deploy/Containerfile
does (`uv sync --frozen --no-dev --no-editable --package ...`, from uv's cache), and its
entrypoint is imported there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("gateway", "observer", "verifier", "persister", "api", "notifier")
# What the image runs: `python -m smoltbot_<service>`; the cli image runs `smoltbot`.
ENTRYPOINTS = {**{s: f"smoltbot_{s}.__main__" for s in SERVICES}, "cli": "smoltbot_cli.main"}
# uv reuses a wheel it built from a workspace member until that member's pyproject.toml changes:
# rebuild every member, so the venv holds today's sources.
MEMBERS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["sources"]
REFRESH = [arg for member in MEMBERS for arg in ("--refresh-package", member)]


def _clean_env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    return {**env, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON_DOWNLOADS": "never"}


@pytest.mark.parametrize("package", list(ENTRYPOINTS))
def test_package_alone_imports_its_entrypoint(package: str, tmp_path: Path) -> None:
    uv = shutil.which("uv")
    assert uv, "uv is not on PATH"
    venv = tmp_path / "venv"
    sync = subprocess.run(
        [
            uv,
            "sync",
            "--frozen",
            "--no-dev",
            "--no-editable",
            "--package",
            f"smoltbot-{package}",
            "--python",
            sys.executable,
            "--quiet",
            *REFRESH,
        ],
        cwd=ROOT,
        env=_clean_env(venv),
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert sync.returncode == 0, sync.stderr
    others = [f"smoltbot_{s}" for s in SERVICES if s != package and package != "cli"]
    probe = (
        f"import importlib.util, {ENTRYPOINTS[package]}\n"
        f"present = [m for m in {others!r} if importlib.util.find_spec(m)]\n"
        "assert not present, f'other services installed: {present}'\n"
    )
    # -I: nothing from the working directory or PYTHONPATH, only what the venv holds.
    run = subprocess.run(
        [str(venv / "bin" / "python"), "-I", "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
