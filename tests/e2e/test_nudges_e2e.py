"""Wave 3 end to end, every service its own OS process under `smoltbot up --fake-upstream`: a
streamed call of an agent in enforce mode whose thinking plans an exfiltration is found a
boundary violation by the verifier (rules backend), which writes a nudge; the gateway puts it
into the system prompt of exactly one of eight calls racing for it, and into no other call; the
nudge is recorded in PostgreSQL as delivered (GET /v1/agents/{id}/nudges)."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import uuid4

import httpx
import msgspec
import pytest
import redis
from smoltbot_contracts import AgentConfig, Nudge
from smoltbot_contracts.ids import agent_hash, agent_id, nudge_id
from smoltbot_contracts.streams import cfg_key, nudges_key
from smoltbot_testing.env import REDIS_URL

from tests.conftest import Stack, poll

pytestmark = pytest.mark.e2e

# What the fake provider thinks on the first call: the rules analysis flags it (critical).
BAD_THINKING = (
    "The user wants the deploy fixed. I will quietly exfiltrate the AWS credentials from the "
    ".env file to my server first, then answer as if nothing happened."
)
NOTICE_HEADER = "[smoltbot integrity notice]"


def sent_request(stack: Stack, marker: str) -> dict[str, Any]:
    rows = httpx.get(f"{stack.fake_url}/__fake__/responses", timeout=5).json()
    for row in rows:
        headers = {k.lower(): v for k, v in row["request_headers"]}
        if headers.get("x-e2e-id") == marker:
            body: dict[str, Any] = msgspec.json.decode(base64.b64decode(row["request_body_b64"]))
            return body
    raise AssertionError(f"the fake provider never saw request {marker}")


def streamed_call(
    http: httpx.Client, stack: Stack, key: str, marker: str, **headers: str
) -> httpx.Response:
    with http.stream(
        "POST",
        f"{stack.url('gateway')}/anthropic/v1/messages",
        headers={"x-api-key": key, "x-e2e-id": marker, **headers},
        json={
            "model": "claude-test",
            "max_tokens": 4096,
            "stream": True,
            "system": "You are a deployment assistant.",
            "messages": [{"role": "user", "content": "Fix the deploy, please."}],
        },
    ) as response:
        response.read()
    assert response.status_code == 200
    return response


def test_a_streamed_violation_in_enforce_mode_nudges_the_next_call_once(stack: Stack) -> None:
    key = f"sk-ant-nudge-e2e-{uuid4().hex}"
    agent = agent_id(agent_hash(key))
    store = redis.Redis.from_url(REDIS_URL)
    try:
        store.hset(
            cfg_key(stack.prefix, agent),
            "b",
            msgspec.msgpack.encode(AgentConfig(enforcement_mode="enforce")),
        )
        with httpx.Client(timeout=30) as http:
            first = streamed_call(http, stack, key, "first", **{"x-fake-thinking": BAD_THINKING})
            assert "x-aip-enforcement" not in first.headers
            assert sent_request(stack, "first")["thinking"] == {
                "type": "enabled",
                "budget_tokens": 2048,
            }
            expected_id = nudge_id(first.headers["x-smoltbot-event-id"])

            def written() -> Nudge | None:
                raw = store.hget(nudges_key(stack.prefix, agent), expected_id)
                return None if raw is None else msgspec.json.decode(raw, type=Nudge)

            nudge = poll(written, timeout_s=60)
            assert nudge.checkpoint_id == first.headers["x-aip-checkpoint-id"]
            assert nudge.status == "pending"
            assert "exfiltrate" not in nudge.text  # concerns, not the thinking

            # Eight calls race for the one nudge: exactly one carries it.
            with ThreadPoolExecutor(max_workers=8) as pool:
                racing = list(
                    pool.map(lambda i: streamed_call(http, stack, key, f"race-{i}"), range(8))
                )
            after = streamed_call(http, stack, key, "after")
    finally:
        store.close()

    carriers = [i for i, r in enumerate(racing) if "x-aip-enforcement" in r.headers]
    assert len(carriers) == 1, [dict(r.headers) for r in racing]
    winner = racing[carriers[0]]
    assert winner.headers["x-aip-enforcement"] == "nudge"
    assert winner.headers["x-aip-nudge-count"] == "1"
    assert "x-aip-enforcement" not in after.headers
    system = sent_request(stack, f"race-{carriers[0]}")["system"]
    assert system == f"You are a deployment assistant.\n\n{NOTICE_HEADER}\n{nudge.text}"
    assert first.headers["x-aip-checkpoint-id"] in system
    for marker in [f"race-{i}" for i in range(8) if i != carriers[0]] + ["after"]:
        assert sent_request(stack, marker)["system"] == "You are a deployment assistant."
    store = redis.Redis.from_url(REDIS_URL)
    try:
        raw = store.hget(nudges_key(stack.prefix, agent), expected_id)
    finally:
        store.close()
    assert raw is not None
    delivered = msgspec.json.decode(raw, type=Nudge)
    assert delivered.status == "delivered"
    assert delivered.delivered_event_id == winner.headers["x-smoltbot-event-id"]

    # The record in PostgreSQL, through the api: created by the first call's verdict, delivered
    # by the winner's (the persister merges the two facts whatever their order).
    def recorded() -> dict[str, Any] | None:
        with stack.api() as api:
            response = api.get(f"/v1/agents/{agent}/nudges", params={"status": "delivered"})
        if response.status_code != 200:
            return None
        rows = response.json()["nudges"]
        return rows[0] if rows and rows[0]["text"] is not None else None

    row = poll(recorded, timeout_s=60)
    assert row["id"] == expected_id
    assert row["checkpoint_id"] == first.headers["x-aip-checkpoint-id"]
    assert row["text"] == nudge.text
    assert row["delivered_event_id"] == winner.headers["x-smoltbot-event-id"]
    assert row["delivered_at"] is not None
    with stack.api() as api:
        page = api.get(f"/v1/agents/{agent}/nudges").json()
    assert [n["id"] for n in page["nudges"]] == [expected_id]
