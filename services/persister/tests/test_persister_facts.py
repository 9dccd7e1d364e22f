"""The verifier's facts on verdict.v1 (drift alerts, containment) become rows once, however
often the verdict comes."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest
from smoltbot_bus import Delivery
from smoltbot_contracts import Containment, DriftAlert, ids
from smoltbot_persister.handlers import Persister

from services.persister.tests.persister_factories import T0, meta, verdict


def facts_verdict(exchange_id: str | None = None):
    m = meta(exchange_id=exchange_id)
    v = verdict(m)
    start = ids.checkpoint_id(m.exchange_id)
    alert = DriftAlert(
        alert_id=ids.drift_alert_id("aip", m.agent_id, start),
        source="aip",
        agent_id=m.agent_id,
        card_id="ac-1",
        session_id=m.session_id,
        alert_type="aip:value_erosion",
        severity="high",
        description="3 consecutive integrity concerns detected.",
        streak_start=start,
        streak_ids=[start],
        detected_at=T0,
        data={"integrity_similarity": 0.0},
    )
    containment = Containment(
        containment_id=ids.containment_id(m.agent_id, start),
        agent_id=m.agent_id,
        reason="Auto-contained: 5 consecutive boundary violations",
        checkpoint_id=start,
        streak_start=start,
        consecutive_violations=5,
        threshold=5,
        decided_at=T0 + timedelta(seconds=1),
    )
    return msgspec.structs.replace(v, facts=[alert, containment]), alert, containment


def d(event, n: int = 1) -> Delivery:
    return Delivery(stream="verdicts", entry_id=f"1-{n}", event=event)


async def rows(pool, sql: str):
    async with pool.connection() as conn:
        cur = await conn.execute(sql)
        return await cur.fetchall()


@pytest.mark.parametrize("copy_threshold", [1, 10_000], ids=["copy", "executemany"])
async def test_facts_are_written_once(pool, redis, prefix, copy_threshold):
    p = Persister(pool, redis, prefix, copy_threshold=copy_threshold)
    v, alert, containment = facts_verdict()
    await p.handle([d(v, 1), d(v, 2)])
    await p.handle([d(v, 3)])
    drift = await rows(
        pool,
        "SELECT id, source, agent_id, alert_type, severity, streak_ids, exchange_id::text,"
        " detected_at, drift_data FROM drift_alerts",
    )
    assert drift == [
        (
            alert.alert_id,
            "aip",
            alert.agent_id,
            "aip:value_erosion",
            "high",
            [alert.streak_start],
            v.meta.exchange_id,
            T0,
            {"integrity_similarity": 0.0},
        )
    ]
    log = await rows(
        pool,
        "SELECT id, agent_id, action, actor, new_status, checkpoint_id, consecutive_violations,"
        " threshold, decided_at FROM agent_containment_log",
    )
    assert log == [
        (
            containment.containment_id,
            containment.agent_id,
            "auto_pause",
            "system",
            "paused",
            containment.checkpoint_id,
            5,
            5,
            T0 + timedelta(seconds=1),
        )
    ]


async def test_verdicts_without_facts_write_no_fact_rows(pool, redis, prefix):
    p = Persister(pool, redis, prefix)
    await p.handle([d(verdict(meta()))])
    assert await rows(pool, "SELECT id FROM drift_alerts") == []
    assert await rows(pool, "SELECT id FROM agent_containment_log") == []
