"""Shared by the bus tests: fast consumer configs, stream seeding, recording and slow handlers,
and running a consumer until a condition holds.

A plain module imported by its repo path (``from libs.bus.tests.bus_testkit import ...``): with
``--import-mode=importlib`` test modules cannot import a conftest or each other.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

from redis.asyncio import Redis
from smoltbot_bus import Consumer, ConsumerConfig, Delivery, Handler, Output, Retryable
from smoltbot_contracts import Event
from smoltbot_contracts.codec import to_fields
from smoltbot_contracts.streams import stream_key

T = TypeVar("T")
Condition = Callable[[], object]  # a truth value, or an awaitable of one
RawEntry = tuple[bytes, dict[bytes, bytes]]


def fast_config(**overrides: Any) -> ConsumerConfig:
    """Group ``g`` on ``agents``, polling fast (20 ms blocking reads, a claim pass every 50 ms);
    ``overrides`` replace any of these and set the rest."""
    fields = {"group": "g", "streams": ["agents"], "block_ms": 20, "claim_interval_s": 0.05}
    return ConsumerConfig(**{**fields, **overrides})


# ---------------------------------------------------------------- streams


async def add(redis: Redis, key: str, events: Iterable[Event]) -> list[str]:
    """XADD each of ``events`` to stream ``key``, in order; their entry ids."""
    return [(await redis.xadd(key, to_fields(e))).decode() for e in events]  # type: ignore[arg-type]


async def read_unacked(
    redis: Redis, key: str, consumer: str, *, group: str = "g", count: int | None = None
) -> list[RawEntry]:
    """Create ``group`` from the start of ``key`` and read (up to ``count``) entries as
    ``consumer`` without acking them: a consumer that died holding them."""
    await redis.xgroup_create(key, group, id="0")
    reply = await redis.xreadgroup(group, consumer, {key: ">"}, count=count)
    return list(reply[0][1]) if reply else []


async def delivered(
    redis: Redis, prefix: str, events: Sequence[Event], consumer: str, stream: str = "agents"
) -> list[Delivery]:
    """``events`` added to ``stream`` and read, unacked, by ``consumer`` of group ``g``: the
    deliveries its handler is handed."""
    key = stream_key(prefix, stream)
    await add(redis, key, events)
    entries = await read_unacked(redis, key, consumer)
    return [
        Delivery(stream=stream, entry_id=entry_id.decode(), event=event)
        for (entry_id, _), event in zip(entries, events, strict=True)
    ]


async def xlen(redis: Redis, key: str) -> int:
    return int(await redis.xlen(key))


async def pending(redis: Redis, key: str, group: str = "g") -> int:
    """How many entries of ``key`` ``group`` has read and not acked."""
    return int((await redis.xpending(key, group))["pending"])


# ---------------------------------------------------------------- handlers


class Record(Generic[T]):
    """A handler that notes ``pick(delivery)`` of every delivery it is handed, in ``seen``, and
    outputs nothing."""

    def __init__(self, pick: Callable[[Delivery], T]) -> None:
        self.pick = pick
        self.seen: list[T] = []

    async def __call__(self, batch: Sequence[Delivery]) -> Sequence[Output]:
        self.seen.extend(self.pick(d) for d in batch)
        return []


def event_ids() -> Record[str]:
    """A :class:`Record` of the event ids handed over."""
    return Record(lambda d: d.event.event_id)


class Outage:
    """A handler whose dependency is down for its first ``failures`` calls (it raises
    ``Retryable``); ``calls`` holds the delivery counts of every batch it was handed."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[list[int]] = []

    async def __call__(self, batch: Sequence[Delivery]) -> Sequence[Output]:
        self.calls.append([d.deliveries for d in batch])
        if len(self.calls) <= self.failures:
            raise Retryable("postgres is down")
        return []


class Slow:
    """A handler that spends ``seconds`` on every batch; ``started`` is set once the first
    arrives, ``calls`` counts them."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = asyncio.Event()
        self.calls = 0

    async def __call__(self, batch: Sequence[Delivery]) -> Sequence[Output]:
        self.calls += 1
        self.started.set()
        await asyncio.sleep(self.seconds)
        return []


async def nothing(batch: Sequence[Delivery]) -> Sequence[Output]:
    """A handler that accepts every batch and outputs nothing."""
    return []


# ---------------------------------------------------------------- running


async def until(condition: Condition, timeout: float = 10.0, every: float = 0.02) -> None:
    """Wait until ``condition()`` (plain or awaitable) holds, checking ``every`` seconds; raise
    ``TimeoutError`` after ``timeout``."""
    async with asyncio.timeout(timeout):
        while True:
            result = condition()
            if await result if inspect.isawaitable(result) else result:
                return
            await asyncio.sleep(every)


@asynccontextmanager
async def running(consumer: Consumer) -> AsyncIterator[Consumer]:
    """``consumer.run()`` as a task for the block; then it is stopped and waited for (5 s)."""
    task = asyncio.create_task(consumer.run())
    try:
        yield consumer
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 5)


async def consume_until(
    redis: Redis,
    prefix: str,
    handler: Handler,
    done: Condition,
    cfg: ConsumerConfig,
    *,
    name: str = "c1",
    timeout: float = 10.0,
) -> Consumer:
    """Run consumer ``name`` of ``handler`` under ``cfg`` until ``done()`` holds (fail after
    ``timeout``), then stop it; the stopped consumer."""
    async with running(Consumer(redis, prefix, cfg, handler, consumer_name=name)) as consumer:
        await until(done, timeout)
    return consumer
