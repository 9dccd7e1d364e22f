"""Publisher and consumer against the real Redis: acks, relay atomicity, DLQ, recovery."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from redis.asyncio import Redis
from smoltbot_bus import (
    Consumer,
    ConsumerConfig,
    Delivery,
    InvalidEvent,
    Output,
    Publisher,
    Retryable,
)
from smoltbot_contracts import ControlV1
from smoltbot_contracts.codec import decode_fields, to_fields
from smoltbot_contracts.streams import dlq_key, stream_key
from smoltbot_testing.events import FIXED_TIME as NOW
from smoltbot_testing.events import agent_event as agent


async def run_until(consumer: Consumer, predicate, timeout: float = 10.0) -> None:
    task = asyncio.create_task(consumer.run())
    try:
        async with asyncio.timeout(timeout):
            while not await predicate():
                await asyncio.sleep(0.02)
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 5)


async def xlen(redis: Redis, key: str) -> int:
    return int(await redis.xlen(key))


async def pending(redis: Redis, key: str, group: str) -> int:
    info = await redis.xpending(key, group)
    return int(info["pending"])


def config(**kw: object) -> ConsumerConfig:
    base: dict[str, object] = {
        "group": "g",
        "streams": ["agents"],
        "block_ms": 50,
        "claim_interval_s": 0.05,
        "min_idle_ms": 100,
        "max_deliveries": 3,
    }
    base.update(kw)
    return ConsumerConfig(**base)  # type: ignore[arg-type]


async def test_publisher_flushes_in_order_and_close_drains(redis: Redis, prefix: str) -> None:
    pub = Publisher(redis, prefix, batch_size=7)
    await pub.start()
    events = [agent(i) for i in range(50)]
    for e in events:
        assert pub.enqueue("agents", e)
    await pub.close()
    entries = await redis.xrange(stream_key(prefix, "agents"))
    assert [decode_fields(f) for _, f in entries] == events


async def test_publisher_drops_and_counts_when_buffer_full(redis: Redis, prefix: str) -> None:
    pub = Publisher(redis, prefix, max_buffer=3)  # not started: nothing flushes
    assert all(pub.enqueue("agents", agent(i)) for i in range(3))
    assert not pub.enqueue("agents", agent(4))
    assert pub.buffered == 3
    await pub.close()
    assert await xlen(redis, stream_key(prefix, "agents")) == 3


async def test_relay_publishes_outputs_and_acks_inputs(redis: Redis, prefix: str) -> None:
    pub = Publisher(redis, prefix)
    for i in range(25):
        await pub.publish("agents", agent(i))

    async def relay(batch: Sequence[Delivery]) -> Sequence[Output]:
        return [
            Output(
                "control",
                ControlV1(event_id=d.event.event_id, kind="invalidate", issued_at=NOW),
            )
            for d in batch
        ]

    consumer = Consumer(redis, prefix, config(batch_size=10), relay, consumer_name="c1")
    src, out = stream_key(prefix, "agents"), stream_key(prefix, "control")

    async def done() -> bool:
        return await xlen(redis, out) == 25

    await run_until(consumer, done)
    assert await pending(redis, src, "g") == 0
    ids_in = [f[b"id"] for _, f in await redis.xrange(src)]
    ids_out = [f[b"id"] for _, f in await redis.xrange(out)]
    assert ids_in == ids_out


async def test_malformed_entry_goes_to_dlq_and_consumer_keeps_going(
    redis: Redis, prefix: str
) -> None:
    src = stream_key(prefix, "agents")
    await redis.xadd(src, {b"t": b"agent.v1", b"id": b"x", b"b": b"\xc1garbage"})
    await redis.xadd(src, to_fields(agent(1)))
    seen: list[str] = []

    async def handler(batch: Sequence[Delivery]) -> Sequence[Output]:
        seen.extend(d.event.event_id for d in batch)
        return []

    consumer = Consumer(redis, prefix, config(), handler, consumer_name="c1")

    async def done() -> bool:
        return len(seen) == 1 and await xlen(redis, dlq_key(prefix, "agents")) == 1

    await run_until(consumer, done)
    ((_, dead),) = await redis.xrange(dlq_key(prefix, "agents"))
    assert dead[b"reason"].startswith(b"undecodable: agent.v1")
    assert dead[b"source_stream"] == b"agents"
    assert dead[b"b"] == b"\xc1garbage"
    assert await pending(redis, src, "g") == 0


async def test_failing_handler_dead_letters_after_max_deliveries(redis: Redis, prefix: str) -> None:
    src = stream_key(prefix, "agents")
    bad, good = agent(1), agent(2)
    await redis.xadd(src, to_fields(bad))
    await redis.xadd(src, to_fields(good))
    attempts: list[int] = []
    handled: list[str] = []

    async def handler(batch: Sequence[Delivery]) -> Sequence[Output]:
        for d in batch:
            if d.event.event_id == bad.event_id:
                attempts.append(d.deliveries)
                raise RuntimeError("database said no")
        handled.extend(d.event.event_id for d in batch)
        return []

    consumer = Consumer(redis, prefix, config(max_deliveries=3), handler, consumer_name="c1")

    async def done() -> bool:
        return await xlen(redis, dlq_key(prefix, "agents")) == 1

    await run_until(consumer, done)
    # delivery 1: once inside the batch, once alone (isolation); then redeliveries 2 and 3.
    assert attempts == [1, 1, 2, 3]
    assert handled == [good.event_id]  # the good entry was not held back by the bad one
    ((_, dead),) = await redis.xrange(dlq_key(prefix, "agents"))
    assert dead[b"reason"] == b"exceeded 3 deliveries: RuntimeError: database said no"
    assert dead[b"deliveries"] == b"3"
    assert decode_fields(dead) == bad
    assert await pending(redis, src, "g") == 0


async def test_invalid_event_is_dead_lettered_at_once(redis: Redis, prefix: str) -> None:
    await redis.xadd(stream_key(prefix, "agents"), to_fields(agent(1)))

    async def handler(batch: Sequence[Delivery]) -> Sequence[Output]:
        raise InvalidEvent("agent id collides")

    consumer = Consumer(redis, prefix, config(max_deliveries=5), handler, consumer_name="c1")

    async def done() -> bool:
        return await xlen(redis, dlq_key(prefix, "agents")) == 1

    await run_until(consumer, done)
    ((_, dead),) = await redis.xrange(dlq_key(prefix, "agents"))
    assert dead[b"reason"] == b"invalid: agent id collides"
    assert dead[b"deliveries"] == b"1"


async def test_restarted_consumer_drains_its_own_pending_first(redis: Redis, prefix: str) -> None:
    src = stream_key(prefix, "agents")
    events = [agent(i) for i in range(5)]
    for e in events:
        await redis.xadd(src, to_fields(e))
    await redis.xgroup_create(src, "g", id="0")
    # A previous incarnation of c1 read everything and died before acking.
    await redis.xreadgroup("g", "c1", {src: ">"}, count=10)
    seen: list[tuple[str, int]] = []

    async def handler(batch: Sequence[Delivery]) -> Sequence[Output]:
        seen.extend((d.event.event_id, d.deliveries) for d in batch)
        return []

    # min_idle is long: only the own-pending drain can pick these up.
    consumer = Consumer(redis, prefix, config(min_idle_ms=600_000), handler, consumer_name="c1")

    async def done() -> bool:
        return len(seen) == 5

    await run_until(consumer, done)
    assert [s[0] for s in seen] == [e.event_id for e in events]
    assert {s[1] for s in seen} == {2}
    assert await pending(redis, src, "g") == 0


async def test_entries_of_a_dead_consumer_are_claimed(redis: Redis, prefix: str) -> None:
    src = stream_key(prefix, "agents")
    await redis.xadd(src, to_fields(agent(1)))
    await redis.xgroup_create(src, "g", id="0")
    await redis.xreadgroup("g", "dead-pod", {src: ">"}, count=10)
    seen: list[int] = []

    async def handler(batch: Sequence[Delivery]) -> Sequence[Output]:
        seen.extend(d.deliveries for d in batch)
        return []

    consumer = Consumer(redis, prefix, config(min_idle_ms=100), handler, consumer_name="c2")

    async def done() -> bool:
        return seen == [2]

    await run_until(consumer, done)
    assert await pending(redis, src, "g") == 0


async def test_priority_stream_is_read_first(redis: Redis, prefix: str) -> None:
    normal, prio = stream_key(prefix, "agents"), stream_key(prefix, "agents:priority")
    for i in range(5):
        await redis.xadd(normal, to_fields(agent(i)))
    urgent = agent(99)
    await redis.xadd(prio, to_fields(urgent))
    order: list[str] = []

    async def handler(batch: Sequence[Delivery]) -> Sequence[Output]:
        order.extend(d.stream for d in batch)
        return []

    cfg = config(streams=["agents:priority", "agents"], batch_size=1)
    consumer = Consumer(redis, prefix, cfg, handler, consumer_name="c1")

    async def done() -> bool:
        return len(order) == 6

    await run_until(consumer, done)
    assert order[0] == "agents:priority"


@pytest.mark.parametrize("times", [3])
async def test_same_event_delivered_many_times_is_handed_over_each_time(
    redis: Redis, prefix: str, times: int
) -> None:
    event = agent(7)
    for _ in range(times):
        await redis.xadd(stream_key(prefix, "agents"), to_fields(event))
    seen: list[str] = []

    async def handler(batch: Sequence[Delivery]) -> Sequence[Output]:
        seen.extend(d.event.event_id for d in batch)
        return []

    consumer = Consumer(redis, prefix, config(), handler, consumer_name="c1")

    async def done() -> bool:
        return len(seen) == times

    await run_until(consumer, done)
    assert set(seen) == {event.event_id}  # dedup is the sinks' job (derived ids + upserts)


async def test_retryable_holds_the_batch_without_spending_deliveries(
    redis: Redis, prefix: str
) -> None:
    events = [agent(i) for i in range(3)]
    for e in events:
        await redis.xadd(stream_key(prefix, "agents"), to_fields(e))
    calls: list[list[int]] = []

    async def handler(batch: Sequence[Delivery]) -> Sequence[Output]:
        calls.append([d.deliveries for d in batch])
        if len(calls) < 4:
            raise Retryable("postgres is down")
        return []

    # max_deliveries=1: any counted redelivery would dead-letter at once.
    consumer = Consumer(
        redis, prefix, config(max_deliveries=1, min_idle_ms=100), handler, consumer_name="c1"
    )

    async def done() -> bool:
        return len(calls) >= 4 and await pending(redis, stream_key(prefix, "agents"), "g") == 0

    await run_until(consumer, done, timeout=20)
    assert calls == [[1, 1, 1]] * 4  # the same batch, held in place, never redelivered
    assert await xlen(redis, dlq_key(prefix, "agents")) == 0
