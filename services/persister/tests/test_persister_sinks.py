from __future__ import annotations

import time
from datetime import timedelta

import msgspec
import psycopg
import pytest
from prometheus_client import REGISTRY
from psycopg.types.json import Jsonb
from smoltbot_bus import Delivery, InvalidEvent, Retryable
from smoltbot_contracts import AgentV1, CardRecord, ControlV1, ExchangeV1
from smoltbot_contracts.cards import default_card
from smoltbot_contracts.ids import card_id, uuid7
from smoltbot_contracts.streams import card_key
from smoltbot_db import create_pool
from smoltbot_persister.handlers import Persister
from smoltbot_testing.pg import BUS_TABLES, temporary_database

from services.persister.tests.persister_factories import (
    T0,
    agent_event,
    agent_identity,
    meta,
    verdict,
)


def d(event, stream: str = "verdicts", n: int = 1) -> Delivery:
    return Delivery(stream=stream, entry_id=f"1-{n}", event=event)


async def counts(pool) -> dict[str, int]:
    out = {}
    async with pool.connection() as conn:
        for t in BUS_TABLES:
            cur = await conn.execute(f"SELECT count(*) FROM {t}")
            out[t] = (await cur.fetchone())[0]
    return out


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize("copy_threshold", [1, 10_000], ids=["copy", "executemany"])
async def test_same_verdict_three_times_leaves_one_row_each(pool, redis, prefix, copy_threshold):
    p = Persister(pool, redis, prefix, copy_threshold=copy_threshold)
    v = verdict(meta())
    before = metric("smoltbot_persister_rows_written_total", table="exchanges")
    # twice inside one batch, once more in a later batch (a redelivery)
    assert await p.handle([d(v, n=1), d(v, n=2)]) == []
    await p.handle([d(v, n=3)])
    assert await counts(pool) == {
        "agents": 1,  # created from meta: the verdict overtook agent.v1
        "alignment_cards": 0,
        "exchanges": 1,
        "traces": 1,
        "verifications": 1,
        "integrity_checkpoints": 1,
        "drift_alerts": 0,
        "agent_containment_log": 0,
        "nudges": 0,
    }
    assert metric("smoltbot_persister_rows_written_total", table="exchanges") - before == 1

    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT e.exchange_id::text, e.input_tokens, e.completed_at, t.trace_id, t.verified,"
            " t.action, v.violations, c.checkpoint_id, c.verdict, c.concerns, c.timestamp"
            " FROM exchanges e JOIN traces t USING (exchange_id)"
            " JOIN verifications v USING (trace_id)"
            " JOIN integrity_checkpoints c ON c.exchange_id = e.exchange_id"
        )
        row = await cur.fetchone()
    assert row[0] == v.meta.exchange_id
    assert row[1] == 10  # input tokens
    assert row[2] == T0
    assert row[3] == v.trace.trace_id
    assert row[4] is False
    assert row[5] == msgspec.to_builtins(v.trace.action)
    assert row[5]["category"] == "bounded"
    assert row[5]["parameters"] == {"k": [1, 2]}
    assert row[6] == [
        {"type": "forbidden", "severity": "high", "description": "x", "trace_field": None}
    ]
    assert row[7] == v.checkpoint.checkpoint_id
    assert row[8] == "review_needed"
    assert row[9][0]["category"] == "deception"
    assert row[10] == T0  # the exchange's completion time, never "now"


async def test_verdict_without_trace_or_checkpoint_still_records_the_exchange(pool, redis, prefix):
    p = Persister(pool, redis, prefix)
    await p.handle([d(verdict(meta(), with_trace=False, with_checkpoint=False))])
    c = await counts(pool)
    assert (c["exchanges"], c["traces"], c["verifications"], c["integrity_checkpoints"]) == (
        1,
        0,
        0,
        0,
    )


