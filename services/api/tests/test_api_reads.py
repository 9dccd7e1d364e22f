"""The owner's read endpoints (docs/api.md, "Reading data") against a real, migrated PostgreSQL:
every filter, order and total, the integrity scores, the timeline, usage, and their errors."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import msgspec
import pytest

AGENT = "smolt-aaaa1111"
OTHER = "smolt-bbbb2222"
J = msgspec.json.encode


def drift_alert(db: Any, agent_id: str, alert_id: str, at: Any, **kw: Any) -> None:
    db.execute(
        "INSERT INTO drift_alerts (id, source, agent_id, card_id, session_id, alert_type,"
        " severity, description, streak_start, streak_ids, exchange_id, detected_at, drift_data)"
        " VALUES (%s, %s, %s, 'ac-1', %s, %s, %s, %s, 'ic-0', %s, %s, %s, %s)",
        [
            alert_id,
            kw.get("source", "aip"),
            agent_id,
            kw.get("session_id", "sess-1"),
            kw.get("alert_type", "aip:informative"),
            kw.get("severity", "medium"),
            kw.get("description", "3 consecutive integrity concerns"),
            J(["ic-0", "ic-1", "ic-2"]).decode(),
            uuid.uuid4(),
            at,
            J({"direction": "unknown"}).decode(),
        ],
    )


def containment(db: Any, agent_id: str, row_id: str, at: Any) -> None:
    db.execute(
        "INSERT INTO agent_containment_log (id, agent_id, action, actor, reason, new_status,"
        " checkpoint_id, decided_at) VALUES (%s, %s, 'auto_pause', 'system',"
        " '3 consecutive boundary violations', 'paused', 'ic-2', %s)",
        [row_id, agent_id, at],
    )


def synthetic(db: Any, checkpoint_id: str) -> None:
    db.execute(
        "UPDATE integrity_checkpoints SET synthetic = true, synthetic_reason = 'no_thinking_block'"
        " WHERE checkpoint_id = %s",
        [checkpoint_id],
    )


async def get(client: Any, auth: dict[str, str], path: str) -> Any:
    response = await client.get(path, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


# ---------------------------------------------------------------------------------------------
# Traces: every agent, and the new filters of an agent's list


async def _seed_traces(rows: Any) -> None:
    rows.agent(AGENT)
    rows.agent(OTHER)
    for i in range(4):
        session = "sess-a" if i < 2 else "sess-b"
        rows.trace(AGENT, f"tr-a{i}", rows.base + timedelta(minutes=i), session_id=session)
    rows.trace(OTHER, "tr-b0", rows.base + timedelta(seconds=90), session_id="sess-a")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["tr-a3", "tr-a2", "tr-b0", "tr-a1", "tr-a0"]),
        (f"agent_id={AGENT}", ["tr-a3", "tr-a2", "tr-a1", "tr-a0"]),
        ("session_id=sess-a", ["tr-b0", "tr-a1", "tr-a0"]),
        ("since=2026-11-01T12:01:00Z", ["tr-a3", "tr-a2", "tr-b0", "tr-a1"]),
        ("until=2026-11-01T12:01:00Z", ["tr-a0"]),
        ("since=2026-11-01T12:01:00Z&until=2026-11-01T12:02:00Z", ["tr-b0", "tr-a1"]),
        ("since=2026-11-01T13:01:00%2B01:00&until=2026-11-01T12:02:00", ["tr-b0", "tr-a1"]),
        (f"agent_id={OTHER}&session_id=sess-b", []),
        ("agent_id=smolt-nope0000", []),  # a filter, not a lookup: empty, not 404
        ("limit=2&offset=1", ["tr-a2", "tr-b0"]),
    ],
)
async def test_all_traces_filters(
    client: Any, rows: Any, auth: dict[str, str], query: str, expected: list[str]
):
    await _seed_traces(rows)
    body = await get(client, auth, f"/v1/traces?{query}")
    assert [t["trace_id"] for t in body["traces"]] == expected
    if "limit" not in query:
        assert body["total"] == len(expected)
    else:
        assert (body["total"], body["limit"], body["offset"]) == (5, 2, 1)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("session_id=sess-b", ["tr-a3", "tr-a2"]),
        ("since=2026-11-01T12:02:00Z", ["tr-a3", "tr-a2"]),
        ("until=2026-11-01T12:02:00Z&session_id=sess-a", ["tr-a1", "tr-a0"]),
        ("since=2026-11-01T12:01:00Z&until=2026-11-01T12:03:00Z", ["tr-a2", "tr-a1"]),
    ],
)
async def test_agent_trace_filters(
    client: Any, rows: Any, auth: dict[str, str], query: str, expected: list[str]
):
    await _seed_traces(rows)
    body = await get(client, auth, f"/v1/agents/{AGENT}/traces?{query}")
    assert [t["trace_id"] for t in body["traces"]] == expected
    assert body["total"] == len(expected)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("since=2026-11-01T12:00:02Z", ["ic-4", "ic-3", "ic-2"]),
        ("until=2026-11-01T12:00:02Z&verdict=clear", ["ic-0"]),
        (
            "since=2026-11-01T12:00:01Z&until=2026-11-01T12:00:04Z&session_id=sess-a",
            ["ic-2", "ic-1"],
        ),
    ],
)
async def test_checkpoint_time_filters(
    client: Any, rows: Any, auth: dict[str, str], query: str, expected: list[str]
):
    rows.agent(AGENT)
    for i, verdict in enumerate(["clear", "review_needed", "boundary_violation", "clear", "clear"]):
        session = "sess-a" if i < 3 else "sess-b"
        rows.checkpoint(
            AGENT, f"ic-{i}", rows.base + timedelta(seconds=i), verdict=verdict, session_id=session
        )
    body = await get(client, auth, f"/v1/agents/{AGENT}/checkpoints?{query}")
    assert [c["checkpoint_id"] for c in body["checkpoints"]] == expected
    assert body["total"] == len(expected)


# ---------------------------------------------------------------------------------------------
# Drift alerts


async def test_drift_alerts_newest_first_with_filters(
    client: Any, db: Any, rows: Any, auth: dict[str, str]
):
    rows.agent(AGENT)
    drift_alert(db, AGENT, "ida-1", rows.base, source="aap", alert_type="value_drift")
    drift_alert(db, AGENT, "ida-2", rows.base + timedelta(minutes=1), severity="high")
    drift_alert(db, AGENT, "ida-3", rows.base + timedelta(minutes=2), session_id="sess-2")
    drift_alert(db, OTHER, "ida-x", rows.base + timedelta(minutes=3))

    body = await get(client, auth, f"/v1/agents/{AGENT}/drift-alerts")
    assert [a["id"] for a in body["alerts"]] == ["ida-3", "ida-2", "ida-1"]
    assert (body["total"], body["limit"], body["offset"]) == (3, 50, 0)
    alert = body["alerts"][1]
    assert alert["source"] == "aip"
    assert alert["severity"] == "high"
    assert alert["streak_ids"] == ["ic-0", "ic-1", "ic-2"]
    assert alert["drift_data"] == {"direction": "unknown"}
    assert alert["detected_at"] == "2026-11-01T12:01:00Z"
    for key in ("card_id", "session_id", "alert_type", "description", "exchange_id"):
        assert key in alert

    cases = {
        "source=aap": ["ida-1"],
        "source=aip&session_id=sess-1": ["ida-2"],
        "since=2026-11-01T12:01:00Z": ["ida-3", "ida-2"],
        "until=2026-11-01T12:01:00Z": ["ida-1"],
        "limit=1&offset=1": ["ida-2"],
    }
    for query, expected in cases.items():
        page = await get(client, auth, f"/v1/agents/{AGENT}/drift-alerts?{query}")
        assert [a["id"] for a in page["alerts"]] == expected, query


async def test_drift_alerts_of_a_known_agent_without_any(
    client: Any, rows: Any, auth: dict[str, str]
):
    rows.agent(AGENT)
    body = await get(client, auth, f"/v1/agents/{AGENT}/drift-alerts")
    assert body == {"alerts": [], "total": 0, "limit": 50, "offset": 0}


# ---------------------------------------------------------------------------------------------
# Integrity


async def test_integrity_scores(client: Any, db: Any, rows: Any, auth: dict[str, str]):
    rows.agent(AGENT)
    rows.agent(OTHER)
    # AAP: 4 traces, 3 checked, 2 of them verified.
    rows.trace(AGENT, "tr-0", rows.base, verification={"verified": True})
    rows.trace(AGENT, "tr-1", rows.base, verification={"verified": True})
    rows.trace(AGENT, "tr-2", rows.base, verification={"verified": False})
    rows.trace(AGENT, "tr-3", rows.base)
    rows.trace(OTHER, "tr-x", rows.base, verification={"verified": False})
    # AIP: 6 checkpoints, 2 synthetic; of the 4 analysed: 2 clear, 1 review, 1 violation.
    verdicts = ["clear", "clear", "review_needed", "boundary_violation", "clear", "clear"]
    for i, verdict in enumerate(verdicts):
        rows.checkpoint(AGENT, f"ic-{i}", rows.base + timedelta(seconds=i), verdict=verdict)
    synthetic(db, "ic-4")
    synthetic(db, "ic-5")
    rows.checkpoint(OTHER, "ic-x", rows.base, verdict="boundary_violation")

    body = await get(client, auth, f"/v1/agents/{AGENT}/integrity")
    assert body == {
        "agent_id": AGENT,
        "aap": {
            "agent_id": AGENT,
            "total_traces": 4,
            "checked_traces": 3,
            "verified_traces": 2,
            "violation_count": 1,
            "integrity_score": pytest.approx(2 / 3),
        },
        "aip": {
            "agent_id": AGENT,
            "total_checks": 6,
            "analyzed_checks": 4,
            "synthetic_checks": 2,
            "clear_count": 2,
            "review_count": 1,
            "violation_count": 1,
            "integrity_ratio": 0.5,
            "coverage": pytest.approx(4 / 6),
            "latest_verdict": "clear",
            "latest_checkpoint_at": "2026-11-01T12:00:05Z",
        },
    }
    # The reference's paths answer with one half each.
    assert await get(client, auth, f"/v1/agents/{AGENT}/integrity/aip") == body["aip"]
    assert await get(client, auth, f"/v1/integrity/{AGENT}") == body["aap"]


async def test_integrity_of_an_agent_without_rows_has_null_ratios(
    client: Any, rows: Any, auth: dict[str, str]
):
    rows.agent(AGENT)
    body = await get(client, auth, f"/v1/agents/{AGENT}/integrity")
    assert body["aap"]["total_traces"] == 0
    assert body["aap"]["integrity_score"] is None
    assert body["aip"]["integrity_ratio"] is None
    assert body["aip"]["coverage"] is None
    assert body["aip"]["latest_verdict"] is None


async def test_integrity_of_rows_whose_agent_row_is_not_persisted_yet(
    client: Any, rows: Any, auth: dict[str, str]
):
    rows.checkpoint(AGENT, "ic-early", rows.base, verdict="review_needed")
    body = await get(client, auth, f"/v1/agents/{AGENT}/integrity")
    assert body["aip"]["review_count"] == 1
    assert body["aip"]["integrity_ratio"] == 0.0


# ---------------------------------------------------------------------------------------------
# Timeline


async def _seed_timeline(db: Any, rows: Any) -> None:
    rows.agent(AGENT)
    rows.trace(AGENT, "tr-1", rows.base, verification={"verified": False})
    rows.checkpoint(AGENT, "ic-1", rows.base + timedelta(seconds=1), verdict="boundary_violation")
    drift_alert(db, AGENT, "ida-1", rows.base + timedelta(seconds=2), severity="high")
    containment(db, AGENT, "acl-1", rows.base + timedelta(seconds=3))
    rows.trace(AGENT, "tr-2", rows.base + timedelta(seconds=4))
    rows.trace(OTHER, "tr-x", rows.base + timedelta(seconds=5))


async def test_timeline_merges_every_kind_newest_first(
    client: Any, db: Any, rows: Any, auth: dict[str, str]
):
    await _seed_timeline(db, rows)
    body = await get(client, auth, f"/v1/agents/{AGENT}/timeline")
    assert body["agent_id"] == AGENT
    assert (body["total"], body["limit"], body["offset"]) == (5, 50, 0)
    assert [(e["kind"], e["id"]) for e in body["events"]] == [
        ("trace", "tr-2"),
        ("containment", "acl-1"),
        ("drift_alert", "ida-1"),
        ("checkpoint", "ic-1"),
        ("trace", "tr-1"),
    ]
    by_id = {e["id"]: e for e in body["events"]}
    assert by_id["tr-2"]["summary"] == "execute act-tr-2 (pending)"
    assert by_id["tr-1"]["summary"] == "execute act-tr-1 (violation)"
    assert by_id["ic-1"]["summary"] == "boundary_violation, 1 concern(s)"
    assert by_id["ic-1"]["data"]["verdict"] == "boundary_violation"
    assert by_id["ida-1"]["summary"].startswith("aip drift (high): ")
    assert by_id["acl-1"]["summary"] == (
        "auto_pause -> paused by system: 3 consecutive boundary violations"
    )
    assert by_id["acl-1"]["session_id"] is None
    assert by_id["tr-1"]["timestamp"] == "2026-11-01T12:00:00Z"


@pytest.mark.parametrize(
    ("query", "expected", "total"),
    [
        ("limit=2", ["tr-2", "acl-1"], 5),
        ("limit=2&offset=2", ["ida-1", "ic-1"], 5),
        ("limit=2&offset=4", ["tr-1"], 5),
        ("kind=trace", ["tr-2", "tr-1"], 2),
        ("kind=checkpoint&kind=drift_alert", ["ida-1", "ic-1"], 2),
        ("since=2026-11-01T12:00:02Z", ["tr-2", "acl-1", "ida-1"], 3),
        ("until=2026-11-01T12:00:02Z", ["ic-1", "tr-1"], 2),
        ("since=2026-11-01T12:00:01Z&until=2026-11-01T12:00:04Z&kind=containment", ["acl-1"], 1),
    ],
)
async def test_timeline_pages_and_filters(
    client: Any,
    db: Any,
    rows: Any,
    auth: dict[str, str],
    query: str,
    expected: list[str],
    total: int,
):
    await _seed_timeline(db, rows)
    body = await get(client, auth, f"/v1/agents/{AGENT}/timeline?{query}")
    assert [e["id"] for e in body["events"]] == expected
    assert body["total"] == total


async def test_timeline_pages_cover_every_event_once(client: Any, rows: Any, auth: dict[str, str]):
    rows.agent(AGENT)
    for i in range(7):  # equal times across kinds: the (kind, id) tie-breaker keeps pages stable
        rows.trace(AGENT, f"tr-{i}", rows.base)
        rows.checkpoint(AGENT, f"ic-{i}", rows.base)
    seen: list[str] = []
    for offset in range(0, 14, 5):
        body = await get(client, auth, f"/v1/agents/{AGENT}/timeline?limit=5&offset={offset}")
        seen += [e["id"] for e in body["events"]]
    assert len(seen) == 14
    assert len(set(seen)) == 14


# ---------------------------------------------------------------------------------------------
# Usage


async def test_usage_per_model(client: Any, db: Any, rows: Any, auth: dict[str, str]):
    rows.agent(AGENT)
    for i in range(3):
        rows.exchange(AGENT, rows.base + timedelta(minutes=i), input_tokens=10, output_tokens=5)
    other_model = rows.exchange(AGENT, rows.base + timedelta(minutes=5), input_tokens=None)
    db.execute(
        "UPDATE exchanges SET provider = 'openai', model = 'gpt-x', status = 429"
        " WHERE exchange_id = %s",
        [other_model],
    )
    rows.exchange(OTHER, rows.base, input_tokens=1000)

    body = await get(client, auth, f"/v1/agents/{AGENT}/usage")
    assert body == {
        "agent_id": AGENT,
        "since": None,
        "until": None,
        "exchanges": 4,
        "input_tokens": 30,
        "output_tokens": 35,
        "models": [
            {
                "provider": "anthropic",
                "model": "claude-x",
                "exchanges": 3,
                "input_tokens": 30,
                "output_tokens": 15,
                "errors": 0,
                "first_at": "2026-11-01T12:00:00Z",
                "last_at": "2026-11-01T12:02:00Z",
            },
            {
                "provider": "openai",
                "model": "gpt-x",
                "exchanges": 1,
                "input_tokens": 0,
                "output_tokens": 20,
                "errors": 1,
                "first_at": "2026-11-01T12:05:00Z",
                "last_at": "2026-11-01T12:05:00Z",
            },
        ],
    }
    ranged = await get(
        client,
        auth,
        f"/v1/agents/{AGENT}/usage?since=2026-11-01T12:01:00Z&until=2026-11-01T12:05:00Z",
    )
    assert ranged["exchanges"] == 2
    assert ranged["since"] == "2026-11-01T12:01:00Z"
    assert [m["model"] for m in ranged["models"]] == ["claude-x"]


async def test_usage_of_a_known_agent_without_calls(client: Any, rows: Any, auth: dict[str, str]):
    rows.agent(AGENT)
    body = await get(client, auth, f"/v1/agents/{AGENT}/usage")
    assert (body["exchanges"], body["models"]) == (0, [])


# ---------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    "suffix", ["drift-alerts", "integrity", "integrity/aip", "timeline", "usage"]
)
async def test_unknown_agent_is_404(client: Any, db: Any, auth: dict[str, str], suffix: str):
    response = await client.get(f"/v1/agents/smolt-nope0000/{suffix}", headers=auth)
    assert response.status_code == 404
    assert response.json() == {"error": "agent 'smolt-nope0000' not found", "type": "not_found"}


async def test_unknown_agent_aap_integrity_is_404(client: Any, db: Any, auth: dict[str, str]):
    response = await client.get("/v1/integrity/smolt-nope0000", headers=auth)
    assert response.status_code == 404
    assert response.json()["type"] == "not_found"


@pytest.mark.parametrize(
    "path",
    ["/v1/agents/x/nothing", "/v1/nothing", "/v1/traces/a/b", "/v1/agents/x/timeline/extra"],
)
async def test_unknown_routes_are_json_404(client: Any, auth: dict[str, str], path: str):
    response = await client.get(path, headers=auth)
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found", "type": "not_found"}
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        (f"/v1/agents/{AGENT}/traces?since=yesterday", "since must be an ISO 8601 date-time"),
        ("/v1/traces?until=2026-13-01", "until must be an ISO 8601 date-time"),
        (f"/v1/agents/{AGENT}/checkpoints?since=1.5.2026", "since must be an ISO 8601 date-time"),
        (f"/v1/agents/{AGENT}/drift-alerts?source=xyz", "source must be one of aap, aip"),
        (f"/v1/agents/{AGENT}/timeline?kind=nudge", "kind must be one of trace, checkpoint"),
        (f"/v1/agents/{AGENT}/timeline?limit=0", "limit must be an integer from 1 to 1000"),
        (f"/v1/agents/{AGENT}/usage?until=soon", "until must be an ISO 8601 date-time"),
        ("/v1/traces?offset=-3", "offset must be an integer >= 0"),
        (
            f"/v1/agents/{AGENT}/timeline?since=2026-11-02T00:00:00Z&until=2026-11-01T00:00:00Z",
            "since must be before until",
        ),
        (
            "/v1/traces?since=2026-11-01T00:00:00Z&until=2026-11-01T00:00:00Z",
            "since must be before",
        ),
    ],
)
async def test_bad_filter_values_are_400_naming_the_field(
    client: Any, rows: Any, auth: dict[str, str], path: str, fragment: str
):
    rows.agent(AGENT)
    response = await client.get(path, headers=auth)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["type"] == "invalid_request_error"
    assert fragment in body["error"]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/traces",
        f"/v1/agents/{AGENT}/drift-alerts",
        f"/v1/agents/{AGENT}/integrity",
        f"/v1/agents/{AGENT}/timeline",
        f"/v1/agents/{AGENT}/usage",
    ],
)
async def test_new_reads_need_the_token(client: Any, rows: Any, path: str):
    rows.agent(AGENT)
    response = await client.get(path)
    assert response.status_code == 401
    assert response.json()["type"] == "authentication_error"
