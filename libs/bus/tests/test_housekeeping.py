"""Housekeeping as its own task, against the real Redis."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import REGISTRY
from redis.asyncio import Redis
from smoltbot_bus import Consumer, ConsumerConfig, redis_client
from smoltbot_bus._entries import Member
from smoltbot_bus._heartbeat import Heartbeat, heartbeat_key
from smoltbot_bus._housekeeping import Housekeeper
from smoltbot_contracts.streams import dlq_key, stream_key
from smoltbot_testing.events import agent_event as agent

from libs.bus.tests.bus_testkit import Slow, add, fast_config, running, until

CONFIG = fast_config(group="hk", housekeeping_interval_s=60, stale_group_s=60)


def housekeeper(redis: Redis, prefix: str, config: ConsumerConfig = CONFIG) -> Housekeeper:
    member = Member(redis, prefix, config, "me")
    return Housekeeper(member, Heartbeat(member))


def lag() -> float | None:
    return REGISTRY.get_sample_value("smoltbot_bus_lag", {"stream": "agents", "group": "hk"})


async def test_the_task_beats_the_group_and_exports_lag_until_stopped(
    redis: Redis, prefix: str
) -> None:
    key = stream_key(prefix, "agents")
    await add(redis, key, [agent(1)])
    await redis.xgroup_create(key, "hk", id="0")
    stop = asyncio.Event()
    task = asyncio.create_task(housekeeper(redis, prefix).run(stop))
    await until(lambda: lag() == 1, timeout=5)
    assert await redis.exists(heartbeat_key(prefix, "agents", "hk"))
    await add(redis, key, [agent(2)])
    await until(lambda: lag() == 2, timeout=5)  # every claim_interval_s, not once
    stop.set()
    await asyncio.wait_for(task, 1)


async def test_a_round_expires_dead_letters_and_drops_idle_consumers(
    redis: Redis, prefix: str
) -> None:
    key, dlq = stream_key(prefix, "agents"), dlq_key(prefix, "agents")
    old_ms = int(time.time() * 1000) - 8 * 24 * 3600 * 1000
    for i in range(200):
        await redis.xadd(dlq, {b"reason": b"x"}, id=f"{old_ms + i}-0")
    await add(redis, key, [agent(1)])
    await redis.xgroup_create(key, "hk", id="0")
    await redis.xgroup_createconsumer(key, "hk", "gone")
    await asyncio.sleep(1.05)
    config = ConsumerConfig(group="hk", streams=["agents"], stale_group_s=1)
    await housekeeper(redis, prefix, config).run_once()
    assert int(await redis.xlen(dlq)) < 200
    assert await redis.xinfo_consumers(key, "hk") == []


async def test_a_redis_outage_skips_rounds_without_ending_the_task(prefix: str) -> None:
    dead = redis_client("redis://127.0.0.1:1/0")
    stop = asyncio.Event()
    task = asyncio.create_task(housekeeper(dead, prefix).run(stop))
    await asyncio.sleep(0.3)
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, 1)
    await dead.aclose()


async def test_the_consumer_keeps_housekeeping_while_a_handler_is_busy(
    redis: Redis, prefix: str
) -> None:
    key = stream_key(prefix, "agents")
    slow = Slow(1.0)
    async with running(Consumer(redis, prefix, CONFIG, slow, consumer_name="c")):
        await add(redis, key, [agent(1)])
        await slow.started.wait()
        await add(redis, key, [agent(i + 2) for i in range(3)])
        await until(lambda: lag() == 3, timeout=0.8)  # well before the handler returns
