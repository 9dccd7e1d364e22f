"""The worker runtime's waits (one Backoff, stop-aware) and its SIGTERM drain."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from redis.asyncio import Redis
from smoltbot_bus import ConsumerConfig, Delivery, Output, WorkerRuntime
from smoltbot_bus._consumer import Consumer
from smoltbot_config import CommonSettings
from smoltbot_contracts.streams import stream_key
from smoltbot_testing.events import agent_event as agent

from libs.bus.tests.bus_testkit import Slow, add, nothing, pending

LANE = "c:priority"  # the second lane's consumer name


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


async def test_a_lane_of_its_own_is_served_while_the_other_is_held(
    redis: Redis, prefix: str
) -> None:
    """Two consumers of one group in one process: entries of the priority lane are handled
    while the bulk lane is still busy with a slow batch; one stop drains both."""
    rt = runtime("redis://127.0.0.1:6379/0", prefix)
    bulk, fast = stream_key(prefix, "agents"), stream_key(prefix, "agents:priority")
    await add(redis, bulk, [agent(1)])
    slow = Slow(3.0)
    handled: list[int] = []

    async def quick(batch: Sequence[Delivery]) -> Sequence[Output]:
        handled.append(len(batch))
        return []

    lanes = [
        (ConsumerConfig(group="g", streams=["agents"]), slow),
        (ConsumerConfig(group="g", streams=["agents:priority"], consumer_name=LANE), quick),
    ]
    task = asyncio.create_task(rt.run_consumers(lanes))
    await slow.started.wait()
    await add(redis, fast, [agent(2)])
    async with asyncio.timeout(2):  # well before the slow batch ends
        while not handled:
            await asyncio.sleep(0.02)
    assert not task.done()
    rt.request_stop()
    await asyncio.wait_for(task, 6)
    assert await pending(redis, bulk) == 0  # the slow batch was finished and acked
    assert await pending(redis, fast) == 0
    await rt.redis.aclose()


async def test_a_crashed_lane_stops_the_others_and_is_raised(
    redis: Redis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = runtime("redis://127.0.0.1:6379/0", prefix)
    run = Consumer.run

    async def crashing(self: Consumer) -> None:
        if self.name == LANE:
            await asyncio.sleep(0.2)
            raise SystemError("a bug in the consume loop")
        await run(self)

    monkeypatch.setattr(Consumer, "run", crashing)
    lanes = [
        (ConsumerConfig(group="g", streams=["agents"]), nothing),
        (
            ConsumerConfig(group="g", streams=["agents:priority"], consumer_name="c:priority"),
            nothing,
        ),
    ]
    with pytest.raises(SystemError):
        await asyncio.wait_for(rt.run_consumers(lanes), 10)  # the healthy lane stopped too
    assert rt.stop_requested.is_set()
    await rt.redis.aclose()


def test_lanes_give_priority_streams_a_consumer_of_their_own() -> None:
    config = ConsumerConfig(group="g", streams=["x:priority", "x"], batch_size=50)
    bulk, fast = config.lanes("c-1")
    assert (list(bulk.streams), bulk.consumer_name, bulk.batch_size) == (["x"], None, 50)
    assert (list(fast.streams), fast.consumer_name, fast.batch_size) == (
        ["x:priority"],
        "c-1:priority",
        8,
    )
    assert ConsumerConfig(group="g", streams=["x"]).lanes("c-1") == [
        ConsumerConfig(group="g", streams=["x"])
    ]