async def test_agent_first_sight_creates_row_card_and_cache(pool, redis, prefix):
    p = Persister(pool, redis, prefix)
    ev = agent_event(name="bot")
    await p.handle([d(ev, stream="agents")])
    aid = ev.agent_id
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT a.agent_hash, a.name, a.first_seen_at, a.last_seen_at, c.id, c.card_json,"
            " c.is_active, c.issued_at FROM agents a JOIN alignment_cards c ON c.agent_id = a.id"
        )
        rows = await cur.fetchall()
    assert len(rows) == 1
    h, name, first, last, cid, card, active, issued = rows[0]
    assert (h, name, first, last) == (ev.agent_hash, "bot", T0, T0)
    assert cid == card_id(aid)
    assert card == default_card(aid, T0)
    assert active is True
    assert issued == T0

    raw = await redis.get(card_key(prefix, aid))
    record = msgspec.msgpack.decode(raw, type=CardRecord)
    assert record.card_id == card_id(aid)
    assert record.card == default_card(aid, T0)

    # A later sighting widens last_seen only; the default card is not duplicated.
    await p.handle([d(agent_event(at=T0 + timedelta(hours=3), name="bot"), stream="agents")])
    await p.handle([d(agent_event(at=T0 - timedelta(hours=1), name="bot"), stream="agents")])
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT first_seen_at, last_seen_at FROM agents")
        assert await cur.fetchall() == [(T0 - timedelta(hours=1), T0 + timedelta(hours=3))]
    assert (await counts(pool))["alignment_cards"] == 1


async def test_card_cache_is_never_overwritten(pool, redis, prefix):
    p = Persister(pool, redis, prefix)
    ev = agent_event()
    published = CardRecord(card_id="ac-custom", card={"custom": True}, version=7)
    await redis.set(card_key(prefix, ev.agent_id), msgspec.msgpack.encode(published))
    await p.handle([d(ev, stream="agents")])
    raw = await redis.get(card_key(prefix, ev.agent_id))
    assert msgspec.msgpack.decode(raw, type=CardRecord) == published


async def test_cache_seeds_the_active_card_not_the_default(pool, redis, prefix):
    """A replayed agent.v1 after the api published a card must not bring the default back."""
    p = Persister(pool, redis, prefix)
    ev = agent_event()
    await p.handle([d(ev, stream="agents")])
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("UPDATE alignment_cards SET is_active = false")
        await conn.execute(
            "INSERT INTO alignment_cards (id, agent_id, card_json, conscience_values, issued_at)"
            " VALUES ('ac-v2', %s, %s, %s, now())",
            (ev.agent_id, Jsonb({"v": 2}), Jsonb([{"type": "BOUNDARY", "content": "no"}])),
        )
    await redis.delete(card_key(prefix, ev.agent_id))  # e.g. Redis lost its data
    await p.handle([d(ev, stream="agents")])
    record = msgspec.msgpack.decode(await redis.get(card_key(prefix, ev.agent_id)), type=CardRecord)
    assert record.card_id == "ac-v2"
    assert record.conscience_values[0].content == "no"
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT id FROM alignment_cards WHERE is_active")
        assert await cur.fetchall() == [("ac-v2",)]


async def test_verdict_before_agent_then_agent_event(pool, redis, prefix):
    p = Persister(pool, redis, prefix)
    m = meta(at=T0)
    await p.handle([d(verdict(m))])
    await p.handle([d(agent_event(at=T0 - timedelta(minutes=5), name="late"), stream="agents")])
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT id, name, first_seen_at, last_seen_at FROM agents")
        assert await cur.fetchall() == [(m.agent_id, "late", T0 - timedelta(minutes=5), T0)]
    assert (await counts(pool))["alignment_cards"] == 1


async def test_control_events_are_counted_not_dropped(pool, redis, prefix):
    p = Persister(pool, redis, prefix)
    before = metric("smoltbot_persister_control_ignored_total", kind="reverify")
    ev = ControlV1(event_id=uuid7(), kind="reverify", agent_id="smolt-1", issued_at=T0)
    assert await p.handle([d(ev, stream="control")]) == []
    assert metric("smoltbot_persister_control_ignored_total", kind="reverify") - before == 1
    assert sum((await counts(pool)).values()) == 0


async def test_malformed_exchange_id_is_invalid_event(pool, redis, prefix):
    p = Persister(pool, redis, prefix)
    bad = verdict(meta(exchange_id="not-a-uuid"))
    with pytest.raises(InvalidEvent, match="not a UUID"):
        await p.handle([d(bad)])


