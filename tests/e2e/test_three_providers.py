"""The official OpenAI and google-genai SDKs through the gateway, end to end: every service its
own OS process under `smoltbot up --fake-upstream`. Each SDK gets exactly the bytes the
provider sent, and each call becomes a trace in PostgreSQL whose checkpoint hashes the exact
thinking the provider returned and whose action names the tool it called."""

from __future__ import annotations

import base64
import gzip
import hashlib
from typing import Any
from uuid import uuid4

import httpx
import openai
import pytest
from google import genai
from google.genai import types
from smoltbot_contracts.ids import agent_hash, agent_id
from smoltbot_testing.fake_upstream import thinking_for

from tests.conftest import Stack, poll

pytestmark = pytest.mark.e2e

QUESTION = "Which files in the repository mention the retry budget of the upstream client, and why?"
TOOL = "search_files"


def recorded(stack: Stack, marker: str) -> dict[str, Any]:
    """The fake provider's record of the request that carried ``x-e2e-id: marker``."""
    rows = httpx.get(f"{stack.fake_url}/__fake__/responses", timeout=5).json()
    for row in rows:
        headers = {k.lower(): v for k, v in row["request_headers"]}
        if headers.get("x-e2e-id") == marker:
            return row
    raise AssertionError(f"the fake provider never saw request {marker}")


def sent_body(row: dict[str, Any]) -> bytes:
    sent = base64.b64decode(row["raw_b64"])
    headers = {k.lower(): v for k, v in row["response_headers"]}
    return gzip.decompress(sent) if headers.get("content-encoding") == "gzip" else sent


def thinking_hash(question: str) -> str:
    return hashlib.sha256(thinking_for(question).encode()).hexdigest()


def traced(stack: Stack, agent: str, event_ids: list[str]) -> list[dict[str, Any]]:
    """Every exchange's trace, once the pipeline has written them all."""
    api = stack.api()

    def all_traces() -> list[dict[str, Any]] | None:
        traces = api.get(f"/v1/agents/{agent}/traces", params={"limit": 50}).json()["traces"]
        by_id = {t["trace_id"]: t for t in traces}
        found = [by_id.get(f"tr-{e}") for e in event_ids]
        return found if all(found) else None  # type: ignore[return-value]

    return poll(all_traces, timeout_s=60)  # type: ignore[no-any-return]


def checkpoints(stack: Stack, agent: str) -> dict[str, dict[str, Any]]:
    listed = stack.api().get(f"/v1/agents/{agent}/checkpoints", params={"limit": 50}).json()
    return {c["checkpoint_id"]: c for c in listed["checkpoints"]}


def test_openai_sdk_through_the_gateway_to_a_trace(stack: Stack) -> None:
    key = f"sk-openai-e2e-{uuid4().hex}"
    client = openai.OpenAI(api_key=key, base_url=f"{stack.url('gateway')}/openai/v1", max_retries=0)
    tools: Any = [
        {
            "type": "function",
            "function": {
                "name": TOOL,
                "description": "Search the repository",
                "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
            },
        }
    ]
    messages: Any = [{"role": "user", "content": QUESTION}]

    plain = uuid4().hex
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=messages, tools=tools, extra_headers={"x-e2e-id": plain}
    )
    completion = raw.parse()
    assert raw.http_response.content == sent_body(recorded(stack, plain))  # untouched
    assert completion.choices[0].message.tool_calls is not None
    assert completion.choices[0].message.tool_calls[0].function.name == TOOL
    agent = raw.headers["x-smoltbot-agent"]
    assert agent == agent_id(agent_hash(key))
    plain_event = raw.headers["x-smoltbot-event-id"]
    plain_checkpoint = raw.headers["x-aip-checkpoint-id"]

    streamed = uuid4().hex
    with client.chat.completions.with_streaming_response.create(
        model="gpt-test",
        messages=messages,
        tools=tools,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-e2e-id": streamed, "accept-encoding": "gzip"},
    ) as response:
        stream_event = response.headers["x-smoltbot-event-id"]
        chunks = list(response.parse())
    names = [
        call.function.name
        for chunk in chunks
        for choice in chunk.choices
        for call in choice.delta.tool_calls or ()
        if call.function and call.function.name
    ]
    assert names == [TOOL]
    assert chunks[-1].usage is not None
    assert recorded(stack, streamed)["response_headers"]  # the fake answered it

    traces = traced(stack, agent, [plain_event, stream_event])
    assert [t["action"]["name"] for t in traces] == [TOOL, TOOL]
    by_id = checkpoints(stack, agent)
    assert by_id[plain_checkpoint]["thinking_block_hash"] == thinking_hash(QUESTION)
    assert by_id[plain_checkpoint]["provider"] == "openai"
    assert len(by_id) == 2


