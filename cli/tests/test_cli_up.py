"""``smoltbot up``: bad configuration stops everything at once; crashes restart with backoff."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time

import pytest
from smoltbot_cli import supervisor
from smoltbot_cli.supervisor import SERVICES, Child, Supervisor
from smoltbot_testing.net import free_port
from smoltbot_testing.procs import run_entrypoint

BAD_KEY = "not-base64"


def _env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none",
        "SMOLTBOT_ADMIN_TOKEN": "x" * 16,
        **extra,
    }


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_exits_2_on_a_malformed_event_key(service: str) -> None:
    result = run_entrypoint(service, _env(SMOLTBOT_EVENT_KEY=BAD_KEY))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"smoltbot-{service}: invalid configuration: SMOLTBOT_EVENT_KEY (")
    assert BAD_KEY not in lines[0]


def test_up_stops_at_once_with_code_2_instead_of_restarting() -> None:
    env = _env(
        SMOLTBOT_EVENT_KEY=BAD_KEY,
        SMOLTBOT_OBSERVER_PORT=str(free_port()),
        SMOLTBOT_OBSERVER_HOST="127.0.0.1",
    )
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "smoltbot_cli", "up", "--only", "observer"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert time.monotonic() - started < 20
    assert result.stderr.count("SMOLTBOT_EVENT_KEY") == 1  # started once, never restarted
    assert "smoltbot up: observer exited 2 (invalid configuration)" in result.stderr
    assert "restarting" not in result.stdout
    assert BAD_KEY not in result.stderr


async def _restart_delays(monkeypatch: pytest.MonkeyPatch, restarts: int) -> list[float]:
    """Delays the supervisor waits between restarts of a child that always crashes at once."""
    delays: list[float] = []

    async def record(seconds: float, stop: asyncio.Event | None) -> bool:
        delays.append(seconds)
        if len(delays) == restarts:
            sup.request_stop()
        return False

    monkeypatch.setattr(supervisor, "sleep_or_stop", record)
    false = shutil.which("false")
    assert false is not None
    sup = Supervisor([Child("crasher", [false], dict(os.environ))])
    assert await sup.run() == 0
    return delays


async def test_crash_loop_backs_off_from_half_a_second_to_ten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    delays = await _restart_delays(monkeypatch, 7)
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


async def test_a_child_that_ran_long_enough_restarts_from_the_first_delay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(supervisor, "STABLE_AFTER_S", -1.0)
    delays = await _restart_delays(monkeypatch, 3)
    assert delays == [0.5, 0.5, 0.5]
