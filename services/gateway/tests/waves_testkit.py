"""Helpers for the gateway's wave tests (thinking, nudges, enforce mode; a unique module name:
test dirs are not packages): the app with its lifespan in the test's loop, agent configs and
nudges written the way the api and the verifier write them, and the bodies the fake provider
received."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import msgspec
from redis.asyncio import Redis
from smoltbot_config import load_settings
from smoltbot_contracts import AgentConfig, Nudge
from smoltbot_contracts.ids import agent_hash, agent_id
from smoltbot_contracts.streams import cfg_key, nudges_key, nudges_pending_key
from smoltbot_gateway.app import GatewayApp
from smoltbot_gateway.settings import GatewaySettings
from smoltbot_testing import FakeUpstream
from smoltbot_testing.env import REDIS_URL

PATHS = {
    "anthropic": "/anthropic/v1/messages",
    "openai": "/openai/v1/chat/completions",
    "gemini": "/gemini/v1beta/models/gemini-2.5-flash:generateContent",
}
HOUR_MS = 3_600_000


def key_headers(provider: str, key: str) -> dict[str, str]:
    if provider == "openai":
        return {"authorization": f"Bearer {key}"}
    if provider == "gemini":
        return {"x-goog-api-key": key}
    return {"x-api-key": key}


def request_body(provider: str, text: str, **extra: Any) -> dict[str, Any]:
    """The smallest generation request of ``provider`` (no thinking injected: Anthropic's
    max_tokens is below 2048, OpenAI's model is no reasoning model, Gemini's config is set)."""
    if provider == "gemini":
        return {
            "contents": [{"role": "user", "parts": [{"text": text}]}],
            "generationConfig": {"thinkingConfig": {"includeThoughts": True}},
            **extra,
        }
    if provider == "openai":
        return {"model": "gpt-4o", "messages": [{"role": "user", "content": text}], **extra}
    return {
        "model": "m",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def gateway_settings(prefix: str, fake: FakeUpstream, tmp: Path, **env: str) -> GatewaySettings:
    return load_settings(
        GatewaySettings,
        {
            "REDIS_URL": REDIS_URL,
            "SMOLTBOT_STREAM_PREFIX": prefix,
            "SMOLTBOT_UPSTREAM_ANTHROPIC_URL": fake.url,
            "SMOLTBOT_UPSTREAM_OPENAI_URL": fake.url,
            "SMOLTBOT_UPSTREAM_GEMINI_URL": fake.url,
            "SMOLTBOT_SPOOL_DIR": str(tmp / "spool"),
            **env,
        },
    )


@asynccontextmanager
async def lifespan(app: GatewayApp) -> AsyncIterator[None]:
    """Run the app's lifespan in this event loop (its resources open)."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, outbox.put)  # type: ignore[arg-type]
    )
    await inbox.put({"type": "lifespan.startup"})
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        assert (await outbox.get())["type"] == "lifespan.shutdown.complete"
        await task


def transport(app: GatewayApp) -> httpx.ASGITransport:
    return httpx.ASGITransport(app=app)  # type: ignore[arg-type]


@asynccontextmanager
async def serving(app: GatewayApp) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running and an HTTP client on it, in this loop (as granian
    runs them: Litestar's test client would run the lifespan in a thread and loop of its own)."""
    client = httpx.AsyncClient(transport=transport(app), base_url="http://gateway", timeout=20)
    async with lifespan(app), client:
        yield client


def agent_for(key: str) -> str:
    return agent_id(agent_hash(key))


async def set_config(redis: Redis, prefix: str, key: str, **fields: Any) -> str:
    """Write ``cfg:{agent}`` of the agent behind ``key`` as the api does; its id."""
    agent = agent_for(key)
    config = msgspec.msgpack.encode(AgentConfig(**fields))
    await redis.hset(cfg_key(prefix, agent), "b", config)  # type: ignore[misc]
    return agent


async def add_nudge(
    redis: Redis, prefix: str, agent: str, nudge_id: str, created_ms: int, text: str = ""
) -> Nudge:
    """A pending nudge as the verifier writes it (hash field + pending index)."""
    nudge = Nudge(
        id=nudge_id,
        agent_id=agent,
        checkpoint_id=f"ic-{nudge_id}",
        exchange_id=f"ex-{nudge_id}",
        session_id="s-1",
        text=text or f"Your previous response (checkpoint ic-{nudge_id}) was flagged.",
        created_ms=created_ms,
    )
    await redis.hset(nudges_key(prefix, agent), nudge_id, msgspec.json.encode(nudge))  # type: ignore[misc]
    await redis.zadd(nudges_pending_key(prefix, agent), {nudge_id: created_ms})
    return nudge


async def nudge_records(redis: Redis, prefix: str, agent: str) -> dict[str, Nudge]:
    raw: dict[bytes, bytes] = await redis.hgetall(nudges_key(prefix, agent))  # type: ignore[misc]
    return {k.decode(): msgspec.json.decode(v, type=Nudge) for k, v in raw.items()}


async def pending_ids(redis: Redis, prefix: str, agent: str) -> list[str]:
    return [i.decode() for i in await redis.zrange(nudges_pending_key(prefix, agent), 0, -1)]


def sent_bodies(fake: FakeUpstream, marker: str) -> list[dict[str, Any]]:
    """The JSON bodies the fake provider received on requests with ``x-test-id: marker``."""
    return [
        msgspec.json.decode(r.request_body)
        for r in fake.responses
        if r.request_header("x-test-id") == marker
    ]


def sent_body(fake: FakeUpstream, marker: str) -> dict[str, Any]:
    (body,) = sent_bodies(fake, marker)
    return body


def raw_sent(fake: FakeUpstream, marker: str) -> bytes:
    (record,) = [r for r in fake.responses if r.request_header("x-test-id") == marker]
    return record.request_body
