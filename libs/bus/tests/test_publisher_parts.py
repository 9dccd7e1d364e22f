"""The publisher's parts on their own: buffer, byte budget, sender, spool fallback and drain,
spool directory. Only the sender and the budget's measurement touch Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from smoltbot_bus import Publisher, Spool, redis_client
from smoltbot_bus._budget import ByteBudget
from smoltbot_bus._outbox import Outbox
from smoltbot_bus._segments import SegmentDir
from smoltbot_bus._sender import Sender
from smoltbot_bus._spool import Record
from smoltbot_bus._spool_drain import SpoolDrain
from smoltbot_bus._spool_fallback import SpoolFallback
from smoltbot_contracts.codec import decode_fields
from smoltbot_contracts.streams import stream_key
from smoltbot_testing.events import agent_event
from smoltbot_testing.faults import FaultProxy, RedisServer


def records(n: int, stream: str = "agents") -> list[Record]:
    return [(stream, {b"n": str(i).encode()}) for i in range(n)]


def dropped(stream: str, reason: str) -> float:
    labels = {"stream": stream, "reason": reason}
    return REGISTRY.get_sample_value("smoltbot_bus_publish_dropped_total", labels) or 0


# ---------------------------------------------------------------- buffer + flush


async def test_outbox_is_bounded_and_flushes_in_order_in_batches() -> None:
    box = Outbox(max_buffer=5, batch_size=2)
    before = dropped("outbox-test", "buffer_full")
    assert all(box.put(r) for r in records(5, "outbox-test"))
    assert not box.put(("outbox-test", {b"n": b"late"}))
    assert dropped("outbox-test", "buffer_full") == before + 1
    sent: list[list[Record]] = []

    async def send(batch: list[Record]) -> None:
        if len(sent) == 2:
            raise ConnectionError("redis went away")
        sent.append(batch)

    with pytest.raises(ConnectionError):
        await box.flush(send)
    assert [len(b) for b in sent] == [2, 2]
    assert len(box) == 1  # the unsent rest stays buffered
    assert box.take_all() == records(5, "outbox-test")[4:]
    assert len(box) == 0


async def test_outbox_loop_offers_a_refused_batch_again_then_stops() -> None:
    box = Outbox(batch_size=10)
    offered: list[int] = []

    async def deliver(batch: list[Record]) -> bool:
        offered.append(len(batch))
        return len(offered) >= 3  # refused twice (Redis down, no spool), then taken

    closing = asyncio.Event()
    task = asyncio.create_task(box.run(deliver, closing))
    for r in records(3):
        box.put(r)
    async with asyncio.timeout(2):
        while len(box):
            await asyncio.sleep(0.01)
    assert offered == [3, 3, 3]
    closing.set()
    box.wake()
    await asyncio.wait_for(task, 1)


# ---------------------------------------------------------------- byte budget + sender


def test_budget_counts_what_was_sent_since_the_last_measurement() -> None:
    budget = ByteBudget(None, "p:", max_bytes=1_000)  # type: ignore[arg-type]
    assert not budget.over
    budget.count({b"b": b"x" * 900})
    assert not budget.over
    budget.count({b"b": b"x" * 100})
    assert budget.over
    assert not ByteBudget(None, "p:", max_bytes=None).over  # type: ignore[arg-type]


async def test_sender_counts_and_a_measurement_resets_the_estimate(
    redis: Redis, prefix: str
) -> None:
    budget = ByteBudget(redis, prefix, max_bytes=1_000_000)
    sender = Sender(redis, prefix, budget, timeout_s=2.0)
    await sender.send(records(3))
    entry_id = await sender.send_one(("agents", {b"n": b"last"}))
    ids = [i.decode() for i, _ in await redis.xrange(stream_key(prefix, "agents"))]
    assert len(ids) == 4
    assert ids[-1] == entry_id
    budget.count({b"b": b"x" * 2_000_000})
    assert budget.over
    await budget.measure()  # Redis's own number replaces the estimate
    assert not budget.over


# ---------------------------------------------------------------- spool fallback + drain


async def test_fallback_without_a_spool_keeps_events_in_memory() -> None:
    fallback = SpoolFallback(None)
    assert not await fallback.keep(records(1))
    before = dropped("fallback-test", "shutdown")
    await fallback.keep_at_shutdown(records(2, "fallback-test"), "redis down")
    assert dropped("fallback-test", "shutdown") == before + 2


async def test_fallback_spools_and_counts_what_does_not_fit(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "gw", max_bytes=60)
    fallback = SpoolFallback(spool)
    fallback.open()
    before = dropped("fallback-full", "spool_full")
    batch = [("fallback-full", {b"b": b"x" * 20}) for _ in range(3)]
    assert await fallback.keep(batch)  # left memory: one spooled, the rest dropped (counted)
    assert dropped("fallback-full", "spool_full") == before + 2
    assert spool.has_data()
    fallback.close()


async def test_fallback_holds_events_when_the_disk_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path, "gw")

    async def disk_full(batch: list[Record]) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(spool, "append", disk_full)
    assert not await SpoolFallback(spool).keep(records(1))


async def test_drain_republishes_only_while_available(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "gw")
    spool.open()
    await spool.append(records(5))
    sent: list[Record] = []
    failures: list[int] = []
    state = {"available": False}

    async def send(batch: list[Record]) -> None:
        sent.extend(batch)

    drain = SpoolDrain(
        spool,
        send,
        available=lambda: state["available"],
        on_failure=lambda: failures.append(1),
        interval_s=0.01,
    )
    closing = asyncio.Event()
    task = asyncio.create_task(drain.run(closing))
    await asyncio.sleep(0.1)
    assert sent == []  # Redis down: the spool stays
    state["available"] = True
    async with asyncio.timeout(2):
        while spool.has_data():
            await asyncio.sleep(0.01)
    assert sent == records(5)
    assert failures == []
    closing.set()
    await asyncio.wait_for(task, 1)
    spool.close()


async def test_drain_failure_marks_redis_down_and_keeps_the_segment(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "gw")
    spool.open()
    await spool.append(records(2))
    failures: list[int] = []

    async def send(batch: list[Record]) -> None:
        raise ConnectionError("cut")

    drain = SpoolDrain(
        spool, send, available=lambda: True, on_failure=lambda: failures.append(1), interval_s=0.01
    )
    closing = asyncio.Event()
    task = asyncio.create_task(drain.run(closing))
    async with asyncio.timeout(2):
        while not failures:
            await asyncio.sleep(0.01)
    closing.set()
    await asyncio.wait_for(task, 1)
    assert spool.has_data()
    spool.close()


async def test_a_stop_mid_segment_keeps_only_the_unsent_rest(tmp_path: Path) -> None:
    """A clean shutdown between chunks must neither lose the rest nor re-send what Redis took."""
    spool = Spool(tmp_path, "gw")
    spool.open()
    await spool.append(records(10))
    sent: list[Record] = []

    async def send(batch: list[Record]) -> None:
        sent.extend(batch)

    stopped = lambda: len(sent) >= 4  # noqa: E731 - the stop request arrives after two chunks
    assert await spool.drain(send, batch_size=2, stop=stopped) == 4
    assert sent == records(10)[:4]
    assert spool.has_data()
    assert await spool.drain(send, batch_size=2) == 6
    assert sent == records(10)  # every record once, in order
    assert not spool.has_data()
    spool.close()


# ---------------------------------------------------------------- spool directory


def test_segment_dir_locks_numbers_and_adopts(tmp_path: Path) -> None:
    dead = SegmentDir(tmp_path, "dead/pod")
    dead.open()
    for _ in range(2):
        dead.next_segment().write_bytes(b"x")
    with pytest.raises(BlockingIOError):
        SegmentDir(tmp_path, "dead/pod").open()  # one process per instance name
    dead.close()
    alive = SegmentDir(tmp_path, "alive")
    alive.open()
    assert [p.name for p in alive.segments()] == ["alive.000000001.spool", "alive.000000002.spool"]
    assert alive.next_segment().name == "alive.000000003.spool"
    assert alive.size_bytes() == 2
    assert not list(tmp_path.glob("dead_pod.*"))
    alive.close()


async def test_close_lets_the_batch_in_flight_finish_instead_of_sending_it_twice() -> None:
    """Shutdown while Redis's answer to a flush is on its way: the batch is sent exactly once
    (cancelled mid-send, the flush loop would leave it buffered and close() would send it
    again)."""
    with RedisServer() as server, FaultProxy("127.0.0.1", server.port) as proxy:
        client = redis_client(f"redis://127.0.0.1:{proxy.port}/0")
        await client.ping()
        proxy.set_mode("delay", delay_s=0.2)  # each way: Redis has the XADD after 0.2 s
        publisher = Publisher(client, "t:", send_timeout_s=2.0)
        await publisher.start()
        event = agent_event(1)
        assert publisher.enqueue("agents", event)
        await asyncio.sleep(0.3)  # executed by Redis, its answer still on the way back
        await publisher.close()
        proxy.set_mode("pass")
        entries = await client.xrange(stream_key("t:", "agents"))
        await client.aclose()
    assert [decode_fields(fields) for _, fields in entries] == [event]
