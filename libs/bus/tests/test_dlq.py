"""Dead letters: the one entry format (pure) and the one writer (against the real Redis)."""

from __future__ import annotations

import os
import time
from datetime import datetime

from redis.asyncio import Redis
from smoltbot_bus import ConsumerConfig, DeadLetter, EventCipher
from smoltbot_bus._dlq import DeadLetters, expire_dead_letters
from smoltbot_bus._entries import Entry, Member
from smoltbot_bus._types import Delivery
from smoltbot_contracts.codec import decode_fields
from smoltbot_contracts.streams import dlq_key, stream_key
from smoltbot_testing.dead_letters import observer_dead_letter, sealed_fields
from smoltbot_testing.events import agent_event as agent
from smoltbot_testing.events import exchange_event as exchange

from libs.bus.tests.bus_testkit import add, pending, read_unacked

# The fields a dead letter carried before DeadLetter existed, in the order they were written.
LEGACY = {
    b"t": b"agent.v1",
    b"id": b"ev-1",
    b"b": b"\x81\xa1x\x01",
    b"reason": b"exceeded 3 deliveries: RuntimeError: no",
    b"deliveries": b"3",
    b"source_stream": b"agents",
    b"source_id": b"1700000000000-0",
    b"group": b"persister",
    b"consumer": b"p-1",
    b"failed_at": b"2026-01-01T00:00:00+00:00",
}

# ---------------------------------------------------------------- the format (no Redis)


def test_dead_letter_reads_and_writes_the_legacy_field_names() -> None:
    letter = DeadLetter.from_fields(LEGACY)
    assert letter.event_type == "agent.v1"
    assert letter.event_id == "ev-1"
    assert letter.deliveries == 3
    assert letter.group == "persister"
    assert letter.consumer == "p-1"
    assert letter.source_id == "1700000000000-0"
    assert not letter.encrypted
    assert letter.to_fields() == LEGACY
    assert list(letter.to_fields()) == list(LEGACY)  # same order too


def test_partial_and_odd_dead_letters_still_read() -> None:
    letter = DeadLetter.from_fields({b"reason": b"x", b"deliveries": b"not a number"})
    assert (letter.reason, letter.deliveries, letter.event_type, letter.b) == ("x", 0, "", None)
    assert letter.event_fields() == {}
    foreign = {b"foo": b"bar", b"t": b"\xff"}
    odd = DeadLetter.from_fields(foreign)
    assert odd.extra == {b"foo": b"bar"}
    assert odd.event_type == "\ufffd"
    assert odd.to_fields()[b"foo"] == b"bar"  # a foreign writer's fields are kept verbatim
    assert odd.to_fields()[b"t"] == b"\xff"


def test_event_fields_are_exactly_the_wire_fields() -> None:
    sealed = sealed_fields(exchange())
    letter = observer_dead_letter(sealed, reason="invalid: x", deliveries=1)
    assert letter.event_fields() == sealed
    assert letter.encrypted
    assert datetime.fromisoformat(letter.failed_at).tzinfo is not None
    assert set(letter.to_fields()) == {*sealed, *(k for k in LEGACY if k not in sealed)}


# ---------------------------------------------------------------- the writer (real Redis)

CONFIG = ConsumerConfig(group="g", streams=["agents", "exchanges"])


async def test_writer_adds_the_dead_letter_and_acks_the_source(redis: Redis, prefix: str) -> None:
    src = stream_key(prefix, "agents")
    (entry_id,) = await add(redis, src, [agent(1)])
    await read_unacked(redis, src, "c1")
    writer = DeadLetters(Member(redis, prefix, CONFIG, "c1"), EventCipher(None))
    await writer.entry(Entry("agents", entry_id, {b"t": b"agent.v1"}, 2), "undecodable: x")
    ((_, fields),) = await redis.xrange(dlq_key(prefix, "agents"))
    letter = DeadLetter.from_fields(fields)
    assert (letter.reason, letter.deliveries, letter.source_id) == ("undecodable: x", 2, entry_id)
    assert (letter.group, letter.consumer, letter.source_stream) == ("g", "c1", "agents")
    assert await pending(redis, src) == 0


async def test_decoded_deliveries_are_dead_lettered_sealed(redis: Redis, prefix: str) -> None:
    cipher = EventCipher(os.urandom(32))
    event = exchange()
    writer = DeadLetters(Member(redis, prefix, CONFIG, "o"), cipher)
    delivery = Delivery(stream="exchanges", entry_id="1-1", event=event, deliveries=5)
    await writer.delivery(delivery, "exceeded 5 deliveries: boom")
    ((_, fields),) = await redis.xrange(dlq_key(prefix, "exchanges"))
    letter = DeadLetter.from_fields(fields)
    assert letter.encrypted
    assert b"secret response bytes" not in (letter.b or b"")
    wire = letter.event_fields()
    assert decode_fields(wire, cipher.open(wire)) == event


async def test_old_dead_letters_expire(redis: Redis, prefix: str) -> None:
    dlq = dlq_key(prefix, "agents")
    old_ms = int(time.time() * 1000) - 3600 * 1000
    for i in range(200):
        await redis.xadd(dlq, {b"reason": b"old"}, id=f"{old_ms + i}-0")
    await redis.xadd(dlq, {b"reason": b"recent"})
    await expire_dead_letters(redis, prefix, "agents", retention_s=60)
    remaining = await redis.xrange(dlq)
    assert remaining[-1][1][b"reason"] == b"recent"
    assert len(remaining) < 201
