"""Spool, circuit breaker, budget, encryption, retention and heartbeat behaviour."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from smoltbot_bus import (
    BusUnavailable,
    Consumer,
    ConsumerConfig,
    Delivery,
    EventCipher,
    InvalidEvent,
    Output,
    Publisher,
    Retryable,
    Spool,
    redis_client,
    trim_stream,
)
from smoltbot_bus._heartbeat import beat_group
from smoltbot_bus._spool import encode_record, read_records
from smoltbot_bus._streams import export_lag, remove_idle_consumers
from smoltbot_contracts import ExchangeV1
from smoltbot_contracts.codec import DecodeError, decode_fields, to_fields
from smoltbot_contracts.ids import uuid7
from smoltbot_contracts.streams import stream_key
from smoltbot_resilience import CircuitBreaker
from smoltbot_testing.events import agent_event as agent
from smoltbot_testing.events import exchange_event as exchange
from smoltbot_testing.faults import FaultProxy, RedisServer

from libs.bus.tests.bus_testkit import (
    Record,
    Slow,
    add,
    event_ids,
    fast_config,
    nothing,
    pending,
    read_unacked,
    running,
    until,
)

# ---------------------------------------------------------------- spool file format


def test_spool_records_round_trip_and_torn_tail_is_skipped() -> None:
    recs = [
        ("agents", {b"t": b"agent.v1", b"id": str(i).encode(), b"b": os.urandom(50)})
        for i in range(5)
    ]
    data = b"".join(encode_record(r) for r in recs)
    assert read_records(data) == (recs, False)
    got, torn = read_records(data[:-7])  # crash in the middle of the last write
    assert got == recs[:4]
    assert torn
    corrupt = bytearray(data)
    corrupt[len(data) - 3] ^= 0xFF  # flipped bit in the last payload: CRC catches it
    got, torn = read_records(bytes(corrupt))
    assert got == recs[:4]
    assert torn


async def test_spool_cap_drops_and_counts(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "p1", max_bytes=300)
    spool.open()
    recs = [("agents", {b"b": b"x" * 100}) for _ in range(5)]
    kept = await spool.append(recs)
    assert 0 < kept < 5
    spool.close()


async def test_orphaned_spool_of_a_dead_process_is_adopted(tmp_path: Path) -> None:
    dead = Spool(tmp_path, "dead-pod")
    dead.open()
    await dead.append([("agents", {b"n": b"1"}), ("agents", {b"n": b"2"})])
    dead.close()  # its lock is free now: the process is gone
    alive = Spool(tmp_path, "new-pod")
    alive.open()
    sent: list[bytes] = []

    async def publish(records: list[tuple[str, dict[bytes, bytes]]]) -> None:
        sent.extend(f[b"n"] for _, f in records)

    assert await alive.drain(publish) == 2
    assert sent == [b"1", b"2"]
    assert not alive.has_data()
    alive.close()


async def test_spool_of_a_live_process_is_not_taken(tmp_path: Path) -> None:
    owner = Spool(tmp_path, "owner")
    owner.open()
    await owner.append([("agents", {b"n": b"1"})])
    other = Spool(tmp_path, "other")
    other.open()
    assert not other.has_data()
    assert owner.has_data()
    owner.close()
    other.close()


# ---------------------------------------------------------------- breaker + spool on a cut


def test_breaker_opens_and_half_opens() -> None:
    b = CircuitBreaker(threshold=2, cooldown_s=0.05)
    b.failure()
    assert b.allow()
    b.failure()
    assert not b.allow()
    time.sleep(0.06)
    assert b.allow()
    b.success()
    assert b.allow()


async def test_cut_redis_spools_without_blocking_then_replays_exactly_once(tmp_path: Path) -> None:
    with RedisServer() as server, FaultProxy("127.0.0.1", server.port) as proxy:
        client = redis_client(f"redis://127.0.0.1:{proxy.port}/0")
        spool = Spool(tmp_path, "gw-1")
        pub = Publisher(
            client, "t:", spool=spool, breaker=CircuitBreaker(cooldown_s=0.2), send_timeout_s=0.5
        )
        await pub.start()
        await pub.publish("agents", agent(0))
        proxy.set_mode("cut")
        events = [agent(i) for i in range(1, 101)]
        started = time.perf_counter()
        for e in events:
            assert pub.enqueue("agents", e)
        assert time.perf_counter() - started < 0.5  # enqueue never waits on Redis

        async def spooled() -> None:
            while spool.size_bytes() == 0 or pub.buffered:
                await asyncio.sleep(0.02)

        await asyncio.wait_for(spooled(), 10)
        with pytest.raises(BusUnavailable):
            await pub.publish("agents", agent(999))  # refused at once while the breaker is open
        proxy.set_mode("pass")

        direct = redis_client(server.url)

        async def replayed() -> int:
            return int(await direct.xlen("t:agents"))

        deadline = time.monotonic() + 15
        while await replayed() < 101 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await pub.close()
        ids = [f[b"id"].decode() for _, f in await direct.xrange("t:agents")]
        assert ids[1:] == [e.event_id for e in events]  # all 100, in order, none twice
        assert not spool.has_data()
        await client.aclose()
        await direct.aclose()


async def test_close_during_outage_spools_and_a_restart_replays(tmp_path: Path) -> None:
    with RedisServer() as server, FaultProxy("127.0.0.1", server.port) as proxy:
        client = redis_client(f"redis://127.0.0.1:{proxy.port}/0")
        proxy.set_mode("cut")
        pub = Publisher(client, "t:", spool=Spool(tmp_path, "gw-a"), send_timeout_s=0.3)
        pub.breaker.failure()  # Redis already known down
        events = [agent(i) for i in range(20)]
        for e in events:
            pub.enqueue("agents", e)
        await pub.close()  # SIGTERM mid-outage: buffer goes to disk, not lost
        await client.aclose()
        proxy.set_mode("pass")
        client2 = redis_client(f"redis://127.0.0.1:{proxy.port}/0")
        pub2 = Publisher(client2, "t:", spool=Spool(tmp_path, "gw-b"))  # new process, new name
        await pub2.start()
        direct = redis_client(server.url)
        deadline = time.monotonic() + 10
        while int(await direct.xlen("t:agents")) < 20 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await pub2.close()
        ids = [f[b"id"].decode() for _, f in await direct.xrange("t:agents")]
        assert ids == [e.event_id for e in events]
        await client2.aclose()
        await direct.aclose()


async def test_over_budget_bus_spools_instead_of_growing(
    redis: Redis, prefix: str, tmp_path: Path
) -> None:
    spool = Spool(tmp_path, "gw")
    pub = Publisher(redis, prefix, spool=spool, max_bytes=1_000_000, budget_interval_s=0.05)
    big = ExchangeV1(event_id=uuid7(), meta=exchange().meta, response_body=os.urandom(200_000))
    await pub.start()
    for _ in range(20):
        pub.enqueue("exchanges", big)
        await asyncio.sleep(0.06)
    await asyncio.sleep(0.3)
    used = int(await redis.memory_usage(stream_key(prefix, "exchanges")) or 0)
    assert pub.over_budget
    assert used < 1_000_000 + 2 * 210_000  # at most one measurement interval of overshoot
    assert spool.size_bytes() > 0
    await pub.close()


# ---------------------------------------------------------------- encryption


async def test_encrypted_bodies_are_opaque_in_redis_and_decode_with_retired_keys(
    redis: Redis, prefix: str
) -> None:
    old, new = os.urandom(32), os.urandom(32)
    b64 = lambda k: base64.b64encode(k).decode()  # noqa: E731
    writer = Publisher(redis, prefix, cipher=EventCipher.from_settings(b64(old), ""))
    ev = exchange()
    await writer.publish("exchanges", ev)
    await writer.publish("agents", agent(1))  # not a body stream: stays clear
    ((_, fields),) = await redis.xrange(stream_key(prefix, "exchanges"))
    assert b"secret response bytes" not in fields[b"b"]
    assert fields[b"k"]
    ((_, clear),) = await redis.xrange(stream_key(prefix, "agents"))
    assert b"k" not in clear
    rotated = EventCipher.from_settings(b64(new), b64(old))  # new key, old one retired
    assert decode_fields(fields, rotated.open(fields)) == ev
    with pytest.raises(DecodeError, match="unknown event key"):
        EventCipher.from_settings(b64(new), "").open(fields)
    tampered = {**fields, b"id": b"someone-else"}
    with pytest.raises(DecodeError, match="authentication"):
        rotated.open(tampered)


# ---------------------------------------------------------------- retention


async def test_trim_never_removes_what_a_live_group_has_not_acked(
    redis: Redis, prefix: str
) -> None:
    key = stream_key(prefix, "agents")
    old_ids = [
        await redis.xadd(key, {b"n": str(i).encode()}, id=f"{1000 + i}-0") for i in range(300)
    ]
    await redis.xgroup_create(key, "slow", id="0")
    await beat_group(redis, prefix, "agents", "slow", 60_000)
    await redis.xreadgroup("slow", "c1", {key: ">"}, count=100)  # read 100, acked none
    await trim_stream(redis, prefix, "agents", retention_ms=1)
    remaining = [i for i, _ in await redis.xrange(key)]
    assert remaining[0] == old_ids[0]  # the first unacked entry survives, however old
    await redis.xack(key, "slow", *old_ids[:100])
    await redis.xreadgroup("slow", "c1", {key: ">"}, count=1000)
    await redis.xack(key, "slow", *old_ids[100:])
    await trim_stream(redis, prefix, "agents", retention_ms=1)
    assert int(await redis.xlen(key)) < 300  # everything acked and past retention may go


async def test_byte_pressure_trims_acked_entries_inside_the_window(
    redis: Redis, prefix: str
) -> None:
    key = stream_key(prefix, "agents")
    ids = [await redis.xadd(key, {b"n": b"x" * 100}) for _ in range(300)]  # all brand new
    await redis.xgroup_create(key, "g", id="0")
    await beat_group(redis, prefix, "agents", "g", 60_000)
    await redis.xreadgroup("g", "c", {key: ">"}, count=1000)
    await redis.xack(key, "g", *ids[:250])
    await trim_stream(redis, prefix, "agents", retention_ms=3_600_000)
    assert int(await redis.xlen(key)) == 300  # inside the window and no pressure: kept
    await trim_stream(redis, prefix, "agents", retention_ms=3_600_000, under_pressure=True)
    remaining = [i for i, _ in await redis.xrange(key)]
    assert len(remaining) < 300
    assert set(ids[250:]) <= set(remaining)  # unacked entries survive pressure too


async def test_stale_group_is_ignored_by_the_trimmer(redis: Redis, prefix: str) -> None:
    key = stream_key(prefix, "agents")
    for i in range(300):
        await redis.xadd(key, {b"n": b"x"}, id=f"{1000 + i}-0")
    await read_unacked(redis, key, "gone", group="abandoned", count=10)
    # no heartbeat key: nobody has consumed for longer than the stale limit
    await trim_stream(redis, prefix, "agents", retention_ms=1)
    assert int(await redis.xlen(key)) < 300


# ---------------------------------------------------------------- slow handlers keep their entries


async def test_slow_handler_is_not_reclaimed_by_another_consumer(redis: Redis, prefix: str) -> None:
    key = stream_key(prefix, "agents")
    await add(redis, key, [agent(1)])
    cfg = fast_config(min_idle_ms=150, max_deliveries=5)
    slow, thief = Slow(0.8), Slow(0)
    async with running(Consumer(redis, prefix, cfg, slow, consumer_name="slow")):
        await slow.started.wait()
        async with running(Consumer(redis, prefix, cfg, thief, consumer_name="thief")):
            await asyncio.sleep(1.0)  # well past min_idle while the slow handler runs
    assert (slow.calls, thief.calls) == (1, 0)
    assert await pending(redis, key) == 0


# ---------------------------------------------------------------- gauges and consumer hygiene


async def test_lag_pending_and_oldest_age_gauges(redis: Redis, prefix: str) -> None:
    key = stream_key(prefix, "agents")
    old = await redis.xadd(key, to_fields(agent(1)), id=f"{int(time.time() * 1000) - 5000}-0")
    await add(redis, key, [agent(i + 2) for i in range(4)])
    await read_unacked(redis, key, "c", count=2)  # 2 pending, 3 unread
    await export_lag(redis, key, "agents", "g")
    labels = {"stream": "agents", "group": "g"}
    assert REGISTRY.get_sample_value("smoltbot_bus_lag", labels) == 3
    assert REGISTRY.get_sample_value("smoltbot_bus_pending", labels) == 2
    age = REGISTRY.get_sample_value("smoltbot_bus_oldest_pending_age_seconds", labels)
    assert age is not None
    assert age >= 4.5
    assert old


async def test_idle_consumers_without_pending_are_removed(redis: Redis, prefix: str) -> None:
    key = stream_key(prefix, "agents")
    await add(redis, key, [agent(1)])
    await read_unacked(redis, key, "holder")  # keeps a pending entry
    await redis.xgroup_createconsumer(key, "g", "idle")  # a dead consumer with 0 pending
    await redis.xgroup_createconsumer(key, "g", "me")
    await asyncio.sleep(0.05)
    removed = await remove_idle_consumers(redis, key, "g", me="me", idle_after_ms=10)
    names = {c["name"] for c in await redis.xinfo_consumers(key, "g")}
    assert removed == 1
    assert names == {b"holder", b"me"}


async def test_entries_trimmed_while_pending_are_counted_as_lost(redis: Redis, prefix: str) -> None:
    key = stream_key(prefix, "agents")
    await add(redis, key, [agent(1)])
    await read_unacked(redis, key, "dead")
    await redis.xtrim(key, maxlen=0)  # an operator (or a bad trim) removed it while pending
    before = (
        REGISTRY.get_sample_value(
            "smoltbot_bus_entries_total", {"stream": "agents", "outcome": "lost"}
        )
        or 0
    )
    handled = Record(lambda d: d.entry_id)
    cfg = ConsumerConfig(group="g", streams=["agents"], block_ms=20, min_idle_ms=10)
    consumer = Consumer(redis, prefix, cfg, handled, consumer_name="c2")
    await asyncio.sleep(0.05)
    await consumer.claim_idle()
    after = REGISTRY.get_sample_value(
        "smoltbot_bus_entries_total", {"stream": "agents", "outcome": "lost"}
    )
    assert after == before + 1
    assert handled.seen == []
    assert await pending(redis, key) == 0


async def test_housekeeping_expires_old_dead_letters(redis: Redis, prefix: str) -> None:
    dlq = f"{prefix}dlq:agents"
    old_ms = int(time.time() * 1000) - 8 * 24 * 3600 * 1000
    for i in range(200):
        await redis.xadd(dlq, {b"reason": b"x"}, id=f"{old_ms + i}-0")
    await redis.xadd(dlq, {b"reason": b"recent"})
    cfg = ConsumerConfig(group="g", streams=["agents"], dlq_retention_s=7 * 24 * 3600)
    consumer = Consumer(redis, prefix, cfg, nothing, consumer_name="c")
    await consumer.reader.ensure_groups()
    await consumer.housekeeper.run_once()
    remaining = await redis.xrange(dlq)
    assert remaining[-1][1][b"reason"] == b"recent"
    assert len(remaining) < 201  # week-old dead letters went (approximate trim: whole nodes)


async def test_heartbeat_never_steals_back_an_entry_a_peer_took_over(
    redis: Redis, prefix: str
) -> None:
    key = stream_key(prefix, "agents")
    await add(redis, key, [agent(1)])
    slow = Slow(0.6)
    cfg = fast_config(claim_interval_s=60, min_idle_ms=150)
    async with running(Consumer(redis, prefix, cfg, slow, consumer_name="slow")):
        await slow.started.wait()
        (entry,) = await redis.xpending_range(key, "g", min="-", max="+", count=1)
        # A peer took it over (e.g. the heartbeat was late past min-idle).
        await redis.xclaim(key, "g", "peer", min_idle_time=0, message_ids=[entry["message_id"]])
        await asyncio.sleep(0.3)  # several heartbeat intervals
        (after,) = await redis.xpending_range(key, "g", min="-", max="+", count=1)
        assert after["consumer"] == b"peer"


# ---------------------------------------------------------------- review fixes


async def test_a_group_holding_a_batch_through_an_outage_is_not_stale(
    redis: Redis, prefix: str
) -> None:
    key = stream_key(prefix, "agents")
    events = [agent(i) for i in range(5)]
    await add(redis, key, events)
    outage = {"until": time.monotonic() + 2.5}
    handled: list[str] = []

    async def handler(batch: Sequence[Delivery]) -> Sequence[Output]:
        if time.monotonic() < outage["until"]:
            raise Retryable("postgres down")
        handled.extend(d.event.event_id for d in batch)
        return []

    cfg = fast_config(group="persister", claim_interval_s=0.1, min_idle_ms=300, stale_group_s=1)
    async with running(Consumer(redis, prefix, cfg, handler, consumer_name="p1")):
        await asyncio.sleep(1.8)  # longer than stale_group_s while the batch is held
        await trim_stream(redis, prefix, "agents", retention_ms=1, under_pressure=True)
        assert int(await redis.xlen(key)) == 5  # the busy group's unacked entries survived
        await until(lambda: len(handled) >= 5, timeout=60, every=0.05)
    assert handled == [e.event_id for e in events]


async def test_consumer_recreates_a_vanished_group(redis: Redis, prefix: str) -> None:
    key = stream_key(prefix, "agents")
    seen = event_ids()
    cfg = ConsumerConfig(group="g", streams=["agents"], block_ms=20)
    async with running(Consumer(redis, prefix, cfg, seen, consumer_name="c")):
        await add(redis, key, [agent(1)])
        await until(lambda: len(seen.seen) >= 1, timeout=60)
        await redis.delete(key)  # e.g. Redis restored without its AOF
        later = agent(2)
        await asyncio.sleep(0.3)
        await add(redis, key, [later])
        await until(lambda: later.event_id in seen.seen, every=0.05)


async def test_dead_letters_of_body_streams_stay_encrypted(redis: Redis, prefix: str) -> None:
    cipher = EventCipher(os.urandom(32))
    pub = Publisher(redis, prefix, cipher=cipher)
    await pub.publish("exchanges", exchange())

    async def handler(batch: Sequence[Delivery]) -> Sequence[Output]:
        raise InvalidEvent("cannot handle")

    cfg = ConsumerConfig(group="observer", streams=["exchanges"], block_ms=20)
    async with running(Consumer(redis, prefix, cfg, handler, consumer_name="c", cipher=cipher)):
        await until(lambda: redis.xlen(f"{prefix}dlq:exchanges"))
    ((_, dead),) = await redis.xrange(f"{prefix}dlq:exchanges")
    assert b"k" in dead
    assert b"secret response bytes" not in dead[b"b"]


async def test_outputs_to_untrimmed_streams_are_bounded(redis: Redis, prefix: str) -> None:
    src = stream_key(prefix, "agents")
    await add(redis, src, [agent(i) for i in range(300)])

    async def handler(batch: Sequence[Delivery]) -> Sequence[Output]:
        return [Output("replies:gw-1", d.event, maxlen=50, ttl_s=600) for d in batch]

    async def drained() -> bool:
        groups = await redis.xinfo_groups(src)
        return bool(groups) and groups[0]["lag"] == 0 and groups[0]["pending"] == 0

    cfg = ConsumerConfig(group="g", streams=["agents"], block_ms=20)
    async with running(Consumer(redis, prefix, cfg, handler, consumer_name="c")):
        await until(drained, every=0.05)
    replies = stream_key(prefix, "replies:gw-1")
    assert int(await redis.xlen(replies)) < 300
    assert 0 < int(await redis.ttl(replies)) <= 600


async def test_spool_disk_failure_keeps_events_and_close_still_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = redis_client("redis://127.0.0.1:1/0")  # nothing listens: Redis is down
    spool = Spool(tmp_path, "gw")
    failures = {"n": 0}

    async def disk_full(records: list[tuple[str, dict[bytes, bytes]]]) -> int:
        failures["n"] += 1
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(spool, "append", disk_full)
    pub = Publisher(dead, "t:", spool=spool, send_timeout_s=0.2)
    await pub.start()
    for i in range(3):
        pub.enqueue("agents", agent(i))
    async with asyncio.timeout(10):
        while failures["n"] < 2:
            await asyncio.sleep(0.05)
    assert pub.buffered == 3  # nothing lost while the disk is full; the loop keeps trying
    await pub.close()  # must not raise
    await dead.aclose()
