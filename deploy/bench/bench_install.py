"""First-use installs for `make bench-gateway`, all outside the repo's lock files.

* ``wrk`` and ``nginx-light``: Debian packages (``apt-get install -y``, as root).
* LiteLLM's proxy: ``litellm[proxy]==<pin>`` in its own ``python3 -m venv`` under the cache dir.
* Portkey's gateway: ``npm install @portkey-ai/gateway@<pin>`` into the cache dir, run with the
  machine's ``node``.

Every step is idempotent (a present, matching install is left alone) and never raises: a failure
becomes a ``Tool`` with ``ok=False`` and a one-line reason, so the harness can still run the
other targets. Install output goes to ``<cache>/logs/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

LITELLM_VERSION = "1.108.7"
PORTKEY_VERSION = "1.15.2"
# Portkey's `^1.3.3` range resolves @hono/node-server to the newest 1.x, and from 1.14 on every
# streamed call fails with 500 ("TypeError: immutable" in updateHeaders; Portkey-AI/gateway
# issues 1389 and 1550). 1.13.8 is the newest release with which Portkey streams: pinned via
# npm "overrides".
PORTKEY_NODE_SERVER = "1.13.8"
APT_PACKAGES = {"wrk": "wrk", "nginx": "nginx-light"}  # binary -> Debian package


@dataclass
class Tool:
    name: str
    ok: bool
    version: str = ""
    reason: str = ""  # why it is not available (ok=False)
    path: str = ""  # the executable (or package dir) to run

    def describe(self) -> str:
        return self.version if self.ok else f"not available: {self.reason}"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "smoltbot-bench"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def _run_logged(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``cmd`` with its output appended to ``log``; (exit code, last output line)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=env, check=False, timeout=1800
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, f"{cmd[0]}: {exc}"
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}\n[exit {proc.returncode}]\n")
    return proc.returncode, _last_line(proc.stderr or proc.stdout)


def _first_line(cmd: list[str]) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    out = (proc.stdout or proc.stderr).strip()
    return out.splitlines()[0] if out else ""


def apt_tools(cache: Path, *, install: bool) -> dict[str, Tool]:
    """``wrk`` and ``nginx``, installed with apt-get when missing (and ``install`` is set)."""
    missing = [pkg for binary, pkg in APT_PACKAGES.items() if not shutil.which(binary)]
    reason = ""
    if missing and install:
        if os.geteuid() != 0:
            reason = f"apt-get install {' '.join(missing)} needs root"
        else:
            log = cache / "logs" / "apt.log"
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
            print(f"[install] apt-get install {' '.join(missing)} (log: {log})", flush=True)
            code, last = _run_logged(cmd, log, env)
            if code != 0:  # a stale package list is the usual cause: refresh once, retry
                _run_logged(["apt-get", "update", "-q"], log, env)
                code, last = _run_logged(cmd, log, env)
            if code != 0:
                reason = f"apt-get install failed: {last}"
    elif missing:
        reason = f"not installed ({' '.join(missing)}) and --no-install given"
    tools: dict[str, Tool] = {}
    for binary, pkg in APT_PACKAGES.items():
        path = shutil.which(binary)
        if path is None:
            tools[binary] = Tool(binary, False, reason=reason or f"{pkg} did not install")
            continue
        if binary == "nginx":
            version = _first_line([path, "-v"]).removeprefix("nginx version: ")
        else:
            version = _first_line([path, "-v"]).split(" [")[0]
        tools[binary] = Tool(binary, True, version=version, path=path)
    return tools


def _venv_version(python: Path, dist: str) -> str:
    if not python.exists():
        return ""
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    return _first_line([str(python), "-c", code])


def litellm_tool(cache: Path, version: str, *, install: bool) -> Tool:
    """LiteLLM's proxy in ``<cache>/litellm-<version>/`` (a ``python3 -m venv``)."""
    venv = cache / f"litellm-{version}"
    python, exe = venv / "bin" / "python", venv / "bin" / "litellm"
    if _venv_version(python, "litellm") == version and exe.exists():
        return Tool("litellm", True, version=version, path=str(exe))
    if not install:
        return Tool("litellm", False, reason=f"{venv} missing and --no-install given")
    base = shutil.which("python3")
    if base is None:
        return Tool("litellm", False, reason="no python3 on PATH to create its venv")
    log = cache / "logs" / f"litellm-{version}.log"
    print(f"[install] litellm[proxy]=={version} into {venv} (log: {log})", flush=True)
    code, last = _run_logged([base, "-m", "venv", "--clear", str(venv)], log)
    if code != 0:
        return Tool("litellm", False, reason=f"python3 -m venv failed: {last}")
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    code, last = _run_logged([*pip, f"litellm[proxy]=={version}"], log)
    if code != 0:
        return Tool("litellm", False, reason=f"pip install litellm[proxy]=={version}: {last}")
    if _venv_version(python, "litellm") != version or not exe.exists():
        return Tool("litellm", False, reason=f"litellm {version} not importable after install")
    return Tool("litellm", True, version=version, path=str(exe))


def portkey_tool(cache: Path, version: str, *, install: bool) -> Tool:
    """Portkey's gateway in ``<cache>/portkey-<version>/node_modules`` (npm), run by ``node``."""
    node = shutil.which("node")
    if node is None:
        return Tool("portkey", False, reason="no node on PATH (Debian package nodejs)")
    node_version = _first_line([node, "--version"])
    prefix = cache / f"portkey-{version}"
    modules = prefix / "node_modules"
    server = modules / "@portkey-ai" / "gateway" / "build" / "start-server.js"
    manifest = {
        "private": True,
        "dependencies": {"@portkey-ai/gateway": version},
        "overrides": {"@hono/node-server": PORTKEY_NODE_SERVER},
    }

    def pkg_version(name: str) -> str:
        try:
            return str(json.loads((modules / name / "package.json").read_text())["version"])
        except (OSError, ValueError, KeyError):
            return ""

    def installed() -> bool:
        return (
            pkg_version("@portkey-ai/gateway") == version
            and pkg_version("@hono/node-server") == PORTKEY_NODE_SERVER
            and not (
                modules / "@portkey-ai" / "gateway" / "node_modules" / "@hono" / "node-server"
            ).exists()
            and server.exists()
        )

    if not installed():
        if not install:
            return Tool("portkey", False, reason=f"{prefix} missing and --no-install given")
        npm = shutil.which("npm")
        if npm is None:
            return Tool("portkey", False, reason="no npm on PATH (Debian package npm)")
        prefix.mkdir(parents=True, exist_ok=True)
        (prefix / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
        log = cache / "logs" / f"portkey-{version}.log"
        print(f"[install] @portkey-ai/gateway@{version} into {prefix} (log: {log})", flush=True)
        cmd = [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--omit=dev"]
        code, last = _run_logged(cmd, log)
        if code != 0 or not installed():
            return Tool("portkey", False, reason=f"npm install failed: {last}")
    label = f"{version} (node {node_version}, @hono/node-server {PORTKEY_NODE_SERVER})"
    return Tool("portkey", True, version=label, path=str(server))
