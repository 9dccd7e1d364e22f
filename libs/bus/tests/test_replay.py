"""Replaying a range to one consumer group: rewind or put back into its pending list."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis
from smoltbot_bus import (
    REPLAY_CONSUMER,
    Consumer,
    ReplayError,
    plan_replay,
    replay,
)
from smoltbot_bus._heartbeat import beat_group
from smoltbot_bus._streams import parse_id
from smoltbot_contracts.streams import stream_key
from smoltbot_testing.events import agent_event as agent

from libs.bus.tests.bus_testkit import Record, add, fast_config, running, until


async def handled_by(redis: Redis, key: str, group: str, n: int, *, ack: bool = True) -> None:
    """``group`` (created from the start) reads ``n`` entries as consumer ``c``, acked or not."""
    await redis.xgroup_create(key, group, id="0", mkstream=True)
    reply: Any = await redis.xreadgroup(group, "c", {key: ">"}, count=n)
    ids = [i for i, _ in reply[0][1]] if reply else []
    if ack and ids:
        await redis.xack(key, group, *ids)


async def group_row(redis: Redis, key: str, group: str) -> dict[str, Any]:
    rows: list[dict[str, Any]] = await redis.xinfo_groups(key)
    return next(r for r in rows if r["name"].decode() == group)


async def test_rewind_hands_the_range_again_to_that_group_only(redis: Redis, prefix: str) -> None:
    key = stream_key(prefix, "agents")
    ids = await add(redis, key, [agent(i) for i in range(10)])
    await handled_by(redis, key, "g", 10)
    await handled_by(redis, key, "other", 10)
    await beat_group(redis, prefix, "agents", "g", 60_000)
    other_before = await group_row(redis, key, "other")

    plan = await plan_replay(redis, prefix, "agents", "g", start=parse_id(ids[3]))
    assert (plan.method, plan.redeliver, plan.undelivered, plan.live) == ("rewind", 7, 0, True)
    assert plan.position == ids[-1]
    assert (await group_row(redis, key, "g"))["lag"] == 0  # planning changed nothing

    assert await replay(redis, prefix, plan) == 7
    assert (await group_row(redis, key, "g"))["lag"] == 7  # exact at once (ENTRIESREAD)
    assert await group_row(redis, key, "other") == other_before
    again: Any = await redis.xreadgroup("g", "c", {key: ">"})
    assert [i.decode() for i, _ in again[0][1]] == ids[3:]
    assert (await group_row(redis, key, "g"))["lag"] == 0


async def test_an_end_past_the_position_rewinds_and_counts_what_was_not_handed_yet(
    redis: Redis, prefix: str
) -> None:
    key = stream_key(prefix, "agents")
    ids = await add(redis, key, [agent(i) for i in range(10)])
    await handled_by(redis, key, "g", 6)

    plan = await plan_replay(
        redis, prefix, "agents", "g", start=parse_id(ids[2]), end=parse_id(ids[8])
    )
    assert (plan.method, plan.redeliver, plan.undelivered, plan.live) == ("rewind", 4, 3, False)
    await replay(redis, prefix, plan)
    again: Any = await redis.xreadgroup("g", "c", {key: ">"})
    assert [i.decode() for i, _ in again[0][1]] == ids[2:]  # nothing skipped, nothing before


async def test_a_range_before_the_position_goes_back_into_the_pending_list(
    redis: Redis, prefix: str
) -> None:
    key = stream_key(prefix, "agents")
    events = [agent(i) for i in range(10)]
    ids = await add(redis, key, events)
    await handled_by(redis, key, "g", 10, ack=False)
    await redis.xack(key, "g", *[i for i in ids if i != ids[3]])  # ids[3] is still in flight
    position = (await group_row(redis, key, "g"))["last-delivered-id"]

    plan = await plan_replay(
        redis, prefix, "agents", "g", start=parse_id(ids[2]), end=parse_id(ids[4])
    )
    assert (plan.method, plan.redeliver, plan.already_pending) == ("pending", 2, 1)
    assert await replay(redis, prefix, plan) == 2

    row = await group_row(redis, key, "g")
    assert (row["last-delivered-id"], row["lag"], row["pending"]) == (position, 0, 3)
    rows: Any = await redis.xpending_range(key, "g", min="-", max="+", count=10)
    owners = {r["message_id"].decode(): r for r in rows}
    assert owners[ids[3]]["consumer"] == b"c"  # left to its owner
    for i in (ids[2], ids[4]):
        assert owners[i]["consumer"] == REPLAY_CONSUMER.encode()
        assert owners[i]["times_delivered"] == 0
        assert owners[i]["time_since_delivered"] > 24 * 3600 * 1000

    # The group's reaper takes them over at once and hands them over as delivery 1.
    seen: Record[tuple[str, int]] = Record(lambda d: (d.entry_id, d.deliveries))
    cfg = fast_config(min_idle_ms=60_000)
    async with running(Consumer(redis, prefix, cfg, seen, consumer_name="p1")):
        await until(lambda: len(seen.seen) >= 2)
    assert seen.seen == [(ids[2], 1), (ids[4], 1)]


async def test_pending_replay_pages_through_long_ranges(redis: Redis, prefix: str) -> None:
    key = stream_key(prefix, "agents")
    ids = await add(redis, key, [agent(i) for i in range(1300)])
    await handled_by(redis, key, "g", 1300)
    plan = await plan_replay(
        redis, prefix, "agents", "g", start=parse_id(ids[0]), end=parse_id(ids[1200])
    )
    progress: list[int] = []
    assert await replay(redis, prefix, plan, progress=progress.append) == 1201
    assert sum(progress) == 1201
    assert int((await redis.xpending(key, "g"))["pending"]) == 1201


async def test_nothing_to_replay_changes_nothing(redis: Redis, prefix: str) -> None:
    key = stream_key(prefix, "agents")
    ids = await add(redis, key, [agent(i) for i in range(5)])
    await handled_by(redis, key, "g", 2)
    before = await group_row(redis, key, "g")
    # Nothing of the range was handed yet: a rewind to before it would skip entries 2..3.
    plan = await plan_replay(redis, prefix, "agents", "g", start=parse_id(ids[4]))
    assert (plan.method, plan.redeliver, plan.undelivered) == ("none", 0, 1)
    assert await replay(redis, prefix, plan) == 0
    assert await group_row(redis, key, "g") == before


async def test_unknown_stream_or_group_is_an_error(redis: Redis, prefix: str) -> None:
    with pytest.raises(ReplayError, match="does not exist"):
        await plan_replay(redis, prefix, "agents", "g", start=(0, 0))
    key = stream_key(prefix, "agents")
    await add(redis, key, [agent(1)])
    await handled_by(redis, key, "persister", 1)
    with pytest.raises(ReplayError, match="its groups: persister"):
        await plan_replay(redis, prefix, "agents", "g", start=(0, 0))
