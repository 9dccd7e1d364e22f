"""Reading on its own against the real Redis: groups, priority lane, own pending, the reaper."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY
from redis.asyncio import Redis
from smoltbot_bus import ConsumerConfig
from smoltbot_bus._entries import Entry, Member
from smoltbot_bus._policy import FailurePolicy
from smoltbot_bus._reader import Reader
from smoltbot_contracts.codec import to_fields
from smoltbot_contracts.streams import stream_key
from smoltbot_testing.events import agent_event as agent


def reader(redis: Redis, prefix: str, name: str = "c1", **kw: object) -> Reader:
    base: dict[str, object] = {"group": "g", "streams": ["agents"], "block_ms": 20}
    base.update(kw)
    config = ConsumerConfig(**base)  # type: ignore[arg-type]
    return Reader(Member(redis, prefix, config, name), FailurePolicy(config.max_deliveries))


def lost_count() -> float:
    labels = {"stream": "agents", "outcome": "lost"}
    return REGISTRY.get_sample_value("smoltbot_bus_entries_total", labels) or 0


async def test_groups_are_created_once_from_the_start(redis: Redis, prefix: str) -> None:
    key = stream_key(prefix, "agents")
    event = agent(1)
    await redis.xadd(key, to_fields(event))
    r = reader(redis, prefix)
    await r.ensure_groups()
    await r.ensure_groups()  # BUSYGROUP is not an error
    batch = await r.read()
    assert [e.fields for e in batch] == [to_fields(event)]
    assert batch[0].deliveries == 1
    assert await r.read() == []  # blocked block_ms, nothing new


async def test_priority_streams_come_first_without_starving_the_rest(
    redis: Redis, prefix: str
) -> None:
    r = reader(redis, prefix, streams=["agents:priority", "agents"], batch_size=10)
    await r.ensure_groups()
    await redis.xadd(stream_key(prefix, "agents"), to_fields(agent(1)))
    await redis.xadd(stream_key(prefix, "agents:priority"), to_fields(agent(2)))
    assert [e.stream for e in await r.read()] == ["agents:priority"]
    assert [e.stream for e in await r.read()] == ["agents"]


async def test_own_pending_entries_are_drained_with_their_counts(redis: Redis, prefix: str) -> None:
    key = stream_key(prefix, "agents")
    for i in range(5):
        await redis.xadd(key, to_fields(agent(i)))
    r = reader(redis, prefix, batch_size=2)
    await r.ensure_groups()
    await redis.xreadgroup("g", "c1", {key: ">"}, count=10)  # a previous c1 died holding them
    await redis.xreadgroup("g", "other", {key: ">"}, count=10)  # nothing left for others
    pages: list[list[Entry]] = []

    async def process(entries: list[Entry]) -> None:
        pages.append(entries)

    await r.drain_own_pending(process, asyncio.Event())
    assert [len(p) for p in pages] == [2, 2, 1]
    assert {e.deliveries for p in pages for e in p} == {2}
    stop = asyncio.Event()
    stop.set()
    pages.clear()
    await r.drain_own_pending(process, stop)
    assert pages == []


async def test_the_reaper_claims_idle_entries_and_hands_back_exhausted_ones(
    redis: Redis, prefix: str
) -> None:
    key = stream_key(prefix, "agents")
    events = [agent(i) for i in range(2)]
    ids = [(await redis.xadd(key, to_fields(e))).decode() for e in events]
    r = reader(redis, prefix, name="reaper", min_idle_ms=10, max_deliveries=2)
    await r.ensure_groups()
    await redis.xreadgroup("g", "dead", {key: ">"}, count=10)
    await redis.xclaim(key, "g", "dead", min_idle_time=0, message_ids=[ids[1]])  # 2nd delivery
    await asyncio.sleep(0.05)
    claim = await r.claim_idle("agents")
    assert [(e.entry_id, e.deliveries) for e in claim.exhausted] == [(ids[1], 2)]
    assert claim.exhausted[0].fields == to_fields(events[1])
    assert [(e.entry_id, e.deliveries) for e in claim.claimed] == [(ids[0], 2)]
    (row,) = await redis.xpending_range(key, "g", min=ids[0], max=ids[0], count=1)
    assert row["consumer"] == b"reaper"


async def test_entries_trimmed_while_pending_are_acked_and_counted_lost(
    redis: Redis, prefix: str
) -> None:
    key = stream_key(prefix, "agents")
    await redis.xadd(key, to_fields(agent(1)))
    r = reader(redis, prefix, min_idle_ms=10)
    await r.ensure_groups()
    await redis.xreadgroup("g", "c1", {key: ">"}, count=10)
    await redis.xtrim(key, maxlen=0)
    before = lost_count()
    pages: list[list[Entry]] = []

    async def process(entries: list[Entry]) -> None:
        pages.append(entries)

    await r.drain_own_pending(process, asyncio.Event())  # own PEL: the entry comes back empty
    assert pages == []
    assert lost_count() == before + 1
    assert int((await redis.xpending(key, "g"))["pending"]) == 0


async def test_leaving_removes_the_consumer_only_when_it_holds_nothing(
    redis: Redis, prefix: str
) -> None:
    key = stream_key(prefix, "agents")
    await redis.xadd(key, to_fields(agent(1)))
    r = reader(redis, prefix)
    await r.ensure_groups()
    assert len(await r.read()) == 1
    await r.leave()
    assert [c["name"] for c in await redis.xinfo_consumers(key, "g")] == [b"c1"]
    await redis.xack(key, "g", *[i for i, _ in await redis.xrange(key)])
    await r.leave()
    assert await redis.xinfo_consumers(key, "g") == []
