"""The app in-process (Litestar test client) against a real fake upstream and real Redis.

Covers what needs odd wiring: an unreachable upstream, a dead Redis, a Redis that never answers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec
import pytest
import redis
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from smoltbot_config import load_settings
from smoltbot_contracts import AgentConfig, ExchangeV1
from smoltbot_contracts.codec import decode_fields
from smoltbot_contracts.errors import ERROR_STATUS
from smoltbot_contracts.ids import agent_hash, agent_id
from smoltbot_contracts.streams import EXCHANGES, cfg_key, stream_key
from smoltbot_gateway.agent_config import DEFAULT_CONFIG, ConfigReader
from smoltbot_gateway.app import create_app
from smoltbot_gateway.resources import GatewayResources
from smoltbot_gateway.settings import GatewaySettings
from smoltbot_health import Health
from smoltbot_testing import FakeUpstream, free_port
from smoltbot_testing.env import REDIS_URL
from smoltbot_testing.faults import SilentServer

MESSAGE = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "in process"}]}


def settings(**env: str) -> GatewaySettings:
    return load_settings(GatewaySettings, {"REDIS_URL": REDIS_URL, **env})


@pytest.fixture
async def async_redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def test_upstream_unreachable_is_502_and_still_an_exchange(
    prefix: str, redis_client: redis.Redis
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    app = create_app(
        settings(
            SMOLTBOT_UPSTREAM_ANTHROPIC_URL=dead,
            SMOLTBOT_STREAM_PREFIX=prefix,
            SMOLTBOT_GATEWAY_UPSTREAM_CONNECT_RETRIES="1",
        )
    )
    async with AsyncTestClient(app) as client:
        response = await client.post(
            "/anthropic/v1/messages", json=MESSAGE, headers={"x-api-key": "k-502"}
        )
        assert response.status_code == 502
        assert response.json()["type"] == "upstream_error"
        assert response.json()["message"] == "upstream unreachable"
        assert response.json()["error"]["message"] == "upstream unreachable"
        assert "127.0.0.1" not in response.text  # internal addresses never reach the client
        event_id = response.headers["x-smoltbot-event-id"]
    # the lifespan's publisher.close() flushed the buffer
    entries = redis_client.xrange(stream_key(prefix, EXCHANGES))
    events = [decode_fields(fields) for _, fields in entries]
    exchange = next(e for e in events if isinstance(e, ExchangeV1) and e.event_id == event_id)
    assert exchange.meta.status == 502
    assert exchange.user_query == "in process"


async def test_dead_redis_never_fails_or_slows_a_call(fake: FakeUpstream) -> None:
    app = create_app(
        settings(
            REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
            SMOLTBOT_UPSTREAM_ANTHROPIC_URL=fake.url,
        )
    )
    async with AsyncTestClient(app) as client:
        for _ in range(3):
            started = time.perf_counter()
            response = await client.post(
                "/anthropic/v1/messages", json=MESSAGE, headers={"x-api-key": "k-dead-redis"}
            )
            assert response.status_code == 200
            assert response.json()["content"][-1]["text"] == "Echo: in process"
            assert time.perf_counter() - started < 1.0
        assert (await client.get("/health/ready")).status_code == 200
        assert (await client.get("/health/live")).status_code == 200


async def test_config_reader_defaults_decodes_and_ignores_garbage(
    prefix: str, async_redis: Redis
) -> None:
    reader = ConfigReader(async_redis, prefix)
    assert await reader.get("smolt-missing") == DEFAULT_CONFIG
    paused = AgentConfig(containment="paused", enforcement_mode="enforce", cfg_version=3)
    await async_redis.hset(cfg_key(prefix, "smolt-a"), "b", msgspec.msgpack.encode(paused))
    assert await reader.get("smolt-a") == paused
    await async_redis.hset(cfg_key(prefix, "smolt-a"), "b", b"\xc1garbage")
    assert await reader.get("smolt-a") == paused  # last known beats a corrupt entry


async def test_config_reader_times_out_fast_and_backs_off(prefix: str, async_redis: Redis) -> None:
    killed = AgentConfig(containment="killed")
    await async_redis.hset(cfg_key(prefix, "smolt-k"), "b", msgspec.msgpack.encode(killed))
    now = [1000.0]
    reader = ConfigReader(async_redis, prefix, timeout_s=0.05, backoff_s=5.0, clock=lambda: now[0])
    assert await reader.get("smolt-k") == killed

    async with SilentServer() as hole:
        hung = Redis(host="127.0.0.1", port=hole.port, socket_connect_timeout=1, socket_timeout=5)
        reader._redis = hung  # same reader, its Redis now hangs
        started = time.perf_counter()
        assert await reader.get("smolt-k") == killed  # last known
        assert await reader.get("smolt-new") == DEFAULT_CONFIG
        assert time.perf_counter() - started < 0.3  # one timeout, then the back-off skips Redis
        now[0] += 6.0  # back-off over: the next read tries Redis again (and times out again)
        started = time.perf_counter()
        assert await reader.get("smolt-k") == killed
        assert time.perf_counter() - started >= 0.04
        await hung.aclose()


async def test_provider_prefix_must_be_a_whole_segment(fake: FakeUpstream, prefix: str) -> None:
    app = create_app(
        settings(SMOLTBOT_UPSTREAM_ANTHROPIC_URL=fake.url, SMOLTBOT_STREAM_PREFIX=prefix)
    )
    async with AsyncTestClient(app) as client:
        response = await client.post("/anthropicx/v1/messages", json=MESSAGE)
        assert response.status_code == 404
        assert response.json()["type"] == "not_found"
        proxied = await client.get("/anthropic/v1/models", headers={"x-api-key": "k"})
        assert proxied.status_code == 200
        assert proxied.json()["data"][0]["id"] == "claude-sonnet-4-20250514"


async def test_every_error_answer_is_in_the_catalogue_with_its_status(
    prefix: str, redis_client: redis.Redis
) -> None:
    contained = "k-contained"
    redis_client.hset(
        cfg_key(prefix, agent_id(agent_hash(contained))),
        "b",
        msgspec.msgpack.encode(AgentConfig(containment="killed")),
    )
    app = create_app(
        settings(
            SMOLTBOT_UPSTREAM_ANTHROPIC_URL=f"http://127.0.0.1:{free_port()}",  # nobody listens
            SMOLTBOT_STREAM_PREFIX=prefix,
            SMOLTBOT_GATEWAY_UPSTREAM_CONNECT_RETRIES="0",
            SMOLTBOT_GATEWAY_MAX_REQUEST_BYTES="1024",
        )
    )
    messages = "/anthropic/v1/messages"
    async with AsyncTestClient(app) as client:
        answers = {
            "authentication_error": await client.post(messages, json=MESSAGE),
            "containment_error": await client.post(
                messages, json=MESSAGE, headers={"x-api-key": contained}
            ),
            "not_found": await client.get("/nope"),
            "method_not_allowed": await client.post("/health/live"),
            "request_too_large": await client.post(
                messages, content=b"x" * 2048, headers={"x-api-key": "k-big"}
            ),
            "invalid_request_error": await client.post(
                "/anthropic/v1/%2e%2e/%2E%2e/admin", json=MESSAGE, headers={"x-api-key": "k"}
            ),
            "upstream_error": await client.post(
                messages, json=MESSAGE, headers={"x-api-key": "k-up"}
            ),
        }
    for error_type, response in answers.items():
        assert response.json()["type"] == error_type, response.text
        assert response.status_code == ERROR_STATUS[error_type]
        assert response.headers["content-type"] == "application/json"
    assert answers["containment_error"].json()["reason"] == "agent_killed"
    assert answers["not_found"].json()["message"].startswith("This gateway handles")


async def test_a_starting_gateway_says_service_unavailable() -> None:
    app = create_app(settings())
    # No lifespan has run: the resources are not open, so the proxy is not there yet.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        response = await client.post(
            "/anthropic/v1/messages", json=MESSAGE, headers={"x-api-key": "k"}
        )
    assert response.status_code == 503
    assert response.json() == {
        "error": {"type": "service_unavailable", "message": "Gateway starting"},
        "type": "service_unavailable",
        "message": "Gateway starting",
    }
    assert ERROR_STATUS["service_unavailable"] == 503


class RecordingUpstream:
    """An upstream client double that records its life cycle and can fail to start."""

    def __init__(self, *, fail_start: bool = False) -> None:
        self.fail_start = fail_start
        self.calls: list[str] = []

    async def start(self) -> None:
        self.calls.append("start")
        if self.fail_start:
            raise RuntimeError("upstream client cannot start")

    async def send(self, *_: object) -> None:
        raise AssertionError("not called in these tests")

    async def close(self) -> None:
        self.calls.append("close")


def publisher_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("publisher-")]


async def test_resources_open_in_order_and_close_in_reverse(prefix: str, tmp_path: Path) -> None:
    health = Health("gateway")
    upstream = RecordingUpstream()
    config = settings(SMOLTBOT_STREAM_PREFIX=prefix, SMOLTBOT_SPOOL_DIR=str(tmp_path))
    async with GatewayResources.open(config, health, upstream=upstream) as resources:
        assert health.started
        assert resources.state.upstreams["anthropic"] is upstream
        assert publisher_tasks()  # the publisher is running
        assert upstream.calls == ["start"]
    assert upstream.calls == ["start", "close"]
    assert (await health.ready()).body["status"] == "draining"
    assert publisher_tasks() == []


async def test_resources_opened_before_a_failing_step_are_closed(
    prefix: str, tmp_path: Path
) -> None:
    health = Health("gateway")
    upstream = RecordingUpstream(fail_start=True)
    config = settings(SMOLTBOT_STREAM_PREFIX=prefix, SMOLTBOT_SPOOL_DIR=str(tmp_path))
    with pytest.raises(RuntimeError, match="cannot start"):
        async with GatewayResources.open(config, health, upstream=upstream):
            raise AssertionError("the body must not run when opening failed")
    assert upstream.calls == ["start", "close"]  # a half-started client is closed too
    assert publisher_tasks() == []  # the publisher opened before it was closed again
    assert not health.started


async def test_config_reader_caches_refreshes_and_bounds_staleness(
    prefix: str, async_redis: Redis
) -> None:
    """A config is reused for ttl_s; just past it, served once more while refreshed; well past
    it, read before the call proceeds (a pause reaches every call within ttl + grace)."""
    now = [100.0]
    reader = ConfigReader(async_redis, prefix, ttl_s=0.5, grace_s=0.5, clock=lambda: now[0])
    key = cfg_key(prefix, "smolt-c")
    paused = AgentConfig(containment="paused")
    assert await reader.get("smolt-c") == DEFAULT_CONFIG
    await async_redis.hset(key, "b", msgspec.msgpack.encode(paused))
    now[0] += 0.4
    assert await reader.get("smolt-c") == DEFAULT_CONFIG  # still fresh: no round trip
    now[0] += 0.2  # past the TTL, within the grace: served stale, refreshed in the background
    assert await reader.get("smolt-c") == DEFAULT_CONFIG
    for _ in range(100):
        await asyncio.sleep(0.01)
        if await reader.get("smolt-c") == paused:
            break
    assert await reader.get("smolt-c") == paused
    await async_redis.hset(key, "b", msgspec.msgpack.encode(AgentConfig()))
    now[0] += 5.0  # long past TTL + grace: read now, never served stale
    assert await reader.get("smolt-c") == AgentConfig()
