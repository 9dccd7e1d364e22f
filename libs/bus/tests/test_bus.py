"""Publisher and consumer against the real Redis: acks, relay atomicity, DLQ, recovery."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from redis.asyncio import Redis
from smoltbot_bus import ConsumerConfig, Delivery, InvalidEvent, Output, Publisher
from smoltbot_contracts import ControlV1
from smoltbot_contracts.codec import decode_fields
from smoltbot_contracts.streams import dlq_key, stream_key
from smoltbot_testing.events import FIXED_TIME as NOW
from smoltbot_testing.events import agent_event as agent

from libs.bus.tests.bus_testkit import (
    Outage,
    Record,
    add,
    consume_until,
    event_ids,
    fast_config,
    pending,
    read_unacked,
    xlen,
)


def config(**overrides: Any) -> ConsumerConfig:
    """Entries left pending are claimed again after 100 ms and dead-lettered at the 3rd delivery."""
    return fast_config(**{"block_ms": 50, "min_idle_ms": 100, "max_deliveries": 3, **overrides})


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

    src, out = stream_key(prefix, "agents"), stream_key(prefix, "control")

    async def done() -> bool:
        return await xlen(redis, out) == 25

    await consume_until(redis, prefix, relay, done, config(batch_size=10))
    assert await pending(redis, src) == 0
    ids_in = [f[b"id"] for _, f in await redis.xrange(src)]
    ids_out = [f[b"id"] for _, f in await redis.xrange(out)]
    assert ids_in == ids_out


async def test_malformed_entry_goes_to_dlq_and_consumer_keeps_going(
    redis: Redis, prefix: str
) -> None:
    src, dlq = stream_key(prefix, "agents"), dlq_key(prefix, "agents")
    await redis.xadd(src, {b"t": b"agent.v1", b"id": b"x", b"b": b"\xc1garbage"})
    await add(redis, src, [agent(1)])
    handled = event_ids()

    async def done() -> bool:
        return len(handled.seen) == 1 and await xlen(redis, dlq) == 1

    await consume_until(redis, prefix, handled, done, config())
    ((_, dead),) = await redis.xrange(dlq)
    assert dead[b"reason"].startswith(b"undecodable: agent.v1")
    assert dead[b"source_stream"] == b"agents"
    assert dead[b"b"] == b"\xc1garbage"
    assert await pending(redis, src) == 0


async def test_failing_handler_dead_letters_after_max_deliveries(redis: Redis, prefix: str) -> None:
    src, dlq = stream_key(prefix, "agents"), dlq_key(prefix, "agents")
    bad, good = agent(1), agent(2)
    await add(redis, src, [bad, good])
    attempts: list[int] = []
    handled: list[str] = []

    async def handler(batch: Sequence[Delivery]) -> Sequence[Output]:
        for d in batch:
            if d.event.event_id == bad.event_id:
                attempts.append(d.deliveries)
                raise RuntimeError("database said no")
        handled.extend(d.event.event_id for d in batch)
        return []

    async def done() -> bool:
        return await xlen(redis, dlq) == 1

    await consume_until(redis, prefix, handler, done, config(max_deliveries=3))
    # delivery 1: once inside the batch, once alone (isolation); then redeliveries 2 and 3.
    assert attempts == [1, 1, 2, 3]
    assert handled == [good.event_id]  # the good entry was not held back by the bad one
    ((_, dead),) = await redis.xrange(dlq)
    assert dead[b"reason"] == b"exceeded 3 deliveries: RuntimeError: database said no"
    assert dead[b"deliveries"] == b"3"
    assert decode_fields(dead) == bad
    assert await pending(redis, src) == 0


async def test_invalid_event_is_dead_lettered_at_once(redis: Redis, prefix: str) -> None:
    dlq = dlq_key(prefix, "agents")
    await add(redis, stream_key(prefix, "agents"), [agent(1)])

    async def handler(batch: Sequence[Delivery]) -> Sequence[Output]:
        raise InvalidEvent("agent id collides")

    async def done() -> bool:
        return await xlen(redis, dlq) == 1

    await consume_until(redis, prefix, handler, done, config(max_deliveries=5))
    ((_, dead),) = await redis.xrange(dlq)
    assert dead[b"reason"] == b"invalid: agent id collides"
    assert dead[b"deliveries"] == b"1"


async def test_restarted_consumer_drains_its_own_pending_first(redis: Redis, prefix: str) -> None:
    src = stream_key(prefix, "agents")
    events = [agent(i) for i in range(5)]
    await add(redis, src, events)
    # A previous incarnation of c1 read everything and died before acking.
    await read_unacked(redis, src, "c1")
    seen = Record(lambda d: (d.event.event_id, d.deliveries))
    # min_idle is long: only the own-pending drain can pick these up.
    cfg = config(min_idle_ms=600_000)
    await consume_until(redis, prefix, seen, lambda: len(seen.seen) == 5, cfg)
    assert [s[0] for s in seen.seen] == [e.event_id for e in events]
    assert {s[1] for s in seen.seen} == {2}
    assert await pending(redis, src) == 0


async def test_entries_of_a_dead_consumer_are_claimed(redis: Redis, prefix: str) -> None:
    src = stream_key(prefix, "agents")
    await add(redis, src, [agent(1)])
    await read_unacked(redis, src, "dead-pod")
    deliveries = Record(lambda d: d.deliveries)
    cfg = config(min_idle_ms=100)
    await consume_until(redis, prefix, deliveries, lambda: deliveries.seen == [2], cfg, name="c2")
    assert await pending(redis, src) == 0


async def test_priority_stream_is_read_first(redis: Redis, prefix: str) -> None:
    await add(redis, stream_key(prefix, "agents"), [agent(i) for i in range(5)])
    await add(redis, stream_key(prefix, "agents:priority"), [agent(99)])
    order = Record(lambda d: d.stream)
    cfg = config(streams=["agents:priority", "agents"], batch_size=1)
    await consume_until(redis, prefix, order, lambda: len(order.seen) == 6, cfg)
    assert order.seen[0] == "agents:priority"


@pytest.mark.parametrize("times", [3])
async def test_same_event_delivered_many_times_is_handed_over_each_time(
    redis: Redis, prefix: str, times: int
) -> None:
    event = agent(7)
    await add(redis, stream_key(prefix, "agents"), [event] * times)
    handled = event_ids()
    await consume_until(redis, prefix, handled, lambda: len(handled.seen) == times, config())
    assert set(handled.seen) == {event.event_id}  # dedup is the sinks' job (derived ids + upserts)


async def test_retryable_holds_the_batch_without_spending_deliveries(
    redis: Redis, prefix: str
) -> None:
    src = stream_key(prefix, "agents")
    await add(redis, src, [agent(i) for i in range(3)])
    outage = Outage(failures=3)

    async def done() -> bool:
        return len(outage.calls) >= 4 and await pending(redis, src) == 0

    # max_deliveries=1: any counted redelivery would dead-letter at once.
    cfg = config(max_deliveries=1, min_idle_ms=100)
    await consume_until(redis, prefix, outage, done, cfg, timeout=20)
    assert outage.calls == [[1, 1, 1]] * 4  # the same batch, held in place, never redelivered
    assert await xlen(redis, dlq_key(prefix, "agents")) == 0
