"""Probe semantics: startup, readiness from checks and draining, liveness from loop beats."""

from __future__ import annotations

import asyncio
import time

from smoltbot_health import Health


async def test_startup_and_ready_follow_checks_and_draining() -> None:
    health = Health("svc", check_timeout_s=0.2)
    state = {"up": True}

    async def dependency() -> None:
        if not state["up"]:
            raise ConnectionError("refused")

    async def hangs() -> None:
        await asyncio.sleep(10)

    health.add_check("db", dependency)
    assert health.startup().status_code == 503
    assert (await health.ready()).status_code == 503  # not started yet
    health.mark_started()
    assert health.startup().status_code == 200
    assert (await health.ready()).status_code == 200
    state["up"] = False
    result = await health.ready()
    assert result.status_code == 503
    assert result.body["checks"]["db"]["error"] == "ConnectionError: refused"
    state["up"] = True
    health.add_check("slow", hangs)
    assert (await health.ready()).body["checks"]["slow"]["ok"] is False  # timed out, not hung
    health = Health("svc")
    health.mark_started()
    health.mark_draining()
    assert (await health.ready()).body == {"status": "draining"}


def test_liveness_fails_when_a_loop_stops_beating() -> None:
    health = Health("svc")
    health.register_loop("consume", stuck_after_s=0.05)
    assert health.live().status_code == 200
    time.sleep(0.08)
    result = health.live()
    assert result.status_code == 503
    assert "consume" in result.body["loops"]
    health.beat("consume")
    assert health.live().status_code == 200
