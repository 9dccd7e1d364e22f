"""The read-only stream status, the trim plan the housekeeping applies, and id arithmetic."""

from __future__ import annotations

import time

from redis.asyncio import Redis
from smoltbot_bus import (
    MAX_SEQ,
    Retention,
    apply_trim,
    format_id,
    id_after,
    id_before,
    parse_id,
    plan_trim,
    range_ids,
    scan_page,
    stream_status,
)
from smoltbot_bus._heartbeat import beat_group
from smoltbot_contracts.streams import dlq_key, stream_key
from smoltbot_testing.events import agent_event as agent

from libs.bus.tests.bus_testkit import add, read_unacked


def test_id_arithmetic() -> None:
    assert id_before((5, 3)) == (5, 2)
    assert id_before((5, 0)) == (4, MAX_SEQ)
    assert id_before((0, 0)) == (0, 0)
    assert id_after((5, 3)) == (5, 4)
    assert id_after((5, MAX_SEQ)) == (6, 0)
    assert parse_id(b"17-2") == (17, 2)
    assert format_id((17, MAX_SEQ)) == "17-18446744073709551615"


async def test_range_ids_pages_through_an_inclusive_range(redis: Redis, prefix: str) -> None:
    key = stream_key(prefix, "agents")
    for i in range(1, 2501):
        await redis.xadd(key, {b"n": b"x" * 1000}, id=f"{i}-0")
    pages = [p async for p in range_ids(redis, key, (2, 0), (2400, 0), page=1000)]
    assert [len(p) for p in pages] == [1000, 1000, 399]
    assert pages[0][0] == (2, 0)
    assert pages[-1][-1] == (2400, 0)
    assert [
        p async for p in range_ids(redis, stream_key(prefix, "x"), (0, 0), (9, 0), page=9)
    ] == []
    assert (scan_page("exchanges"), scan_page("traces:priority"), scan_page("verdicts")) == (
        20,
        20,
        500,
    )


async def test_stream_status_shows_groups_lag_pending_and_staleness(
    redis: Redis, prefix: str
) -> None:
    key = stream_key(prefix, "agents")
    old_ms = int(time.time() * 1000) - 5000
    first = await redis.xadd(key, {b"n": b"0"}, id=f"{old_ms}-0")
    await add(redis, key, [agent(i) for i in range(4)])
    await read_unacked(redis, key, "c1", group="live", count=2)  # 2 pending, 3 unread
    await beat_group(redis, prefix, "agents", "live", 60_000)
    await read_unacked(redis, key, "c9", group="gone", count=5)  # no heartbeat: stale
    await redis.xadd(dlq_key(prefix, "agents"), {b"reason": b"x"})

    status = await stream_status(redis, prefix, "agents")
    assert (status.stream, status.length, status.dlq_length) == ("agents", 5, 1)
    assert status.first_id == first.decode()
    assert status.stale_groups == ["gone"]
    live = next(g for g in status.groups if g.group == "live")
    assert (live.live, live.lag, live.pending) == (True, 3, 2)
    assert live.oldest_pending_age_s >= 4.5
    assert [(c.name, c.pending) for c in live.consumers] == [("c1", 2)]

    empty = await stream_status(redis, prefix, "control")
    assert (empty.length, empty.first_id, empty.groups, empty.dlq_length) == (0, None, [], 0)


async def test_the_trim_plan_names_the_group_holding_it_back(redis: Redis, prefix: str) -> None:
    key = stream_key(prefix, "agents")
    ids = [await redis.xadd(key, {b"n": b"x"}, id=f"{1000 + i}-0") for i in range(300)]
    await read_unacked(redis, key, "c1", group="slow", count=150)
    await redis.xack(key, "slow", *ids[:120])  # its floor: ids[120]
    await beat_group(redis, prefix, "agents", "slow", 60_000)
    await read_unacked(redis, key, "c2", group="abandoned", count=1)

    plan = await plan_trim(redis, prefix, "agents", retention_ms=1)
    assert plan.target == (1120, 0)
    assert plan.held_by == ["slow"]
    assert plan.stale == ["abandoned"]
    removed = await apply_trim(redis, prefix, plan)
    assert 0 < removed <= 120  # whole nodes before the floor
    assert int(await redis.xlen(key)) == 300 - removed

    relaxed = await plan_trim(redis, prefix, "agents", retention_ms=3_600_000 * 24 * 365 * 100)
    assert relaxed.held_by == []  # the retention window is older than any floor
    assert relaxed.target == relaxed.cutoff


async def test_retention_per_stream_and_byte_pressure(redis: Redis, prefix: str) -> None:
    retention = Retention(retention_s=100, body_retention_s=10, max_bytes=None)
    assert retention.retention_ms("verdicts") == 100_000
    assert retention.retention_ms("exchanges:priority") == 10_000
    assert not await retention.under_pressure(redis, prefix)
    await redis.xadd(stream_key(prefix, "agents"), {b"n": b"x" * 10_000})
    assert await Retention(100, 10, max_bytes=1000).under_pressure(redis, prefix)
