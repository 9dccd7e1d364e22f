"""verdict.v1 `facts`: additive (old verdicts decode with none), tagged by `kind`, derived ids."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from smoltbot_contracts import AgentConfig, Containment, DriftAlert, ExchangeMeta, VerdictV1, ids
from smoltbot_contracts.codec import decode_fields, to_fields

WHEN = datetime(2026, 3, 1, 12, tzinfo=UTC)
META = ExchangeMeta(
    exchange_id="0190a000-0000-7000-8000-000000000001",
    agent_id="smolt-4c806362",
    agent_hash="4c806362b613f749",
    session_id="4c806362b613f749-1",
    provider="anthropic",
    started_at=WHEN,
    completed_at=WHEN,
)


def test_a_verdict_without_facts_from_an_older_producer_decodes() -> None:
    raw = msgspec.msgpack.decode(to_fields(VerdictV1(event_id="e", meta=META))[b"b"])
    del raw["facts"]
    fields = {b"t": b"verdict.v1", b"id": b"e", b"b": msgspec.msgpack.encode(raw)}
    decoded = decode_fields(fields)
    assert isinstance(decoded, VerdictV1)
    assert decoded.facts == []


def test_facts_round_trip_with_their_kind() -> None:
    start = ids.checkpoint_id(META.exchange_id)
    alert = DriftAlert(
        alert_id=ids.drift_alert_id("aip", META.agent_id, start),
        source="aip",
        agent_id=META.agent_id,
        card_id="ac-1",
        alert_type="aip:unknown",
        severity="low",
        description="d",
        streak_start=start,
        detected_at=WHEN,
    )
    containment = Containment(
        containment_id=ids.containment_id(META.agent_id, start),
        agent_id=META.agent_id,
        reason="r",
        checkpoint_id=start,
        streak_start=start,
        consecutive_violations=5,
        threshold=5,
        decided_at=WHEN,
    )
    verdict = VerdictV1(event_id="e", meta=META, facts=[alert, containment])
    fields = to_fields(verdict)
    assert [f["kind"] for f in msgspec.msgpack.decode(fields[b"b"])["facts"]] == [
        "drift_alert",
        "containment",
    ]
    assert decode_fields(fields) == verdict


def test_fact_ids_are_derived_per_source_agent_and_streak() -> None:
    a = ids.drift_alert_id("aip", "smolt-1", "ic-1")
    assert a == ids.drift_alert_id("aip", "smolt-1", "ic-1")
    assert a.startswith("ida-")
    assert ids.drift_alert_id("aap", "smolt-1", "ic-1").startswith("drift-")
    assert a != ids.drift_alert_id("aip", "smolt-1", "ic-2")
    assert a != ids.drift_alert_id("aip", "smolt-2", "ic-1")
    assert ids.containment_id("smolt-1", "ic-1").startswith("ctl-")


def test_auto_containment_threshold_defaults_to_five() -> None:
    assert AgentConfig().auto_containment_threshold == 5
    old = msgspec.msgpack.encode({"enforcement_mode": "nudge", "cfg_version": 3})
    assert msgspec.msgpack.decode(old, type=AgentConfig).auto_containment_threshold == 5
