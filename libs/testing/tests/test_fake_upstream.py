"""The fake Anthropic upstream, exercised with the official SDK and raw httpx over loopback
(OpenAI and Gemini: ``test_fake_upstream_openai.py``, ``_gemini.py``; shared wire: ``_wire.py``)."""

from __future__ import annotations

import base64
import gzip
import os
import signal
import subprocess
import time
import zlib
from collections.abc import AsyncIterator

import anthropic
import httpx
import msgspec
import openai
import pytest
from google import genai
from google.genai import types
from smoltbot_testing import FakeUpstream, fake_upstream, free_port, wait_for_http
from smoltbot_testing.fake_upstream import message_request
from smoltbot_testing.fake_upstream.openai import chat_request
from smoltbot_testing.net import decoded_body

TOOLS = [{"name": "search", "description": "Search", "input_schema": {"type": "object"}}]


@pytest.fixture
async def sdk(fake: FakeUpstream) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        api_key="sk-test", base_url=fake.url, max_retries=0
    ) as client:
        yield client


async def test_non_streaming_reply_is_derived_from_the_request(
    fake: FakeUpstream, sdk: anthropic.AsyncAnthropic
) -> None:
    message = await sdk.messages.create(
        model="claude-test-1",
        max_tokens=256,
        messages=[
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "answer"},
            {"role": "user", "content": [{"type": "text", "text": "find cats"}]},
        ],
        tools=TOOLS,
    )
    assert message.model == "claude-test-1"
    assert message.id.startswith("msg_")
    assert [block.type for block in message.content] == ["thinking", "text", "tool_use"]
    thinking, text, tool = message.content
    assert thinking.type == "thinking"
    assert "find cats" in thinking.thinking
    assert thinking.signature.startswith("sig")
    assert text.type == "text"
    assert text.text == "Echo: find cats"
    assert tool.type == "tool_use"
    assert tool.name == "search"
    assert tool.input == {"query": "find cats", "n": 9}
    assert message.stop_reason == "tool_use"
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens > 0


async def test_streaming_reply_matches_non_streaming_content(
    fake: FakeUpstream, sdk: anthropic.AsyncAnthropic
) -> None:
    client = sdk
    kwargs = {
        "model": "claude-test-2",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "stream this please"}],
        "tools": TOOLS,
    }
    whole = await client.messages.create(**kwargs)  # type: ignore[call-overload]
    async with client.messages.stream(**kwargs) as stream:  # type: ignore[arg-type]
        streamed = await stream.get_final_message()
    assert streamed.model == "claude-test-2"
    assert [b.model_dump() for b in streamed.content] == [b.model_dump() for b in whole.content]
    assert streamed.stop_reason == "tool_use"
    assert streamed.usage.output_tokens == whole.usage.output_tokens

    record = fake.responses[-1]
    encoded = dict(record.response_headers).get("Content-Encoding") == "gzip"
    raw = (gzip.decompress(record.raw) if encoded else record.raw).decode()
    names = [line.removeprefix("event: ") for line in raw.splitlines() if line.startswith("event:")]
    assert names[0] == "message_start"
    assert names[-2:] == ["message_delta", "message_stop"]
    deltas = [
        msgspec.json.decode(line.removeprefix("data: "))["delta"]["type"]
        for line in raw.splitlines()
        if line.startswith("data: ") and "content_block_delta" in line
    ]
    assert {"thinking_delta", "signature_delta", "text_delta", "input_json_delta"} <= set(deltas)


async def test_thinking_disabled_leaves_out_the_thinking_block(
    fake: FakeUpstream, sdk: anthropic.AsyncAnthropic
) -> None:
    request = message_request("hi", max_tokens=10, thinking={"type": "disabled"})
    message = await sdk.messages.create(**request)
    assert [block.type for block in message.content] == ["text"]


@pytest.mark.parametrize("encoding", ["gzip", "identity"])
@pytest.mark.parametrize("stream", [False, True])
async def test_raw_bytes_received_equal_recorded_bytes(
    fake: FakeUpstream, encoding: str, stream: bool
) -> None:
    async with (
        httpx.AsyncClient() as client,
        client.stream(
            "POST",
            f"{fake.url}/v1/messages",
            json=message_request(stream=stream),
            headers={"x-api-key": "k", "accept-encoding": encoding},
        ) as response,
    ):
        received = b"".join([chunk async for chunk in response.aiter_raw()])
    record = fake.responses[-1]
    assert record.complete
    assert received == record.raw
    plain = decoded_body(received, response.headers, encoding)
    assert (b"message_stop" in plain) is stream
    assert plain.startswith(b"event: message_start\n") is stream
    assert plain.startswith(b'{"id":"msg_') is not stream


