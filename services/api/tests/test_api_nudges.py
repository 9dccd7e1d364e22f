"""``GET /v1/agents/{agent_id}/nudges`` (routes_nudges.py) against a real, migrated PostgreSQL:
newest first, the status filter, pages, a read key is enough, unknown agents."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

AGENT = "smolt-aaaa1111"
OTHER = "smolt-bbbb2222"


def nudge(db: Any, agent_id: str, nudge_id: str, at: Any, **kw: Any) -> None:
    status = kw.get("status", "pending")
    db.execute(
        "INSERT INTO nudges (id, agent_id, checkpoint_id, created_at, text, status,"
        " delivered_at, delivered_event_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        [
            nudge_id,
            agent_id,
            kw.get("checkpoint_id", f"ic-{nudge_id}"),
            at,
            kw.get("text", "Your previous response was flagged."),
            status,
            at + timedelta(minutes=5) if status == "delivered" else None,
            "evt-1" if status == "delivered" else None,
        ],
    )


async def get(client: Any, auth: dict[str, str], path: str, status: int = 200) -> Any:
    response = await client.get(path, headers=auth)
    assert response.status_code == status, response.text
    return response.json()


async def test_nudges_newest_first_with_filters(
    client: Any, db: Any, rows: Any, auth: dict[str, str]
):
    rows.agent(AGENT)
    nudge(db, AGENT, "nudge-1", rows.base, status="delivered")
    nudge(db, AGENT, "nudge-2", rows.base + timedelta(minutes=1))
    nudge(db, AGENT, "nudge-3", rows.base + timedelta(minutes=2), status="expired")
    nudge(db, OTHER, "nudge-x", rows.base + timedelta(minutes=3))
    # Known only from its delivery so far: sorts after the dated rows.
    db.execute(
        "INSERT INTO nudges (id, agent_id, status, delivered_at, delivered_event_id)"
        " VALUES ('nudge-0', %s, 'delivered', %s, 'evt-2')",
        [AGENT, rows.base],
    )

    body = await get(client, auth, f"/v1/agents/{AGENT}/nudges")
    assert [n["id"] for n in body["nudges"]] == ["nudge-3", "nudge-2", "nudge-1", "nudge-0"]
    assert (body["total"], body["limit"], body["offset"]) == (4, 50, 0)
    assert body["nudges"][2] == {
        "id": "nudge-1",
        "agent_id": AGENT,
        "checkpoint_id": "ic-nudge-1",
        "created_at": "2026-11-01T12:00:00Z",
        "text": "Your previous response was flagged.",
        "status": "delivered",
        "delivered_at": "2026-11-01T12:05:00Z",
        "delivered_event_id": "evt-1",
    }
    assert body["nudges"][3]["checkpoint_id"] is None
    assert body["nudges"][3]["text"] is None

    cases = {
        "status=delivered": ["nudge-1", "nudge-0"],
        "status=pending": ["nudge-2"],
        "status=expired": ["nudge-3"],
        "limit=1&offset=1": ["nudge-2"],
    }
    for query, expected in cases.items():
        page = await get(client, auth, f"/v1/agents/{AGENT}/nudges?{query}")
        assert [n["id"] for n in page["nudges"]] == expected, query
    assert (await get(client, auth, f"/v1/agents/{AGENT}/nudges?status=pending"))["total"] == 1


async def test_nudges_errors(client: Any, db: Any, rows: Any, auth: dict[str, str]):
    rows.agent(AGENT)
    assert (await get(client, auth, f"/v1/agents/{AGENT}/nudges"))["nudges"] == []
    missing = await get(client, auth, "/v1/agents/smolt-00000000/nudges", 404)
    assert missing["type"] == "not_found"
    for query in ("status=sent", "limit=0", "limit=1001", "offset=-1"):
        bad = await get(client, auth, f"/v1/agents/{AGENT}/nudges?{query}", 400)
        assert bad["type"] == "invalid_request_error", query
    await get(client, {}, f"/v1/agents/{AGENT}/nudges", 401)


async def test_nudges_need_only_a_read_key(client: Any, db: Any, rows: Any, auth: dict[str, str]):
    rows.agent(AGENT)
    created = await client.post("/v1/api-keys", json={"name": "ro", "scope": "read"}, headers=auth)
    assert created.status_code == 201, created.text
    key = {"Authorization": f"Bearer {created.json()['key']}"}
    body = await get(client, key, f"/v1/agents/{AGENT}/nudges")
    assert body["total"] == 0
