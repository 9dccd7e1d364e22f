"""Batch handling with in-memory stand-ins for Redis: decode, policy, commits, dead letters."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import TypeVar

from prometheus_client import REGISTRY
from smoltbot_bus import (
    Consumer,
    ConsumerConfig,
    Delivery,
    EventCipher,
    InvalidEvent,
    Output,
    Retryable,
    redis_client,
)
from smoltbot_bus._entries import Entry
from smoltbot_bus._policy import FailurePolicy
from smoltbot_bus._processing import Processor
from smoltbot_contracts.codec import to_fields
from smoltbot_testing.events import agent_event as agent

from libs.bus.tests.bus_testkit import Outage, Record

T = TypeVar("T")


class Beats:
    """Heartbeat stand-in: runs the work, counts how often it was asked to."""

    def __init__(self) -> None:
        self.calls = 0

    async def run(self, deliveries: Sequence[Delivery], work: Awaitable[T]) -> T:
        self.calls += 1
        return await work


class Commits:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.outputs: list[Output] = []

    async def commit(self, outputs: Sequence[Output], deliveries: Sequence[Delivery]) -> None:
        self.batches.append([d.entry_id for d in deliveries])
        self.outputs.extend(outputs)


class Letters:
    def __init__(self) -> None:
        self.letters: list[tuple[str, str, int]] = []

    async def entry(self, entry: Entry, reason: str) -> None:
        self.letters.append((entry.entry_id, reason, entry.deliveries))

    async def delivery(self, delivery: Delivery, reason: str) -> None:
        self.letters.append((delivery.entry_id, reason, delivery.deliveries))


class Rig:
    def __init__(self, handler, max_deliveries: int = 3) -> None:  # type: ignore[no-untyped-def]
        self.beats, self.commits, self.letters = Beats(), Commits(), Letters()
        self.stop = asyncio.Event()
        self.processor = Processor(
            handler,
            policy=FailurePolicy(max_deliveries),
            heartbeat=self.beats,  # type: ignore[arg-type]
            committer=self.commits,  # type: ignore[arg-type]
            dead_letters=self.letters,  # type: ignore[arg-type]
            cipher=EventCipher(None),
            stop=self.stop,
        )


def entries(n: int, deliveries: int = 1) -> list[Entry]:
    return [Entry("agents", f"{i}-0", to_fields(agent(i)), deliveries) for i in range(n)]


async def test_a_good_batch_is_committed_once() -> None:
    async def relay(batch: Sequence[Delivery]) -> Sequence[Output]:
        return [Output("control", d.event) for d in batch]

    rig = Rig(relay)
    await rig.processor.process(entries(3))
    assert rig.commits.batches == [["0-0", "1-0", "2-0"]]
    assert len(rig.commits.outputs) == 3
    assert rig.letters.letters == []


async def test_undecodable_entries_are_dead_lettered_and_the_rest_handled() -> None:
    handled = Record(lambda d: d.entry_id)
    rig = Rig(handled)
    garbage = Entry("agents", "9-0", {b"t": b"agent.v1", b"id": b"x", b"b": b"\xc1"}, 2)
    await rig.processor.process([garbage, *entries(1)])
    ((entry_id, reason, deliveries),) = rig.letters.letters
    assert (entry_id, deliveries) == ("9-0", 2)
    assert reason.startswith("undecodable: agent.v1")
    assert handled.seen == ["0-0"]


async def test_a_poison_entry_is_isolated_remembered_then_dead_lettered_by_the_reaper() -> None:
    async def handler(batch: Sequence[Delivery]) -> Sequence[Output]:
        if any(d.entry_id == "1-0" for d in batch):
            raise RuntimeError("database said no")
        return []

    rig = Rig(handler)
    await rig.processor.process(entries(3))
    assert rig.commits.batches == [["0-0"], ["2-0"]]  # the good ones, one by one
    assert rig.letters.letters == []  # delivery 1 of 3: stays pending
    poison = entries(2, deliveries=3)[1]
    await rig.processor.dead_letter_exhausted([poison])
    assert rig.letters.letters == [
        ("1-0", "exceeded 3 deliveries: RuntimeError: database said no", 3)
    ]


async def test_last_delivery_and_invalid_events_are_dead_lettered_inline() -> None:
    async def invalid(batch: Sequence[Delivery]) -> Sequence[Output]:
        raise InvalidEvent("agent id collides")

    rig = Rig(invalid)
    await rig.processor.process(entries(1))
    assert rig.letters.letters == [("0-0", "invalid: agent id collides", 1)]

    async def failing(batch: Sequence[Delivery]) -> Sequence[Output]:
        raise RuntimeError("no")

    rig = Rig(failing, max_deliveries=2)
    await rig.processor.process(entries(1, deliveries=2))
    assert rig.letters.letters == [("0-0", "exceeded 2 deliveries: RuntimeError: no", 2)]
    await rig.processor.dead_letter_exhausted(entries(1, deliveries=2))
    assert rig.letters.letters[-1][1] == "exceeded 2 deliveries: handler kept failing"


async def test_retryable_holds_the_same_batch_under_heartbeat_until_it_passes() -> None:
    outage = Outage(failures=1)
    rig = Rig(outage, max_deliveries=1)
    await rig.processor.process(entries(3))
    assert outage.calls == [[1, 1, 1]] * 2
    assert rig.commits.batches == [["0-0", "1-0", "2-0"]]
    assert rig.letters.letters == []
    assert rig.beats.calls == 3  # the first call, the pause, the retry: all under heartbeat


async def test_a_held_batch_is_left_pending_when_the_consumer_stops() -> None:
    rig: Rig

    async def handler(batch: Sequence[Delivery]) -> Sequence[Output]:
        rig.stop.set()
        raise Retryable("postgres is down")

    rig = Rig(handler)
    await asyncio.wait_for(rig.processor.process(entries(2)), 2)
    assert rig.commits.batches == []
    assert rig.letters.letters == []


async def test_a_held_batch_that_fails_differently_is_isolated() -> None:
    calls: list[int] = []

    async def handler(batch: Sequence[Delivery]) -> Sequence[Output]:
        calls.append(len(batch))
        if len(calls) == 1:
            raise Retryable("postgres is down")
        if len(batch) > 1:
            raise RuntimeError("one of them is bad")
        return []

    rig = Rig(handler)
    await rig.processor.process(entries(2))
    assert calls == [2, 2, 1, 1]
    assert rig.commits.batches == [["0-0"], ["1-0"]]


def test_every_outcome_counted_is_named_in_the_metric_help() -> None:
    (family,) = [m for m in REGISTRY.collect() if m.name == "smoltbot_bus_entries"]
    for outcome in ["acked", "dead_lettered", "retry_pending", "dependency_wait", "lost"]:
        assert outcome in family.documentation


def test_a_consumer_exports_every_outcome_at_zero_from_the_start() -> None:
    """An alert on the first dead letter needs the series to exist before it."""

    async def handler(batch: Sequence[Delivery]) -> Sequence[Output]:
        return []

    stream = "control"
    config = ConsumerConfig(group="zeroes", streams=[stream])
    Consumer(redis_client("redis://127.0.0.1:1/0"), "z:", config, handler, consumer_name="c")
    for outcome in ["acked", "dead_lettered", "retry_pending", "dependency_wait", "lost"]:
        value = REGISTRY.get_sample_value(
            "smoltbot_bus_entries_total", {"stream": stream, "outcome": outcome}
        )
        assert value is not None, outcome