async def test_gzip_stream_arrives_incrementally(fake: FakeUpstream) -> None:
    """Each SSE event is sync-flushed, so the first raw chunk decompresses on its own."""
    body = message_request(stream=True)
    headers = {"x-api-key": "k", "accept-encoding": "gzip", "x-fake-chunk-delay-ms": "40"}
    async with (
        httpx.AsyncClient() as client,
        client.stream("POST", f"{fake.url}/v1/messages", json=body, headers=headers) as response,
    ):
        chunks = response.aiter_raw()
        first = await anext(chunks)
        assert not fake.responses[-1].complete  # the server is still sending
        decoder = zlib.decompressobj(31)
        assert b"event: message_start" in decoder.decompress(first)
        rest = b"".join([chunk async for chunk in chunks])
    assert first + rest == fake.responses[-1].raw


async def test_forced_error_status(fake: FakeUpstream, sdk: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.APIStatusError) as info:
        await sdk.messages.create(**message_request(extra_headers={"x-fake-status": "529"}))
    assert info.value.status_code == 529
    assert info.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Forced error from the fake upstream"},
    }


async def test_delay_knob(fake: FakeUpstream, sdk: anthropic.AsyncAnthropic) -> None:
    started = time.perf_counter()
    await sdk.messages.create(**message_request(extra_headers={"x-fake-delay-ms": "300"}))
    assert time.perf_counter() - started >= 0.3


async def test_missing_key_and_bad_body_are_rejected_like_anthropic(fake: FakeUpstream) -> None:
    async with httpx.AsyncClient(base_url=fake.url) as client:
        no_key = await client.post("/v1/messages", json={"messages": []})
        bad = await client.post("/v1/messages", content=b"{nope", headers={"x-api-key": "k"})
    assert no_key.status_code == 401
    assert no_key.json()["error"]["type"] == "authentication_error"
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "invalid_request_error"


async def test_models_and_prefixed_routes(
    fake: FakeUpstream, sdk: anthropic.AsyncAnthropic
) -> None:
    models = await sdk.models.list()
    assert [m.id for m in models.data][0] == "claude-sonnet-4-20250514"
    async with anthropic.AsyncAnthropic(
        api_key="k", base_url=f"{fake.url}/anthropic", max_retries=0
    ) as prefixed:
        message = await prefixed.messages.create(**message_request("via prefix"))
    assert message.content[-1].type == "text"
    assert message.content[-1].text == "Echo: via prefix"
    assert fake.responses[-1].path == "/anthropic/v1/messages"


async def test_inspection_endpoint_matches_in_process_records(
    fake: FakeUpstream, sdk: anthropic.AsyncAnthropic
) -> None:
    await sdk.messages.create(**message_request("record me"))
    async with httpx.AsyncClient(base_url=fake.url) as client:
        rows = (await client.get("/__fake__/responses")).json()
        assert len(rows) == len(fake.responses) == 1
        row = rows[0]
        record = fake.responses[0]
        assert base64.b64decode(row["raw_b64"]) == record.raw
        assert base64.b64decode(row["request_body_b64"]) == record.request_body
        assert row["path"] == "/v1/messages"
        assert row["status"] == 200
        # This SDK version authenticates with a bearer token rather than x-api-key.
        sent = {k.lower(): v for k, v in row["request_headers"]}
        assert sent["authorization"] == "Bearer sk-test"
        assert (await client.delete("/__fake__/responses")).status_code == 204
        assert (await client.get("/__fake__/responses")).json() == []


def test_in_thread_serves_blocking_clients() -> None:
    with FakeUpstream().in_thread() as fake:
        client = anthropic.Anthropic(api_key="k", base_url=fake.url, max_retries=0)
        message = client.messages.create(**message_request("sync"))
        assert message.content[-1].type == "text"
        assert message.content[-1].text == "Echo: sync"
        assert len(fake.responses) == 1


def test_command_line_entrypoint_serves_and_stops_on_sigterm() -> None:
    port = free_port()
    proc = subprocess.Popen(
        fake_upstream.command(port),
        env={**os.environ},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/__fake__/health")
        client = anthropic.Anthropic(
            api_key="k", base_url=f"http://127.0.0.1:{port}", max_retries=0
        )
        message = client.messages.create(**message_request("cli"))
        assert message.content[-1].type == "text"
        assert message.content[-1].text == "Echo: cli"
        # One port fakes every provider, as ``smoltbot up --fake-upstream`` needs.
        url = f"http://127.0.0.1:{port}"
        oai = openai.OpenAI(api_key="k", base_url=f"{url}/openai/v1", max_retries=0)
        completion = oai.chat.completions.create(**chat_request("cli"))
        assert completion.choices[0].message.content == "Echo: cli"
        google = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=url))
        response = google.models.generate_content(model="gemini-2.5-flash", contents="cli")
        assert response.text == "Echo: cli"
        paths = [row["path"] for row in httpx.get(f"{url}/__fake__/responses").json()]
        assert paths == [
            "/v1/messages",
            "/openai/v1/chat/completions",
            "/v1/models/gemini-2.5-flash:generateContent",
        ]
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(10)
    assert code == 0
