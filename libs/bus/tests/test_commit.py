"""Commit on its own against the real Redis: outputs published and inputs acked together."""

from __future__ import annotations

import os

from redis.asyncio import Redis
from smoltbot_bus import ConsumerConfig, EventCipher, Output
from smoltbot_bus._commit import Committer
from smoltbot_bus._entries import Member
from smoltbot_contracts.codec import decode_fields
from smoltbot_contracts.streams import stream_key
from smoltbot_testing.events import agent_event as agent
from smoltbot_testing.events import exchange_event as exchange

from libs.bus.tests.bus_testkit import delivered, pending

CONFIG = ConsumerConfig(group="g", streams=["agents"])


async def test_outputs_are_published_and_inputs_acked(redis: Redis, prefix: str) -> None:
    events = [agent(i) for i in range(3)]
    deliveries = await delivered(redis, prefix, events, "c")
    cipher = EventCipher(os.urandom(32))
    body = exchange()
    committer = Committer(Member(redis, prefix, CONFIG, "c"), cipher)
    await committer.commit(
        [Output("exchanges", body), Output("replies:gw", events[0], maxlen=10, ttl_s=60)],
        deliveries,
    )
    assert await pending(redis, stream_key(prefix, "agents")) == 0
    ((_, sealed),) = await redis.xrange(stream_key(prefix, "exchanges"))
    assert b"k" in sealed  # a body stream's output is sealed like any publish
    assert decode_fields(sealed, cipher.open(sealed)) == body
    assert 0 < int(await redis.ttl(stream_key(prefix, "replies:gw"))) <= 60


async def test_an_empty_commit_only_acks(redis: Redis, prefix: str) -> None:
    deliveries = await delivered(redis, prefix, [agent(1)], "c")
    committer = Committer(Member(redis, prefix, CONFIG, "c"), EventCipher(None))
    await committer.commit([], deliveries)
    assert await pending(redis, stream_key(prefix, "agents")) == 0
