"""The worker runtime's waits (one Backoff, stop-aware) and its SIGTERM drain."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from smoltbot_bus import ConsumerConfig, WorkerRuntime
from smoltbot_config import CommonSettings
from smoltbot_contracts.streams import stream_key
from smoltbot_testing.events import agent_event as agent

from libs.bus.tests.bus_testkit import Slow, add, pending


def runtime(redis_url: str, prefix: str) -> WorkerRuntime:
    settings = CommonSettings(redis_url=redis_url, stream_prefix=prefix, drain_timeout_s=5.0)
    return WorkerRuntime("bus-test", settings, port=0)


async def test_waiting_for_an_unreachable_redis_ends_on_stop(prefix: str) -> None:
    rt = runtime("redis://127.0.0.1:1/0", prefix)
    waiting = asyncio.create_task(rt.wait_for_redis())
    await asyncio.sleep(0.5)  # a few failed PINGs, retried with backoff
    assert not waiting.done()
    rt.request_stop()
    await asyncio.wait_for(waiting, 1)
    await rt.redis.aclose()


async def test_run_consumer_drains_the_batch_in_hand_on_stop(redis: Redis, prefix: str) -> None:
    rt = runtime("redis://127.0.0.1:6379/0", prefix)
    key = stream_key(prefix, "agents")
    await add(redis, key, [agent(1)])
    slow = Slow(0.3)
    task = asyncio.create_task(rt.run_consumer(ConsumerConfig(group="g", streams=["agents"]), slow))
    await slow.started.wait()
    rt.request_stop()  # SIGTERM mid-batch: the batch is finished and acked, then we return
    await asyncio.wait_for(task, 5)
    assert await pending(redis, key) == 0
    await rt.redis.aclose()
