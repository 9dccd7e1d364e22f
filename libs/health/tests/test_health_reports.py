"""Readiness reports: information in the readiness body that never decides readiness."""

from __future__ import annotations

import pytest
from smoltbot_health import Health


async def test_a_report_is_shown_but_never_makes_the_service_unready() -> None:
    health = Health("svc")
    state = {"licence": "invalid"}
    health.add_report("licence", lambda: {"state": state["licence"]})
    health.mark_started()
    result = await health.ready()
    assert result.status_code == 200
    assert result.body == {"status": "ok", "checks": {}, "licence": {"state": "invalid"}}
    state["licence"] = "valid"  # read at every probe, not once
    assert (await health.ready()).body["licence"] == {"state": "valid"}


async def test_a_report_rides_along_a_failing_check_and_not_while_starting() -> None:
    health = Health("svc")
    health.add_report("licence", lambda: {"state": "grace"})

    async def down() -> None:
        raise ConnectionError("refused")

    health.add_check("db", down)
    assert (await health.ready()).body == {"status": "starting"}
    health.mark_started()
    result = await health.ready()
    assert result.status_code == 503
    assert result.body["licence"] == {"state": "grace"}


def test_a_report_cannot_hide_the_status_or_the_checks() -> None:
    health = Health("svc")
    with pytest.raises(ValueError, match="status"):
        health.add_report("status", dict)
    with pytest.raises(ValueError, match="checks"):
        health.add_report("checks", dict)
