"""``python -m smoltbot_api`` as a real OS process: bad configuration exits 2, good one serves."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from smoltbot_testing.net import free_port
from smoltbot_testing.procs import run_entrypoint

TOKEN = "test-admin-token-0123456789abcdef"


def _env(**overrides: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "SMOLTBOT_ADMIN_TOKEN"}}
    for key, value in overrides.items():
        if value is not None:
            env[key] = value
    return env


@pytest.mark.parametrize(
    ("token", "reason"),
    [(None, "required but not set"), ("too-short", "must be at least 16 characters")],
    ids=["missing", "short"],
)
def test_bad_admin_token_exits_2_with_one_line(token: str | None, reason: str) -> None:
    env = _env(DATABASE_URL="postgresql://postgres@127.0.0.1:1/none", SMOLTBOT_ADMIN_TOKEN=token)
    proc = run_entrypoint("api", env)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "SMOLTBOT_ADMIN_TOKEN" in lines[0]
    assert reason in lines[0]
    assert "too-short" not in lines[0]  # secrets are never echoed


def test_every_bad_variable_named() -> None:
    env = _env(DATABASE_URL="mysql://x", SMOLTBOT_API_PORT="http")
    proc = run_entrypoint("api", env)
    assert proc.returncode == 2
    line = proc.stderr.strip()
    for name in ("DATABASE_URL", "SMOLTBOT_ADMIN_TOKEN", "SMOLTBOT_API_PORT"):
        assert name in line


def test_serves_over_granian_and_stops_on_sigterm(database_url: str, rows: Any) -> None:
    rows.agent("smolt-proc0001", name="proc")
    port = free_port()
    env = _env(
        DATABASE_URL=database_url,
        SMOLTBOT_ADMIN_TOKEN=TOKEN,
        SMOLTBOT_API_PORT=str(port),
        SMOLTBOT_API_HOST="127.0.0.1",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "smoltbot_api"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        started = False
        with httpx.Client(base_url=base, timeout=2.0) as http:
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    if http.get("/health/startup").status_code == 200:
                        started = True
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            assert started, f"api did not start (exit={proc.poll()})"

            assert http.get("/health/ready").status_code == 200
            assert http.get("/metrics").status_code == 200
            unauthorized = http.get("/v1/agents/smolt-proc0001")
            assert unauthorized.status_code == 401
            ok = http.get("/v1/agents/smolt-proc0001", headers={"Authorization": f"Bearer {TOKEN}"})
            assert ok.status_code == 200
            assert ok.json()["name"] == "proc"
            assert ok.headers["content-type"].startswith("application/json")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            stdout, stderr = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
    assert proc.returncode == 0, stderr
    # Logs are JSON lines from the api (and granian, routed through the same handler).
    records = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    assert any(r.get("message") == "database connected" for r in records), stdout
    assert all(r["service"] == "smoltbot-api" for r in records)
