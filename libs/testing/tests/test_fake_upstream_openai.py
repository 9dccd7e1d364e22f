"""The fake OpenAI Chat Completions upstream, exercised with the official ``openai`` SDK."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
from smoltbot_testing import FakeUpstream
from smoltbot_testing.fake_upstream import FORCED_ERROR
from smoltbot_testing.fake_upstream import openai as fake_openai

TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {"name": "search", "description": "Search", "parameters": {"type": "object"}},
    },
    {"type": "function", "function": {"name": "unused", "parameters": {"type": "object"}}},
]
MESSAGES: list[Any] = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "first question"},
    {"role": "assistant", "content": "answer"},
    {"role": "user", "content": [{"type": "text", "text": "find crème brûlée 🍮"}]},
]
QUERY = "find crème brûlée 🍮"
THINKING = f"The user asked: {QUERY!r}. I will echo it back."


@pytest.fixture
async def sdk(fake: FakeUpstream) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        api_key="sk-test", base_url=f"{fake.url}/v1", max_retries=0
    ) as client:
        yield client


async def test_non_streaming_reply_has_reasoning_text_tool_call_and_usage(
    fake: FakeUpstream, sdk: openai.AsyncOpenAI
) -> None:
    completion = await sdk.chat.completions.create(
        model="gpt-5-mini", messages=MESSAGES, tools=TOOLS
    )
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-5-mini"
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    message = choice.message
    assert message.reasoning_content == THINKING
    assert message.content == f"Echo: {QUERY}"
    assert message.tool_calls is not None
    [call] = message.tool_calls
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == "search"
    assert json.loads(call.function.arguments) == {"query": QUERY, "n": len(QUERY)}
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == len(THINKING.split())
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

    [record] = fake.responses
    assert (record.method, record.path, record.status) == ("POST", "/v1/chat/completions", 200)
    assert record.request_header("authorization") == "Bearer sk-test"
    assert json.loads(record.request_body)["messages"] == MESSAGES
    assert record.response_header("x-request-id") == "req_fake000000000000"


async def test_stream_sends_fragments_the_sdk_merges_into_the_same_completion(
    fake: FakeUpstream, sdk: openai.AsyncOpenAI
) -> None:
    whole = await sdk.chat.completions.create(model="gpt-5", messages=MESSAGES, tools=TOOLS)
    stream = await sdk.chat.completions.create(
        model="gpt-5",
        messages=MESSAGES,
        tools=TOOLS,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert deltas[0].role == "assistant"
    reasoning = "".join(getattr(d, "reasoning_content", None) or "" for d in deltas)
    assert reasoning == THINKING
    assert sum(1 for d in deltas if getattr(d, "reasoning_content", None)) > 1  # in pieces
    assert "".join(d.content or "" for d in deltas) == f"Echo: {QUERY}"
    fragments = [f for d in deltas for f in d.tool_calls or []]
    assert len(fragments) > 2
    first, *rest = fragments
    assert (first.index, first.type, first.id) == (
        0,
        "function",
        whole.choices[0].message.tool_calls[0].id,
    )
    assert first.function is not None
    assert first.function.name == "search"
    assert first.function.arguments
    for later in rest:  # later fragments carry only more arguments
        assert (later.index, later.id, later.type) == (0, None, None)
        assert later.function is not None
        assert later.function.name is None
    arguments = "".join(f.function.arguments or "" for f in fragments if f.function)
    assert json.loads(arguments) == {"query": QUERY, "n": len(QUERY)}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None
    assert whole.usage is not None
    assert usage_chunk.usage.completion_tokens == whole.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])

    raw = fake.responses[-1]
    assert raw.response_header("content-type") == "text/event-stream; charset=utf-8"
    assert raw.query == ""
    assert json.loads(raw.request_body)["stream_options"] == {"include_usage": True}


async def test_stream_helper_final_completion_equals_the_whole_answer(
    sdk: openai.AsyncOpenAI,
) -> None:
    whole = await sdk.chat.completions.create(model="gpt-5", messages=MESSAGES, tools=TOOLS)
    async with sdk.chat.completions.stream(model="gpt-5", messages=MESSAGES, tools=TOOLS) as stream:
        final = await stream.get_final_completion()
    assert final.id == whole.id
    message = final.choices[0].message
    assert message.content == whole.choices[0].message.content
    assert message.reasoning_content == THINKING
    assert message.tool_calls is not None
    assert whole.choices[0].message.tool_calls is not None
    assert message.tool_calls[0].function.name == "search"
    expected = whole.choices[0].message.tool_calls[0]
    assert message.tool_calls[0].function.arguments == expected.function.arguments
    assert final.choices[0].finish_reason == "tool_calls"


async def test_without_usage_option_the_stream_has_no_usage_chunk(
    fake: FakeUpstream, sdk: openai.AsyncOpenAI
) -> None:
    stream = await sdk.chat.completions.create(
        model="gpt-5", messages=[{"role": "user", "content": "plain"}], stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    sent = fake.responses[-1].decoded
    assert sent.endswith(b"}\n\ndata: [DONE]\n\n")
    assert b'"usage"' not in sent


async def test_no_tools_and_reasoning_off(sdk: openai.AsyncOpenAI) -> None:
    completion = await sdk.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], reasoning_effort="none"
    )
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "stop"
    assert message.tool_calls is None
    assert message.content == "Echo: hi"
    assert getattr(message, "reasoning_content", None) is None


async def test_forced_error_has_openai_shape(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        await sdk.chat.completions.create(
            **fake_openai.chat_request(extra_headers={"x-fake-status": "429"})
        )
    assert info.value.status_code == 429
    assert info.value.body == fake_openai.error_body(429, FORCED_ERROR)["error"]
    assert info.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.InternalServerError) as server:
        await sdk.chat.completions.create(
            **fake_openai.chat_request(extra_headers={"x-fake-status": "500"})
        )
    assert server.value.type == "server_error"


async def test_missing_key_bad_json_and_missing_field(fake: FakeUpstream) -> None:
    auth = {"authorization": "Bearer k"}
    async with httpx.AsyncClient(base_url=fake.url) as client:
        no_key = await client.post("/v1/chat/completions", json=fake_openai.chat_request())
        bad = await client.post("/v1/chat/completions", content=b"{nope", headers=auth)
        missing = await client.post("/v1/chat/completions", json={"model": "m"}, headers=auth)
    assert no_key.status_code == 401
    assert no_key.json()["error"]["code"] == "invalid_api_key"
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "invalid_request_error"
    assert missing.status_code == 400
    assert missing.json() == {
        "error": {
            "message": "Missing required parameter: 'messages'.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": None,
        }
    }
    assert [r.status for r in fake.responses] == [401, 400, 400]


async def test_models_at_the_root_and_under_the_prefix(
    fake: FakeUpstream, sdk: openai.AsyncOpenAI
) -> None:
    models = await sdk.models.list()
    assert [m.id for m in models.data][:2] == ["gpt-5", "gpt-5-mini"]
    assert all(m.object == "model" for m in models.data)
    async with openai.AsyncOpenAI(
        api_key="k", base_url=f"{fake.url}/openai/v1", max_retries=0
    ) as prefixed:
        prefixed_models = await prefixed.models.list()
        completion = await prefixed.chat.completions.create(
            **fake_openai.chat_request("via prefix")
        )
    assert [m.id for m in prefixed_models.data] == [m.id for m in models.data]
    assert completion.choices[0].message.content == "Echo: via prefix"
    assert [r.path for r in fake.responses] == [
        "/v1/models",
        "/openai/v1/models",
        "/openai/v1/chat/completions",
    ]


def test_in_thread_serves_the_blocking_client() -> None:
    with FakeUpstream().in_thread() as fake:
        client = openai.OpenAI(api_key="k", base_url=f"{fake.url}/openai/v1", max_retries=0)
        completion = client.chat.completions.create(**fake_openai.chat_request("sync"))
        assert completion.choices[0].message.content == "Echo: sync"
        assert len(fake.responses) == 1


def test_pure_functions_render_what_the_server_sends() -> None:
    """``build_reply`` / ``completion_json`` / ``completion_chunks`` need no server (for parser
    tests), and a stream's reassembled content equals the whole answer."""
    body = fake_openai.chat_request(QUERY, tools=TOOLS)
    raw = json.dumps(body).encode()
    reply = fake_openai.build_reply(raw, body)
    whole = fake_openai.completion_json(reply)
    chunks = fake_openai.completion_chunks(reply, include_usage=True)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert (
        "".join(d.get("content", "") for d in deltas) == whole["choices"][0]["message"]["content"]
    )
    assert chunks[-1]["usage"] == whole["usage"]
    assert fake_openai.chunk_frame(chunks[0]).startswith(b'data: {"id":"chatcmpl-')
