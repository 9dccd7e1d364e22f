"""``/v1/agents/{id}/reverify[/aip]``: stored traces against the current card (AAP), stored
checkpoint concerns through the current gate (AIP), bounded, stored and readable again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec
import psycopg
import pytest
from smoltbot_contracts import APTrace, TraceAction, TraceContext, TraceDecision, ids

# Must equal conftest.TOKEN (test modules cannot import conftest under this pytest setup).
ADMIN = {"Authorization": "Bearer test-admin-token-0123456789abcdef"}
AGENT = "smolt-feed0001"


@pytest.fixture(autouse=True)
def _empty(db: psycopg.Connection[Any]) -> None:
    db.execute("TRUNCATE reverify_runs, api_keys")


def stored_trace(
    rows: Any, trace_id: str, action: str, at_offset_s: int, *, verified: bool
) -> None:
    """A trace row whose trace_json is a real AP-Trace (what the persister stores)."""
    ts = rows.base + timedelta(seconds=at_offset_s)
    rows.trace(
        AGENT,
        trace_id,
        ts,
        verification={"verified": verified, "violations": [] if verified else [{"type": "x"}]},
    )
    trace = APTrace(
        trace_id=trace_id,
        agent_id=AGENT,
        card_id=ids.card_id(AGENT),
        timestamp=ts,
        action=TraceAction(name=action),
        decision=TraceDecision(
            alternatives_considered=[], selected="a", selection_reasoning="because"
        ),
        context=TraceContext(session_id="sess-1"),
    )
    rows.conn.execute(
        "UPDATE traces SET trace_json = %s WHERE trace_id = %s",
        [msgspec.json.encode(trace).decode(), trace_id],
    )


async def test_aap_reverify_against_the_current_card(client: Any, rows: Any) -> None:
    rows.agent(AGENT)
    # Passes the default card (bounds "inference") now; recorded as failing.
    stored_trace(rows, "tr-1", "inference", 1, verified=False)
    # Not in the envelope: fails now; recorded as passing.
    stored_trace(rows, "tr-2", "wire_money", 2, verified=True)
    rows.trace(AGENT, "tr-3", rows.base, verification={"verified": False})  # not an AP-Trace

    response = await client.post(f"/v1/agents/{AGENT}/reverify", headers=ADMIN)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["agent_id"] == AGENT
    assert body["card_id"] == ids.card_id(AGENT)
    assert body["total_traces_in_batch"] == 3
    assert body["limit"] == 40
    assert body["offset"] == 0
    assert body["reverified"] == 2
    by_id = {r["trace_id"]: r for r in body["results"]}
    assert by_id["tr-1"]["verified"] is True
    assert by_id["tr-1"]["previous_verified"] is False
    assert by_id["tr-2"]["verified"] is False
    assert by_id["tr-2"]["violations"]
    assert body["now_clean"] == 1
    assert body["newly_violating"] == 1
    assert body["still_violating"] == 0
    assert [e["id"] for e in body["errors"]] == ["tr-3"]

    again = await client.get(f"/v1/agents/{AGENT}/reverify/{body['run_id']}", headers=ADMIN)
    assert again.status_code == 200, again.text
    run = again.json()
    assert run["kind"] == "aap"
    assert run["aip"] is None
    assert run["aap"] == body

    page = await client.post(f"/v1/agents/{AGENT}/reverify?limit=1&offset=1", headers=ADMIN)
    assert [r["trace_id"] for r in page.json()["results"]] == ["tr-1"]


async def test_aip_regates_non_clear_checkpoints(
    client: Any, rows: Any, db: psycopg.Connection[Any]
) -> None:
    rows.agent(AGENT)
    rows.checkpoint(AGENT, "ic-clear", rows.base, verdict="clear")
    # Stored as a boundary violation; the gate says review_needed for a high "x" concern.
    rows.checkpoint(
        AGENT, "ic-high", rows.base + timedelta(seconds=1), verdict="boundary_violation"
    )
    rows.checkpoint(AGENT, "ic-low", rows.base + timedelta(seconds=2), verdict="review_needed")
    db.execute(
        "UPDATE integrity_checkpoints SET concerns = %s WHERE checkpoint_id = 'ic-low'",
        ['[{"category": "x", "severity": "low", "description": "d"}]'],
    )
    rows.checkpoint(AGENT, "ic-bad", rows.base + timedelta(seconds=3), verdict="review_needed")
    db.execute(
        "UPDATE integrity_checkpoints SET concerns = '[{\"nope\": 1}]'"
        " WHERE checkpoint_id = 'ic-bad'"
    )

    response = await client.post(f"/v1/agents/{AGENT}/reverify/aip", headers=ADMIN)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total_in_batch"] == 3  # the clear one is not re-gated
    assert body["limit"] == 20
    assert body["re_evaluated"] == 2
    assert body["resolved_to_clear"] == 1
    assert body["kept_non_clear"] == 1
    by_id = {r["checkpoint_id"]: r for r in body["results"]}
    assert by_id["ic-low"] == {
        "checkpoint_id": "ic-low",
        "previous_verdict": "review_needed",
        "verdict": "clear",
        "changed": True,
    }
    assert by_id["ic-high"]["verdict"] == "review_needed"
    assert [e["id"] for e in body["errors"]] == ["ic-bad"]
    # Stored checkpoints are not changed.
    (verdict,) = db.execute(
        "SELECT verdict FROM integrity_checkpoints WHERE checkpoint_id = 'ic-low'"
    ).fetchone() or (None,)
    assert verdict == "review_needed"

    run = (await client.get(f"/v1/agents/{AGENT}/reverify/{body['run_id']}", headers=ADMIN)).json()
    assert run["kind"] == "aip"
    assert run["aip"] == body


async def test_404_and_bounds(client: Any, rows: Any) -> None:
    for path in ["/v1/agents/smolt-none/reverify", "/v1/agents/smolt-none/reverify/aip"]:
        response = await client.post(path, headers=ADMIN)
        assert response.status_code == 404, response.text
        assert response.json()["type"] == "not_found"
    rows.agent(AGENT)
    missing = await client.get(f"/v1/agents/{AGENT}/reverify/rv-{'0' * 32}", headers=ADMIN)
    assert missing.status_code == 404
    for path in [
        f"/v1/agents/{AGENT}/reverify?limit=41",
        f"/v1/agents/{AGENT}/reverify/aip?limit=21",
    ]:
        response = await client.post(path, headers=ADMIN)
        assert response.status_code == 400, response.text
        assert response.json()["type"] == "invalid_request_error"
    empty = await client.post(f"/v1/agents/{AGENT}/reverify", headers=ADMIN)
    assert empty.json()["total_traces_in_batch"] == 0


async def test_scopes(client: Any, rows: Any) -> None:
    rows.agent(AGENT)
    keys = {}
    for scope in ("read", "write"):
        made = await client.post("/v1/api-keys", json={"scope": scope}, headers=ADMIN)
        keys[scope] = {"Authorization": f"Bearer {made.json()['key']}"}
    for path in [f"/v1/agents/{AGENT}/reverify", f"/v1/agents/{AGENT}/reverify/aip"]:
        denied = await client.post(path, headers=keys["read"])
        assert denied.status_code == 403
        assert denied.json()["type"] == "permission_error"
        allowed = await client.post(path, headers=keys["write"])
        assert allowed.status_code == 200, allowed.text
    run_id = allowed.json()["run_id"]
    readable = await client.get(f"/v1/agents/{AGENT}/reverify/{run_id}", headers=keys["read"])
    assert readable.status_code == 200
