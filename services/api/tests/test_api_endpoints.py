"""The /v1 endpoints against a real, migrated PostgreSQL: auth, shapes, order, totals, errors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from smoltbot_contracts.errors import ERROR_STATUS, ErrorType

# Must equal conftest.TOKEN (test modules cannot import conftest under this pytest setup).
TOKEN = "test-admin-token-0123456789abcdef"
AGENT = "smolt-aaaa1111"
OTHER = "smolt-bbbb2222"


# ---------------------------------------------------------------------------------------------
# Auth


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-wrong-token"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": "Bearer"},
    ],
    ids=["missing", "wrong", "wrong-scheme", "token-prefix", "empty"],
)
@pytest.mark.parametrize(
    "path", ["/v1/agents", f"/v1/agents/{AGENT}", f"/v1/agents/{AGENT}/traces", "/v1/traces/x"]
)
async def test_v1_requires_admin_token(client: Any, rows: Any, headers: dict[str, str], path: str):
    rows.agent(AGENT)
    response = await client.get(path, headers=headers)
    assert response.status_code == 401
    assert response.json() == {
        "error": "missing or invalid bearer token",
        "type": "authentication_error",
    }
    assert response.headers["www-authenticate"] == "Bearer"


async def test_right_token_accepted_and_scheme_case_insensitive(client: Any, rows: Any):
    rows.agent(AGENT)
    for header in (f"Bearer {TOKEN}", f"bearer {TOKEN}"):
        response = await client.get(f"/v1/agents/{AGENT}", headers={"Authorization": header})
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", ["/health/live", "/health/ready", "/health/startup", "/metrics"])
async def test_probes_and_metrics_need_no_auth(client: Any, path: str):
    response = await client.get(path)
    assert response.status_code == 200


# ---------------------------------------------------------------------------------------------
# Agents


async def test_get_agent(client: Any, rows: Any, auth: dict[str, str]):
    rows.agent(AGENT, name="billing-bot", enforcement_mode="nudge", agent_hash="0123456789abcdef")
    body = (await client.get(f"/v1/agents/{AGENT}", headers=auth)).json()
    assert body["id"] == AGENT
    assert body["agent_hash"] == "0123456789abcdef"
    assert body["name"] == "billing-bot"
    assert body["enforcement_mode"] == "nudge"
    assert body["containment_status"] == "active"
    assert body["last_seen_at"] == "2026-11-01T12:00:00Z"
    for key in ("first_seen_at", "created_at", "nudge_strategy", "cfg_version"):
        assert key in body


async def test_unknown_agent_is_404(client: Any, db: Any, auth: dict[str, str]):
    response = await client.get("/v1/agents/smolt-nope0000", headers=auth)
    assert response.status_code == 404
    assert response.json() == {"error": "agent 'smolt-nope0000' not found", "type": "not_found"}


async def test_list_agents_most_recent_first(client: Any, rows: Any, auth: dict[str, str]):
    for i in range(5):
        rows.agent(f"smolt-0000000{i}", last_seen_at=rows.base + timedelta(minutes=i))
    body = (await client.get("/v1/agents?limit=2&offset=1", headers=auth)).json()
    assert body["total"] == 5
    assert (body["limit"], body["offset"]) == (2, 1)
    assert [a["id"] for a in body["agents"]] == ["smolt-00000003", "smolt-00000002"]


# ---------------------------------------------------------------------------------------------
# Traces


async def test_traces_newest_first_with_totals_and_verification(
    client: Any, rows: Any, auth: dict[str, str]
):
    rows.agent(AGENT)
    rows.agent(OTHER)
    for i in range(7):
        verification = (
            {"verified": i % 2 == 0, "similarity_score": 0.25, "violations": [{"type": "v"}]}
            if i < 6
            else None
        )
        rows.trace(AGENT, f"tr-{i}", rows.base + timedelta(seconds=i), verification=verification)
    rows.trace(OTHER, "tr-other", rows.base + timedelta(hours=1))

    body = (await client.get(f"/v1/agents/{AGENT}/traces?limit=3", headers=auth)).json()
    assert body["total"] == 7
    assert (body["limit"], body["offset"]) == (3, 0)
    assert [t["trace_id"] for t in body["traces"]] == ["tr-6", "tr-5", "tr-4"]
    newest, second = body["traces"][0], body["traces"][1]
    assert newest["verification"] is None  # not verified yet: served, not hidden
    assert second["verification"] == {
        "verified": False,
        "similarity_score": 0.25,
        "violations": [{"type": "v"}],
        "warnings": [],
    }
    assert second["action"]["name"] == "act-tr-5"
    assert second["decision"]["selected"] == "a"
    assert second["context"] == {"session_id": "sess-1"}
    assert second["escalation"] is None
    for key in ("exchange_id", "card_id", "session_id", "timestamp", "created_at", "agent_id"):
        assert key in second

    page3 = (await client.get(f"/v1/agents/{AGENT}/traces?limit=3&offset=6", headers=auth)).json()
    assert [t["trace_id"] for t in page3["traces"]] == ["tr-0"]
    assert page3["total"] == 7

    past_end = await client.get(f"/v1/agents/{AGENT}/traces?limit=3&offset=50", headers=auth)
    assert past_end.status_code == 200
    assert past_end.json() == {"traces": [], "total": 7, "limit": 3, "offset": 50}


async def test_pages_cover_every_trace_once(client: Any, rows: Any, auth: dict[str, str]):
    rows.agent(AGENT)
    # Equal timestamps: the id tie-breaker keeps pages disjoint and complete.
    for i in range(10):
        rows.trace(AGENT, f"tr-{i:02d}", rows.base)
    seen: list[str] = []
    for offset in range(0, 10, 4):
        body = (
            await client.get(f"/v1/agents/{AGENT}/traces?limit=4&offset={offset}", headers=auth)
        ).json()
        seen += [t["trace_id"] for t in body["traces"]]
    assert seen == [f"tr-{i:02d}" for i in reversed(range(10))]


async def test_known_agent_without_traces_is_empty_not_404(
    client: Any, rows: Any, auth: dict[str, str]
):
    rows.agent(AGENT)
    response = await client.get(f"/v1/agents/{AGENT}/traces", headers=auth)
    assert response.status_code == 200
    assert response.json() == {"traces": [], "total": 0, "limit": 50, "offset": 0}


async def test_traces_of_agent_row_not_yet_persisted_are_served(
    client: Any, rows: Any, auth: dict[str, str]
):
    rows.trace(AGENT, "tr-early", rows.base)  # the agents row arrives on another stream
    body = (await client.get(f"/v1/agents/{AGENT}/traces", headers=auth)).json()
    assert [t["trace_id"] for t in body["traces"]] == ["tr-early"]


async def test_unknown_agent_lists_are_404(client: Any, db: Any, auth: dict[str, str]):
    for suffix in ("traces", "checkpoints", "exchanges"):
        response = await client.get(f"/v1/agents/smolt-nope0000/{suffix}", headers=auth)
        assert response.status_code == 404, suffix
        assert response.json()["type"] == "not_found"


async def test_get_trace(client: Any, rows: Any, auth: dict[str, str]):
    rows.agent(AGENT)
    rows.trace(AGENT, "tr-x", rows.base, verification={"verified": True})
    body = (await client.get("/v1/traces/tr-x", headers=auth)).json()
    assert body["trace_id"] == "tr-x"
    assert body["verification"]["verified"] is True
    missing = await client.get("/v1/traces/tr-missing", headers=auth)
    assert missing.status_code == 404
    assert missing.json() == {"error": "trace 'tr-missing' not found", "type": "not_found"}


# ---------------------------------------------------------------------------------------------
# Checkpoints


async def _seed_checkpoints(rows: Any) -> None:
    rows.agent(AGENT)
    rows.agent(OTHER)
    verdicts = ["clear", "review_needed", "boundary_violation", "clear", "clear"]
    for i, verdict in enumerate(verdicts):
        session = "sess-a" if i < 3 else "sess-b"
        rows.checkpoint(
            AGENT, f"ic-{i}", rows.base + timedelta(seconds=i), verdict=verdict, session_id=session
        )
    rows.checkpoint(OTHER, "ic-other", rows.base, verdict="clear")


async def test_checkpoints_newest_first(client: Any, rows: Any, auth: dict[str, str]):
    await _seed_checkpoints(rows)
    body = (await client.get(f"/v1/agents/{AGENT}/checkpoints", headers=auth)).json()
    assert body["total"] == 5
    assert body["limit"] == 20  # the reference's default page size for checkpoints
    assert [c["checkpoint_id"] for c in body["checkpoints"]] == [f"ic-{i}" for i in (4, 3, 2, 1, 0)]
    cp = body["checkpoints"][2]
    assert cp["verdict"] == "boundary_violation"
    assert cp["concerns"][0]["severity"] == "high"
    assert cp["window_position"] == {"index": 0, "window_size": 1}
    assert cp["proceed"] is True
    assert cp["chain_hash"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("verdict=clear", ["ic-4", "ic-3", "ic-0"]),
        ("verdict=boundary_violation", ["ic-2"]),
        ("session_id=sess-a", ["ic-2", "ic-1", "ic-0"]),
        ("session_id=sess-b&verdict=clear", ["ic-4", "ic-3"]),
        ("session_id=sess-b&verdict=review_needed", []),
        ("verdict=clear&limit=1&offset=1", ["ic-3"]),
    ],
)
async def test_checkpoint_filters(
    client: Any, rows: Any, auth: dict[str, str], query: str, expected: list[str]
):
    await _seed_checkpoints(rows)
    body = (await client.get(f"/v1/agents/{AGENT}/checkpoints?{query}", headers=auth)).json()
    assert [c["checkpoint_id"] for c in body["checkpoints"]] == expected
    full = (
        await client.get(
            f"/v1/agents/{AGENT}/checkpoints?{query.split('&limit', maxsplit=1)[0]}&limit=1000",
            headers=auth,
        )
    ).json()
    assert body["total"] == len(full["checkpoints"])


async def test_get_checkpoint_and_404s(client: Any, rows: Any, auth: dict[str, str]):
    await _seed_checkpoints(rows)
    ok = await client.get(f"/v1/agents/{AGENT}/checkpoints/ic-1", headers=auth)
    assert ok.status_code == 200
    assert ok.json()["verdict"] == "review_needed"
    # A checkpoint of another agent is not reachable through this agent.
    foreign = await client.get(f"/v1/agents/{AGENT}/checkpoints/ic-other", headers=auth)
    assert foreign.status_code == 404
    assert foreign.json() == {
        "error": f"checkpoint 'ic-other' not found for agent '{AGENT}'",
        "type": "not_found",
    }
    missing = await client.get(f"/v1/agents/{AGENT}/checkpoints/ic-missing", headers=auth)
    assert missing.status_code == 404


# ---------------------------------------------------------------------------------------------
# Exchanges


async def test_exchanges_newest_first(client: Any, rows: Any, auth: dict[str, str]):
    rows.agent(AGENT)
    ids = [rows.exchange(AGENT, rows.base + timedelta(seconds=i), input_tokens=i) for i in range(3)]
    rows.exchange(OTHER, rows.base)
    body = (await client.get(f"/v1/agents/{AGENT}/exchanges?limit=2", headers=auth)).json()
    assert body["total"] == 3
    assert [e["exchange_id"] for e in body["exchanges"]] == [str(ids[2]), str(ids[1])]
    first = body["exchanges"][0]
    assert first["input_tokens"] == 2
    assert first["output_tokens"] == 20
    assert first["provider"] == "anthropic"
    assert first["status"] == 200
    assert first["total_ms"] == 101.5


# ---------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("limit=0", "limit must be an integer from 1 to 1000 (got '0')"),
        ("limit=1001", "limit must be an integer from 1 to 1000 (got '1001')"),
        ("limit=abc", "limit must be an integer from 1 to 1000 (got 'abc')"),
        ("offset=-1", "offset must be an integer >= 0 (got '-1')"),
        ("offset=1.5", "offset must be an integer >= 0"),
    ],
)
@pytest.mark.parametrize("suffix", ["traces", "checkpoints", "exchanges"])
async def test_bad_pagination_is_400(
    client: Any, rows: Any, auth: dict[str, str], query: str, fragment: str, suffix: str
):
    rows.agent(AGENT)
    response = await client.get(f"/v1/agents/{AGENT}/{suffix}?{query}", headers=auth)
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "invalid_request_error"
    assert fragment in body["error"]


async def test_bad_verdict_is_400(client: Any, rows: Any, auth: dict[str, str]):
    rows.agent(AGENT)
    response = await client.get(f"/v1/agents/{AGENT}/checkpoints?verdict=maybe", headers=auth)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid query parameter: verdict must be one of clear, review_needed,"
        " boundary_violation (got 'maybe')",
        "type": "invalid_request_error",
    }


async def test_limit_bounds_accepted(client: Any, rows: Any, auth: dict[str, str]):
    rows.agent(AGENT)
    for limit in (1, 1000):
        response = await client.get(f"/v1/agents/{AGENT}/traces?limit={limit}", headers=auth)
        assert response.status_code == 200
        assert response.json()["limit"] == limit


async def test_odd_ids_are_just_not_found(client: Any, db: Any, auth: dict[str, str]):
    for agent_id in ("'; DROP TABLE agents; --", "ü" * 300, "a%20b"):
        response = await client.get("/v1/agents/" + agent_id, headers=auth)
        assert response.status_code == 404, agent_id
    assert (await client.get("/v1/agents", headers=auth)).status_code == 200


@pytest.mark.parametrize(
    "path", ["/v1/agents/a%00b", "/v1/traces/%00", "/v1/agents/x/checkpoints?session_id=%00"]
)
async def test_nul_bytes_are_400_not_500(client: Any, db: Any, auth: dict[str, str], path: str):
    response = await client.get(path, headers=auth)
    assert response.status_code == 400
    assert response.json()["type"] == "invalid_request_error"
    assert "NUL" in response.json()["error"]


async def test_unknown_route_is_json_404(client: Any, auth: dict[str, str]):
    response = await client.get("/v1/nothing-here", headers=auth)
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found", "type": "not_found"}


@pytest.mark.parametrize(
    ("method", "path", "authorized", "error_type"),
    [
        ("GET", "/v1/agents", False, "authentication_error"),
        ("GET", "/v1/agents/smolt-00000000", True, "not_found"),
        ("GET", "/v1/nothing-here", True, "not_found"),
        ("DELETE", f"/v1/agents/{AGENT}", True, "method_not_allowed"),
        ("GET", f"/v1/agents/{AGENT}/traces?limit=0", True, "invalid_request_error"),
        ("GET", "/v1/traces/%00", True, "invalid_request_error"),
    ],
)
async def test_every_error_answer_is_in_the_catalogue_with_its_status(
    client: Any,
    rows: Any,
    auth: dict[str, str],
    method: str,
    path: str,
    authorized: bool,
    error_type: ErrorType,
):
    rows.agent(AGENT)
    response = await client.request(method, path, headers=auth if authorized else {})
    assert response.json()["type"] == error_type
    assert response.status_code == ERROR_STATUS[error_type]
    assert response.headers["content-type"] == "application/json"


async def test_wrong_method_is_json_405(client: Any, rows: Any, auth: dict[str, str]):
    rows.agent(AGENT)
    response = await client.delete(f"/v1/agents/{AGENT}", headers=auth)
    assert response.status_code == 405
    assert response.json()["type"] == "method_not_allowed"


# ---------------------------------------------------------------------------------------------
# OpenAPI and metrics


async def test_openapi_lists_every_route_with_bearer_security(client: Any):
    spec = (await client.get("/v1/openapi.json")).json()
    assert set(spec["paths"]) >= {
        "/v1/agents",
        "/v1/agents/{agent_id}",
        "/v1/agents/{agent_id}/traces",
        "/v1/agents/{agent_id}/checkpoints",
        "/v1/agents/{agent_id}/checkpoints/{checkpoint_id}",
        "/v1/agents/{agent_id}/exchanges",
        "/v1/traces/{trace_id}",
    }
    assert spec["components"]["securitySchemes"]["BearerAuth"]["scheme"] == "bearer"
    assert spec["paths"]["/v1/agents"]["get"]["security"] == [{"BearerAuth": []}]
    assert "/health/live" not in spec["paths"]


async def test_metrics_labelled_by_route_template_not_agent(
    client: Any, rows: Any, auth: dict[str, str]
):
    rows.agent(AGENT)
    await client.get(f"/v1/agents/{AGENT}/traces", headers=auth)
    await client.get(f"/v1/agents/{AGENT}/traces?limit=0", headers=auth)
    text = (await client.get("/metrics")).text
    assert AGENT not in text
    labels = 'method="GET",route="/v1/agents/{agent_id}/traces"'
    assert f'smoltbot_api_requests_total{{{labels},status="200"}}' in text
    assert f'smoltbot_api_requests_total{{{labels},status="400"}}' in text
    assert f"smoltbot_api_request_duration_seconds_count{{{labels}}}" in text


async def test_no_html_schema_explorer_that_needs_a_cdn(client) -> None:
    assert (await client.get("/v1/openapi.json")).status_code == 200
    for path in ("/schema/swagger", "/schema/redoc", "/schema/elements"):
        assert (await client.get(path)).status_code == 404
