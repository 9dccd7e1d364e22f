"""Against the real Redis on 127.0.0.1:6379: exchange.v1 in, trace.v1 out, acked, DLQ for junk.

Every test uses its own key prefix and deletes its keys afterwards; the shared Redis is never
flushed or reconfigured.
"""

from __future__ import annotations

import os

import msgspec
from redis.asyncio import Redis
from smoltbot_bus import WorkerRuntime
from smoltbot_contracts import AgentV1, CardRecord, TraceV1
from smoltbot_contracts.codec import decode_fields, to_fields
from smoltbot_contracts.ids import trace_event_id, trace_id, uuid7
from smoltbot_contracts.streams import card_key, dlq_key, stream_key
from smoltbot_observer.settings import ObserverSettings
from smoltbot_observer.worker import build_handler, consumer_config
from smoltbot_testing.env import REDIS_URL
from smoltbot_testing.keys import wait_for_entries
from smoltbot_testing.net import free_port
from smoltbot_testing.procs import run_entrypoint
from smoltbot_testing.workers import consuming, first_output, unacked

from services.observer.tests.observer_fixtures import (
    AGENT,
    COMPLETED_AT,
    anthropic_json,
    make_exchange,
)

BODY = anthropic_json(
    {"type": "thinking", "thinking": "Need the forecast."},
    {"type": "tool_use", "id": "t", "name": "get_weather", "input": {"location": "SF"}},
)


async def test_worker_turns_exchanges_into_traces(prefix: str, redis: Redis) -> None:
    settings = ObserverSettings(
        redis_url=REDIS_URL, stream_prefix=prefix, consumer_name="observer-test", port=free_port()
    )
    card = CardRecord(card_id="ac-stored", card={"values": {"declared": ["transparency"]}})
    await redis.set(card_key(prefix, AGENT), msgspec.msgpack.encode(card))
    normal = make_exchange(BODY, exchange_id=uuid7(), user_query="Weather in SF?")
    waiting = make_exchange(BODY, exchange_id=uuid7(), reply_to=f"{prefix}replies:gw-1")
    failed = make_exchange(b'{"type":"error"}', exchange_id=uuid7(), status=529)
    junk = AgentV1(event_id=uuid7(), agent_id=AGENT, agent_hash="h", seen_at=COMPLETED_AT)
    for event in (normal, failed, junk):
        await redis.xadd(stream_key(prefix, "exchanges"), to_fields(event))  # type: ignore[arg-type]
    await redis.xadd(stream_key(prefix, "exchanges:priority"), to_fields(waiting))  # type: ignore[arg-type]

    async with (
        WorkerRuntime("observer", settings, port=settings.port) as rt,
        consuming(
            rt,
            consumer_config(settings).lanes(rt.consumer_name),
            build_handler(rt.redis, settings),
        ),
    ):
        traces = await wait_for_entries(redis, stream_key(prefix, "traces"), 2)
        priority = await wait_for_entries(redis, stream_key(prefix, "traces:priority"), 1)
        dead = await wait_for_entries(redis, dlq_key(prefix, "exchanges"), 1)

    by_id = {}
    for _, fields in traces:
        event = decode_fields(fields)
        assert isinstance(event, TraceV1)
        by_id[event.meta.exchange_id] = event
    assert set(by_id) == {normal.event_id, failed.event_id}

    traced = by_id[normal.event_id]
    assert traced.event_id == trace_event_id(normal.event_id)
    assert traced.trace is not None
    assert traced.trace.trace_id == trace_id(normal.event_id)
    assert traced.trace.card_id == "ac-stored"
    assert traced.trace.action.name == "get_weather"
    assert traced.trace.decision.values_applied == ["transparency"]
    assert traced.thinking == "Need the forecast."
    assert by_id[failed.event_id].trace is None

    waited = decode_fields(priority[0][1])
    assert isinstance(waited, TraceV1)
    assert waited.reply_to == f"{prefix}replies:gw-1"
    assert waited.meta.exchange_id == waiting.event_id
    assert len(dead) == 1

    assert await unacked(redis, prefix, "observer", "exchanges", "exchanges:priority") == {}


async def test_entrypoint_process_serves_probes_and_drains_on_sigterm(
    prefix: str, redis: Redis
) -> None:
    exchange = make_exchange(BODY, exchange_id=uuid7(), user_query="q")
    event = await first_output(
        "observer", redis, prefix, exchange, source="exchanges", output="traces"
    )
    assert isinstance(event, TraceV1)
    assert event.meta.exchange_id == exchange.event_id


def test_entrypoint_exits_2_on_bad_environment() -> None:
    env = {**os.environ, "SMOLTBOT_OBSERVER_PORT": "not-a-port", "REDIS_URL": "http://x"}
    result = run_entrypoint("observer", env)
    assert result.returncode == 2
    assert "SMOLTBOT_OBSERVER_PORT" in result.stderr
    assert "REDIS_URL" in result.stderr