def test_gemini_sdk_through_the_gateway_to_a_trace(stack: Stack) -> None:
    key = f"AIza-e2e-{uuid4().hex}"
    agent = agent_id(agent_hash(key))
    client = genai.Client(
        api_key=key, http_options=types.HttpOptions(base_url=f"{stack.url('gateway')}/gemini")
    )
    tool = types.Tool(
        function_declarations=[
            types.FunctionDeclaration(
                name=TOOL,
                description="Search the repository",
                parameters=types.Schema(
                    type=types.Type.OBJECT, properties={"query": types.Schema(type="STRING")}
                ),
            )
        ]
    )

    def config(marker: str) -> types.GenerateContentConfig:
        return types.GenerateContentConfig(
            tools=[tool],
            thinking_config=types.ThinkingConfig(include_thoughts=True),
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
            http_options=types.HttpOptions(headers={"x-e2e-id": marker}),
        )

    plain = uuid4().hex
    response = client.models.generate_content(
        model="gemini-test", contents=QUESTION, config=config(plain)
    )
    parts = response.candidates[0].content.parts  # type: ignore[index, union-attr]
    assert any(p.thought for p in parts)  # type: ignore[union-attr]
    assert [p.function_call.name for p in parts if p.function_call] == [TOOL]  # type: ignore[union-attr]
    row = recorded(stack, plain)
    assert row["query"] == ""  # the key went as a header, as the SDK sends it

    streamed = uuid4().hex
    chunks = list(
        client.models.generate_content_stream(
            model="gemini-test", contents=QUESTION, config=config(streamed)
        )
    )
    thought = "".join(
        p.text or ""
        for c in chunks
        for p in c.candidates[0].content.parts or ()  # type: ignore[index, union-attr]
        if p.thought
    )
    assert thought == thinking_for(QUESTION)
    assert recorded(stack, streamed)["query"] == "alt=sse"

    # Raw, with the key in the query as some clients send it: forwarded, never recorded.
    raw_marker = uuid4().hex
    with httpx.Client(timeout=30) as http:
        answer = http.post(
            f"{stack.url('gateway')}/gemini/v1beta/models/gemini-test:generateContent",
            params={"key": key},
            headers={"x-e2e-id": raw_marker, "accept-encoding": "gzip"},
            json={
                "contents": [{"role": "user", "parts": [{"text": QUESTION}]}],
                "generationConfig": {"thinkingConfig": {"includeThoughts": True}},
            },
        )
    assert answer.status_code == 200
    assert answer.headers["x-smoltbot-agent"] == agent
    assert answer.content == sent_body(recorded(stack, raw_marker))
    raw_event = answer.headers["x-smoltbot-event-id"]
    raw_checkpoint = answer.headers["x-aip-checkpoint-id"]

    exchanges = stack.api().get(f"/v1/agents/{agent}/exchanges", params={"limit": 50})
    traces = traced(stack, agent, [raw_event])
    assert traces[0]["action"]["name"] == "inference"  # no tools offered on the raw call
    by_id = checkpoints(stack, agent)
    assert by_id[raw_checkpoint]["thinking_block_hash"] == thinking_hash(QUESTION)
    assert by_id[raw_checkpoint]["provider"] == "gemini"
    assert by_id[raw_checkpoint]["model"] == "gemini-test"  # read from the URL

    def tool_traces() -> list[dict[str, Any]] | None:
        listed = stack.api().get(f"/v1/agents/{agent}/traces", params={"limit": 50}).json()
        found = [t for t in listed["traces"] if t["action"]["name"] == TOOL]
        return found if len(found) == 2 else None

    assert len(poll(tool_traces, timeout_s=60)) == 2  # the SDK calls, plain and streamed
    assert exchanges.status_code == 200


def test_named_agents_and_rejected_keys_end_to_end(stack: Stack) -> None:
    key = f"sk-named-e2e-{uuid4().hex}"
    gateway = stack.url("gateway")
    with httpx.Client(timeout=30) as http:
        agents = set()
        for name in ("planner", "coder"):
            answer = http.post(
                f"{gateway}/agent/{name}/openai/v1/chat/completions",
                headers={"authorization": f"Bearer {key}"},
                json={"model": "gpt-test", "messages": [{"role": "user", "content": name}]},
            )
            assert answer.status_code == 200
            agents.add(answer.headers["x-smoltbot-agent"])
            assert answer.headers["x-smoltbot-agent"] == agent_id(agent_hash(key, name))
        rejected = [f"sk-random-{uuid4().hex}" for _ in range(20)]
        for random_key in rejected:
            answer = http.post(
                f"{gateway}/openai/v1/chat/completions",
                headers={"authorization": f"Bearer {random_key}", "x-fake-status": "401"},
                json={"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]},
            )
            assert answer.status_code == 401
    assert len(agents) == 2
    api = stack.api()

    def named() -> list[dict[str, Any]] | None:
        rows = [api.get(f"/v1/agents/{a}") for a in agents]
        return [r.json() for r in rows] if all(r.status_code == 200 for r in rows) else None

    assert sorted(a["name"] for a in poll(named, timeout_s=60)) == ["coder", "planner"]
    for random_key in rejected:  # the provider said no: no agent was created
        assert api.get(f"/v1/agents/{agent_id(agent_hash(random_key))}").status_code == 404
