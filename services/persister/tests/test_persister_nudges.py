"""Nudges on verdict.v1 (``NudgeCreated``, ``NudgesDelivered``) become one ``nudges`` row whose
status only moves forward, in whatever order and however often the verdicts come."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest
from smoltbot_bus import Delivery
from smoltbot_contracts import NudgeCreated, NudgesDelivered, ids
from smoltbot_persister.handlers import Persister
from smoltbot_persister.sinks import NUDGES, WritePlan, write_plan

from services.persister.tests.persister_factories import T0, meta, verdict

COLUMNS = (
    "SELECT id, agent_id, checkpoint_id, created_at, text, status, delivered_at,"
    " delivered_event_id FROM nudges ORDER BY id"
)


def created_and_delivered():
    """The violating exchange's verdict (creates the nudge) and the next exchange's verdict
    (its request carried the nudge)."""
    first = meta()
    second = meta()
    nudge_id = ids.nudge_id(first.exchange_id)
    checkpoint = ids.checkpoint_id(first.exchange_id)
    created = msgspec.structs.replace(
        verdict(first),
        facts=[
            NudgeCreated(
                nudge_id=nudge_id,
                agent_id=first.agent_id,
                checkpoint_id=checkpoint,
                created_at=T0,
                text="Your previous response was flagged.",
            )
        ],
    )
    delivered = msgspec.structs.replace(
        verdict(second),
        facts=[
            NudgesDelivered(
                nudge_ids=[nudge_id],
                agent_id=second.agent_id,
                exchange_id=second.exchange_id,
                event_id="evt-gateway-1",
                delivered_at=T0 + timedelta(seconds=30),
            )
        ],
    )
    pending_row = (
        nudge_id,
        first.agent_id,
        checkpoint,
        T0,
        "Your previous response was flagged.",
        "pending",
        None,
        None,
    )
    delivered_row = (
        *pending_row[:5],
        "delivered",
        T0 + timedelta(seconds=30),
        "evt-gateway-1",
    )
    return created, delivered, pending_row, delivered_row


def d(event, n: int) -> Delivery:
    return Delivery(stream="verdicts", entry_id=f"1-{n}", event=event)


async def rows(pool):
    async with pool.connection() as conn:
        cur = await conn.execute(COLUMNS)
        return await cur.fetchall()


@pytest.mark.parametrize("copy_threshold", [1, 10_000], ids=["copy", "executemany"])
async def test_created_then_delivered_and_replays_never_regress(
    pool, redis, prefix, copy_threshold
):
    p = Persister(pool, redis, prefix, copy_threshold=copy_threshold)
    created, delivered, pending_row, delivered_row = created_and_delivered()
    await p.handle([d(created, 1), d(created, 2)])
    assert await rows(pool) == [pending_row]
    await p.handle([d(delivered, 3)])
    assert await rows(pool) == [delivered_row]
    # A replayed creation (alone, or beside the delivery in one batch) never goes back.
    await p.handle([d(created, 4)])
    await p.handle([d(delivered, 5), d(created, 6)])
    assert await rows(pool) == [delivered_row]


@pytest.mark.parametrize("copy_threshold", [1, 10_000], ids=["copy", "executemany"])
async def test_delivery_before_creation_is_completed_by_it(pool, redis, prefix, copy_threshold):
    p = Persister(pool, redis, prefix, copy_threshold=copy_threshold)
    created, delivered, _, delivered_row = created_and_delivered()
    await p.handle([d(delivered, 1)])
    assert await rows(pool) == [
        (delivered_row[0], delivered_row[1], None, None, None, *delivered_row[5:])
    ]
    await p.handle([d(created, 2)])
    assert await rows(pool) == [delivered_row]


async def test_both_facts_in_one_batch_make_one_row(pool, redis, prefix):
    p = Persister(pool, redis, prefix)
    created, delivered, _, delivered_row = created_and_delivered()
    await p.handle([d(delivered, 1), d(created, 2)])
    assert await rows(pool) == [delivered_row]
    await p.handle([d(created, 3), d(delivered, 4)])
    assert await rows(pool) == [delivered_row]


async def test_replay_writes_nothing(pool, redis, prefix):
    created, delivered, _, _ = created_and_delivered()
    p = Persister(pool, redis, prefix)
    await p.handle([d(created, 1), d(delivered, 2)])
    async with pool.connection() as conn:
        plan = WritePlan()
        plan.add_verdict(created)
        plan.add_verdict(delivered)
        written = await write_plan(conn, plan, copy_threshold=10_000)
    assert written[NUDGES.table] == 0
