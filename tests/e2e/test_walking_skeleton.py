"""A1 end to end: the official anthropic SDK -> gateway -> bus -> observer -> verifier ->
persister -> PostgreSQL -> api, every service its own OS process under `smoltbot up`."""

from __future__ import annotations

import base64
import gzip
from typing import Any
from uuid import uuid4

import anthropic
import httpx
import pytest

from tests.conftest import Stack, poll

pytestmark = pytest.mark.e2e


def recorded(stack: Stack, marker: str) -> dict[str, Any]:
    """The fake upstream's record of the request that carried ``x-e2e-id: marker``."""
    rows = httpx.get(f"{stack.fake_url}/__fake__/responses", timeout=5).json()
    for row in rows:
        headers = {k.lower(): v for k, v in row["request_headers"]}
        if headers.get("x-e2e-id") == marker:
            return row
    raise AssertionError(f"fake upstream never saw request {marker}")


def find_item(items: list[dict[str, Any]], key: str, value: str) -> dict[str, Any] | None:
    return next((i for i in items if i.get(key) == value), None)


def test_sdk_calls_become_traces_and_checkpoints(stack: Stack) -> None:
    api_key = f"sk-ant-e2e-{uuid4().hex}"
    client = anthropic.Anthropic(
        api_key=api_key, base_url=f"{stack.url('gateway')}/anthropic", max_retries=0
    )

    # Non-streaming, through the SDK.
    plain_marker = uuid4().hex
    raw = client.messages.with_raw_response.create(
        model="claude-test-1",
        max_tokens=1024,
        messages=[{"role": "user", "content": "Summarise the design of a tracing gateway."}],
        extra_headers={"x-e2e-id": plain_marker},
    )
    message = raw.parse()
    agent_id = raw.headers["x-smoltbot-agent"]
    plain_event_id = raw.headers["x-smoltbot-event-id"]
    plain_checkpoint = raw.headers["x-aip-checkpoint-id"]
    assert agent_id.startswith("smolt-")
    assert any(block.type == "text" for block in message.content)
    upstream = recorded(stack, plain_marker)
    sent = base64.b64decode(upstream["raw_b64"])
    upstream_headers = {k.lower(): v for k, v in upstream["response_headers"]}
    body = gzip.decompress(sent) if upstream_headers.get("content-encoding") == "gzip" else sent
    assert raw.http_response.content == body  # the SDK got exactly what the provider sent

    # Streaming, through the SDK.
    stream_marker = uuid4().hex
    with client.messages.stream(
        model="claude-test-1",
        max_tokens=2048,
        messages=[{"role": "user", "content": "Plan a refactor, then use the tool."}],
        tools=[
            {
                "name": "read_file",
                "description": "Read a file",
                "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
            }
        ],
        extra_headers={"x-e2e-id": stream_marker},
    ) as stream:
        final = stream.get_final_message()
        stream_event_id = stream.response.headers["x-smoltbot-event-id"]
    assert {b.type for b in final.content} >= {"thinking", "text", "tool_use"}

    # Streaming with gzip, raw: the bytes on the wire are the provider's bytes, untouched.
    gz_marker = uuid4().hex
    with httpx.Client(timeout=30) as http:
        with http.stream(
            "POST",
            f"{stack.url('gateway')}/anthropic/v1/messages",
            headers={
                "x-api-key": api_key,
                "anthropic-version": "2023-06-01",
                "accept-encoding": "gzip",
                "x-e2e-id": gz_marker,
            },
            json={
                "model": "claude-test-1",
                "max_tokens": 2048,
                "stream": True,
                "messages": [{"role": "user", "content": "Think about gzip."}],
            },
        ) as resp:
            assert resp.status_code == 200
            assert resp.headers["content-encoding"] == "gzip"
            got = b"".join(resp.iter_raw())
            gz_event_id = resp.headers["x-smoltbot-event-id"]
    sent_gz = base64.b64decode(recorded(stack, gz_marker)["raw_b64"])
    assert got == sent_gz
    assert b"event: message_stop" in gzip.decompress(got)

    event_ids = [plain_event_id, stream_event_id, gz_event_id]
    api = stack.api()

    def all_traces() -> list[dict[str, Any]] | None:
        traces = api.get(f"/v1/agents/{agent_id}/traces", params={"limit": 50}).json()
        found = [find_item(traces["traces"], "trace_id", f"tr-{e}") for e in event_ids]
        return found if all(found) else None  # type: ignore[return-value]

    traces = poll(all_traces, timeout_s=60)
    assert traces[1]["action"]["name"] == "read_file"  # the streamed call used a tool
    assert traces[0]["action"]["name"] == "inference"

    checkpoints = api.get(f"/v1/agents/{agent_id}/checkpoints", params={"limit": 50}).json()
    assert checkpoints["total"] == 3
    by_id = {c["checkpoint_id"]: c for c in checkpoints["checkpoints"]}
    assert plain_checkpoint in by_id
    assert by_id[plain_checkpoint]["linked_trace_id"] == f"tr-{plain_event_id}"
    for cp in checkpoints["checkpoints"]:
        assert cp["verdict"] in {"clear", "review_needed", "boundary_violation"}

    single = api.get(f"/v1/agents/{agent_id}/checkpoints/{plain_checkpoint}")
    assert single.status_code == 200
    agent = api.get(f"/v1/agents/{agent_id}").json()
    assert agent["id"] == agent_id

    exchanges = api.get(f"/v1/agents/{agent_id}/exchanges", params={"limit": 50}).json()
    assert exchanges["total"] == 3
    streamed = {e["exchange_id"]: e["streamed"] for e in exchanges["exchanges"]}
    assert streamed == {plain_event_id: False, stream_event_id: True, gz_event_id: True}

    # The API refuses callers without the admin token.
    assert httpx.get(f"{stack.url('api')}/v1/agents/{agent_id}").status_code == 401