async def test_unexpected_event_type_is_invalid_event(pool, redis, prefix):
    p = Persister(pool, redis, prefix)
    m = meta()
    with pytest.raises(InvalidEvent, match="exchange.v1 is not handled"):
        await p.handle([d(ExchangeV1(event_id=m.exchange_id, meta=m))])


async def test_poison_entry_fails_its_batch_but_not_the_good_entries(pool, redis, prefix):
    """Same exchange, conflicting trace id: PostgreSQL rejects it on every attempt."""
    p = Persister(pool, redis, prefix)
    good = verdict(meta(key="sk-good"))
    first = verdict(meta(key="sk-other"))
    clash = msgspec.structs.replace(
        first,
        event_id=uuid7(),
        trace=msgspec.structs.replace(first.trace, trace_id="tr-someone-else"),
        verification=None,
        checkpoint=None,
    )
    await p.handle([d(first)])
    with pytest.raises(psycopg.IntegrityError):
        await p.handle([d(good, n=1), d(clash, n=2)])
    assert (await counts(pool))["exchanges"] == 1  # the failed batch committed nothing
    # what the bus does next: entry by entry
    await p.handle([d(good, n=1)])
    with pytest.raises(InvalidEvent, match="rejected by PostgreSQL"):
        await p.handle([d(clash, n=2)])
    assert (await counts(pool))["exchanges"] == 2


async def test_many_agents_in_one_batch(pool, redis, prefix):
    p = Persister(pool, redis, prefix, copy_threshold=1)
    events = [agent_event(key=f"k{i}") for i in range(50)]
    events += [verdict(meta(key=f"k{i}")) for i in range(50)]
    await p.handle([d(e, n=i) for i, e in enumerate(events)])
    c = await counts(pool)
    assert (c["agents"], c["alignment_cards"], c["exchanges"]) == (50, 50, 50)
    assert len([k async for k in redis.scan_iter(match=f"{prefix}card:*")]) == 50
    aid, _ = agent_identity("k0")
    assert await redis.exists(card_key(prefix, aid)) == 1


async def test_database_outage_fails_fast_after_the_first_failure(redis, prefix):
    dead = create_pool("postgresql://postgres@127.0.0.1:1/x", min_size=1, max_size=1, timeout_s=0.5)
    await dead.open(wait=False)
    try:
        p = Persister(dead, redis, prefix, breaker_s=30)
        with pytest.raises(Retryable, match="PostgreSQL unavailable"):
            await p.handle([d(verdict(meta()))])
        started = time.monotonic()
        with pytest.raises(Retryable, match="recent connection failure"):
            await p.handle([d(verdict(meta()))])
        assert time.monotonic() - started < 0.1
    finally:
        await dead.close()


async def test_colliding_agent_ids_are_refused_not_merged(pool, redis, prefix):
    p = Persister(pool, redis, prefix)
    first = AgentV1(
        event_id=uuid7(), agent_id="smolt-deadbeef", agent_hash="deadbeef00000001", seen_at=T0
    )
    second = AgentV1(
        event_id=uuid7(), agent_id="smolt-deadbeef", agent_hash="deadbeef00000002", seen_at=T0
    )
    await p.handle([d(first, "agents")])
    with pytest.raises(InvalidEvent, match="collision"):
        await p.handle([d(second, "agents")])
    with pytest.raises(InvalidEvent, match="collision"):  # both in one batch: refused too
        await p.handle([d(first, "agents"), d(second, "agents")])
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT agent_hash FROM agents WHERE id = 'smolt-deadbeef'")
        assert await cur.fetchall() == [("deadbeef00000001",)]


async def test_a_schema_behind_the_code_is_waited_for_not_dead_lettered(redis, prefix):
    with temporary_database("unmigrated") as url:
        bare = create_pool(url, min_size=1, max_size=1)
        await bare.open(wait=True, timeout=10)
        try:
            with pytest.raises(Retryable, match="schema not migrated"):
                await Persister(bare, redis, prefix).handle([d(verdict(meta()))])
        finally:
            await bare.close()
