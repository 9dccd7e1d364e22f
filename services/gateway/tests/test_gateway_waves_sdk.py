"""Waves 1 and 3 through the whole app in-process: the bodies the fake provider received show
each injection, untouched bodies stay byte for byte, and the official SDKs (anthropic, openai,
google-genai) still parse every answer, plain and streamed, with thinking and nudges injected."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import msgspec
import openai
import pytest
from google import genai
from google.genai import types
from redis.asyncio import Redis
from smoltbot_gateway.app import create_app
from smoltbot_gateway.nudges import NOTICE_HEADER
from smoltbot_testing import FakeUpstream
from smoltbot_testing.fake_upstream import thinking_for

from services.gateway.tests.waves_testkit import (
    add_nudge,
    agent_for,
    gateway_settings,
    key_headers,
    lifespan,
    nudge_records,
    raw_sent,
    sent_body,
    serving,
    set_config,
    transport,
)

QUESTION = "Which files mention the retry budget?"


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


def sdk_http(app: Any) -> httpx2.AsyncClient:
    """The anthropic and openai SDKs take only httpx2 clients."""
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app))


async def test_thinking_is_injected_per_provider_for_agents_with_aip(
    fake: FakeUpstream, redis: Redis, prefix: str, tmp: Path
) -> None:
    await set_config(redis, prefix, "k-aip-off", aip_enabled=False)
    app = create_app(gateway_settings(prefix, fake, tmp))
    anthropic_body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 3000,
        "messages": [{"role": "user", "content": "hi"}],
    }
    openai_body = {"model": "gpt-5-mini", "messages": [{"role": "user", "content": "hi"}]}
    gemini_body = {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "generationConfig": {"temperature": 0.2, "maxOutputTokens": 10_000},
    }
    calls = [
        ("anthropic", "/anthropic/v1/messages", anthropic_body),
        ("openai", "/openai/v1/chat/completions", openai_body),
        ("gemini", "/gemini/v1beta/models/gemini-2.5-flash:generateContent", gemini_body),
        (
            "gemini3",
            "/gemini/v1beta/models/gemini-3-pro-preview:streamGenerateContent",
            gemini_body,
        ),
    ]
    async with serving(app) as client:
        for name, path, body in calls:
            provider = name.removesuffix("3")
            for key in ("k-aip-on", "k-aip-off"):
                answer = await client.post(
                    path,
                    content=msgspec.json.encode(body),
                    headers={**key_headers(provider, key), "x-test-id": f"{prefix}{name}-{key}"},
                )
                assert answer.status_code == 200, answer.text
    assert sent_body(fake, f"{prefix}anthropic-k-aip-on") == {
        **anthropic_body,
        "thinking": {"type": "enabled", "budget_tokens": 1500},
    }
    assert sent_body(fake, f"{prefix}openai-k-aip-on") == {
        **openai_body,
        "reasoning_effort": "medium",
    }
    assert sent_body(fake, f"{prefix}gemini-k-aip-on")["generationConfig"] == {
        "temperature": 0.2,
        "maxOutputTokens": 10_000,
        "thinkingConfig": {"thinkingBudget": 5000, "includeThoughts": True},
    }
    assert sent_body(fake, f"{prefix}gemini3-k-aip-on")["generationConfig"]["thinkingConfig"] == {
        "thinkingLevel": "HIGH",
        "includeThoughts": True,
    }
    for name, _, body in calls:  # aip_enabled false: the exact bytes the client sent
        assert raw_sent(fake, f"{prefix}{name}-k-aip-off") == msgspec.json.encode(body)


async def test_the_anthropic_sdk_parses_answers_with_thinking_and_nudges_injected(
    fake: FakeUpstream, redis: Redis, prefix: str, tmp: Path
) -> None:
    key = "sk-ant-sdk-waves"
    agent = await set_config(redis, prefix, key, enforcement_mode="nudge")
    now = int(time.time() * 1000)
    await add_nudge(redis, prefix, agent, "n-ant-1", now - 2000, "first notice")
    app = create_app(gateway_settings(prefix, fake, tmp))
    async with lifespan(app), sdk_http(app) as http:
        client = anthropic.AsyncAnthropic(
            api_key=key, base_url="http://gateway/anthropic", http_client=http, max_retries=0
        )
        raw = await client.messages.with_raw_response.create(
            model="claude-test",
            max_tokens=4096,
            system=[{"type": "text", "text": "You are terse."}],
            messages=[{"role": "user", "content": QUESTION}],
            extra_headers={"x-test-id": f"{prefix}ant-plain"},
        )
        message = await raw.parse()
        assert raw.headers["x-aip-nudge-count"] == "1"
        assert [b.type for b in message.content] == ["thinking", "text"]
        assert message.content[0].thinking == thinking_for(QUESTION)  # type: ignore[union-attr]
        await add_nudge(redis, prefix, agent, "n-ant-2", now - 1000, "second notice")
        async with client.messages.stream(
            model="claude-test",
            max_tokens=8192,
            system="You are terse.",
            messages=[{"role": "user", "content": QUESTION}],
            extra_headers={"x-test-id": f"{prefix}ant-stream"},
        ) as stream:
            final = await stream.get_final_message()
        assert final.content[-1].text == f"Echo: {QUESTION}"  # type: ignore[union-attr]
    plain = sent_body(fake, f"{prefix}ant-plain")
    assert plain["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert plain["system"] == [
        {"type": "text", "text": "You are terse."},
        {"type": "text", "text": f"{NOTICE_HEADER}\nfirst notice"},
    ]
    streamed = sent_body(fake, f"{prefix}ant-stream")
    assert streamed["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert streamed["system"] == f"You are terse.\n\n{NOTICE_HEADER}\nsecond notice"
    assert {r.status for r in (await nudge_records(redis, prefix, agent)).values()} == {"delivered"}


async def test_the_openai_sdk_parses_answers_with_reasoning_and_nudges_injected(
    fake: FakeUpstream, redis: Redis, prefix: str, tmp: Path
) -> None:
    key = "sk-openai-sdk-waves"
    agent = await set_config(redis, prefix, key, enforcement_mode="nudge")
    now = int(time.time() * 1000)
    await add_nudge(redis, prefix, agent, "n-oai-1", now - 2000, "openai notice")
    app = create_app(gateway_settings(prefix, fake, tmp))
    messages: Any = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": QUESTION},
    ]
    async with lifespan(app), sdk_http(app) as http:
        client = openai.AsyncOpenAI(
            api_key=key, base_url="http://gateway/openai/v1", http_client=http, max_retries=0
        )
        stream = await client.chat.completions.create(
            model="gpt-5",
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"x-test-id": f"{prefix}oai-stream"},
        )
        chunks = [chunk async for chunk in stream]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == f"Echo: {QUESTION}"
        completion = await client.chat.completions.create(
            model="o4-mini",
            messages=[{"role": "user", "content": QUESTION}],
            extra_headers={"x-test-id": f"{prefix}oai-plain"},
        )
        assert completion.choices[0].message.content == f"Echo: {QUESTION}"
    streamed = sent_body(fake, f"{prefix}oai-stream")
    assert streamed["reasoning_effort"] == "medium"
    assert streamed["messages"][0] == {
        "role": "system",
        "content": f"Be brief.\n\n{NOTICE_HEADER}\nopenai notice",
    }
    assert sent_body(fake, f"{prefix}oai-plain")["reasoning_effort"] == "medium"
    assert sent_body(fake, f"{prefix}oai-plain")["messages"][0]["role"] == "user"


async def test_the_genai_sdk_parses_answers_with_thinking_and_nudges_injected(
    fake: FakeUpstream, redis: Redis, prefix: str, tmp: Path
) -> None:
    key = "AIza-genai-sdk-waves"
    agent = await set_config(redis, prefix, key, enforcement_mode="nudge")
    now = int(time.time() * 1000)
    await add_nudge(redis, prefix, agent, "n-gem-1", now - 2000, "gemini notice")
    app = create_app(gateway_settings(prefix, fake, tmp))
    async with lifespan(app), httpx.AsyncClient(transport=transport(app)) as http:
        client = genai.Client(
            api_key=key,
            http_options=types.HttpOptions(
                base_url="http://gateway/gemini", httpx_async_client=http
            ),
        )
        config = types.GenerateContentConfig(
            system_instruction="Answer in one line.",
            temperature=0.1,
            http_options=types.HttpOptions(headers={"x-test-id": f"{prefix}gem-plain"}),
        )
        response = await client.aio.models.generate_content(
            model="gemini-2.5-flash", contents=QUESTION, config=config
        )
        parts = response.candidates[0].content.parts  # type: ignore[index, union-attr]
        assert [p.thought for p in parts] == [True, None]  # type: ignore[union-attr]
        assert response.text == f"Echo: {QUESTION}"
        streamed = [
            chunk
            async for chunk in await client.aio.models.generate_content_stream(
                model="gemini-3-pro-preview",
                contents=QUESTION,
                config=types.GenerateContentConfig(
                    http_options=types.HttpOptions(headers={"x-test-id": f"{prefix}gem-stream"})
                ),
            )
        ]
        thought = "".join(
            p.text or ""
            for c in streamed
            for p in c.candidates[0].content.parts or ()  # type: ignore[index, union-attr]
            if p.thought
        )
        assert thought == thinking_for(QUESTION)
    plain = sent_body(fake, f"{prefix}gem-plain")
    assert plain["generationConfig"] == {
        "temperature": 0.1,
        "thinkingConfig": {"thinkingBudget": 16384, "includeThoughts": True},
    }
    assert plain["systemInstruction"]["parts"] == [
        {"text": "Answer in one line."},
        {"text": f"{NOTICE_HEADER}\ngemini notice"},
    ]
    stream_body = sent_body(fake, f"{prefix}gem-stream")
    assert stream_body["generationConfig"]["thinkingConfig"]["thinkingLevel"] == "HIGH"
    assert "systemInstruction" not in stream_body  # the one nudge went with the first call
    assert agent == agent_for(key)
