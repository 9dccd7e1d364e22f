"""Heartbeats on their own against the real Redis: owner-checked re-claims, group liveness."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from smoltbot_bus import ConsumerConfig, Delivery, redis_client
from smoltbot_bus._entries import Member
from smoltbot_bus._heartbeat import Heartbeat, heartbeat_key
from smoltbot_contracts.streams import stream_key
from smoltbot_testing.events import agent_event as agent

from libs.bus.tests.bus_testkit import delivered

CONFIG = ConsumerConfig(
    group="g", streams=["agents"], min_idle_ms=150, claim_interval_s=0.1, stale_group_s=60
)


async def pending_rows(redis: Redis, key: str) -> list[dict[str, object]]:
    return await redis.xpending_range(key, "g", min="-", max="+", count=10)


async def read_two(redis: Redis, prefix: str) -> tuple[str, list[Delivery]]:
    return stream_key(prefix, "agents"), await delivered(redis, prefix, [agent(1), agent(2)], "me")


async def test_reclaim_resets_idle_only_for_entries_still_owned(redis: Redis, prefix: str) -> None:
    key, (mine, taken) = await read_two(redis, prefix)
    await redis.xclaim(key, "g", "peer", min_idle_time=0, message_ids=[taken.entry_id])
    await asyncio.sleep(0.1)
    beat = Heartbeat(Member(redis, prefix, CONFIG, "me"))
    assert await beat.reclaim_own("agents", [mine.entry_id, taken.entry_id]) == 1
    rows = {r["message_id"].decode(): r for r in await pending_rows(redis, key)}
    assert rows[mine.entry_id]["consumer"] == b"me"
    assert rows[mine.entry_id]["time_since_delivered"] < 100
    assert rows[mine.entry_id]["times_delivered"] == 1  # a heartbeat is not a delivery
    assert rows[taken.entry_id]["consumer"] == b"peer"


async def test_group_beat_sets_an_expiring_key(redis: Redis, prefix: str) -> None:
    await Heartbeat(Member(redis, prefix, CONFIG, "me")).beat_groups()
    ttl = await redis.pttl(heartbeat_key(prefix, "agents", "g"))
    assert 0 < ttl <= 60_000


async def test_slow_work_keeps_its_entries_the_probe_fed_and_the_group_live(
    redis: Redis, prefix: str
) -> None:
    key, deliveries = await read_two(redis, prefix)
    beats: list[int] = []
    beat = Heartbeat(Member(redis, prefix, CONFIG, "me"), on_beat=lambda: beats.append(1))

    async def slow() -> str:
        await asyncio.sleep(0.5)
        return "done"

    assert await beat.run(deliveries, slow()) == "done"
    assert len(beats) >= 5  # every min_idle / 3
    rows = await pending_rows(redis, key)
    assert len(rows) == 2
    assert all(r["time_since_delivered"] < 150 for r in rows)  # every entry, not just the first
    assert await redis.exists(heartbeat_key(prefix, "agents", "g"))  # past claim_interval_s


async def test_a_failing_beat_does_not_fail_the_work(prefix: str) -> None:
    dead = redis_client("redis://127.0.0.1:1/0")
    beat = Heartbeat(Member(dead, prefix, CONFIG, "me"))
    delivery = Delivery(stream="agents", entry_id="1-0", event=agent(1))

    async def slow() -> int:
        await asyncio.sleep(0.2)
        return 7

    assert await beat.run([delivery], slow()) == 7
    await dead.aclose()
