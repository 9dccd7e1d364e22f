"""The verdict waiter (architecture §3.3) against the real Redis: futures resolved by the one
reply reader, unknown and unreadable replies ignored, the reply stream trimmed, the priority
publish and its fallback, timeouts, analysis failures, shutdown, and a Redis outage the reader
survives."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlparse

import msgspec
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from smoltbot_bus import BusUnavailable, Publisher
from smoltbot_contracts import Checkpoint, Event, ExchangeV1, VerdictV1
from smoltbot_contracts.codec import decode_fields, to_fields
from smoltbot_contracts.ids import checkpoint_id, verdict_event_id
from smoltbot_contracts.streams import EXCHANGES, EXCHANGES_PRIORITY, reply_key, stream_key
from smoltbot_gateway.waiting import ANALYSIS_FAILED, VerdictWaiter
from smoltbot_resilience import Backoff
from smoltbot_testing.env import REDIS_URL
from smoltbot_testing.events import FIXED_TIME, exchange_event
from smoltbot_testing.faults import FaultProxy

INSTANCE = "gw-test"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def verdict_for(
    exchange: ExchangeV1, verdict: str = "clear", synthetic_reason: str | None = None
) -> VerdictV1:
    """What the verifier sends back for ``exchange``."""
    meta = exchange.meta
    checkpoint = Checkpoint(
        checkpoint_id=checkpoint_id(meta.exchange_id),
        agent_id=meta.agent_id,
        card_id="ac-1",
        session_id=meta.session_id,
        timestamp=FIXED_TIME,
        thinking_block_hash="h",
        provider="anthropic",
        model="m",
        verdict=verdict,  # type: ignore[arg-type]
        synthetic=synthetic_reason is not None,
        synthetic_reason=synthetic_reason,
        proceed=verdict != "boundary_violation",
    )
    return VerdictV1(event_id=verdict_event_id(meta.exchange_id), meta=meta, checkpoint=checkpoint)


class FakePublisher:
    """The publisher's two paths, recorded; ``on_publish`` plays the observer and verifier."""

    def __init__(
        self,
        *,
        down: bool = False,
        on_publish: Callable[[ExchangeV1], Awaitable[None]] | None = None,
    ) -> None:
        self.down = down
        self.on_publish = on_publish
        self.published: list[tuple[str, Event]] = []
        self.enqueued: list[tuple[str, Event]] = []

    async def publish(self, stream: str, event: Event) -> str:
        if self.down:
            raise BusUnavailable("bus unavailable (redis down or over budget)")
        self.published.append((stream, event))
        if self.on_publish is not None:
            assert isinstance(event, ExchangeV1)
            await self.on_publish(event)
        return "1-0"

    def enqueue(self, stream: str, event: Event) -> bool:
        self.enqueued.append((stream, event))
        return True


def replier(
    redis: Redis, prefix: str, verdict: str = "clear", synthetic_reason: str | None = None
) -> Callable[[ExchangeV1], Awaitable[None]]:
    async def reply(exchange: ExchangeV1) -> None:
        assert exchange.reply_to == f"replies:{INSTANCE}"
        answer = verdict_for(exchange, verdict, synthetic_reason)
        await redis.xadd(reply_key(prefix, INSTANCE), to_fields(answer))  # type: ignore[arg-type]

    return reply


def waiter(redis: Redis, prefix: str, events: object, timeout_s: float = 2.0) -> VerdictWaiter:
    return VerdictWaiter(
        redis,
        events,  # type: ignore[arg-type]
        prefix,
        INSTANCE,
        timeout_s=timeout_s,
        block_ms=200,
        backoff=Backoff(0.05, 0.2),
    )


async def test_a_verdict_resolves_its_call_and_the_reply_stream_is_trimmed(
    redis: Redis, prefix: str
) -> None:
    events = FakePublisher(on_publish=replier(redis, prefix, "review_needed"))
    w = waiter(redis, prefix, events)
    await w.start()
    try:
        exchange = exchange_event(b"{}")
        matched = sample("smoltbot_gateway_verdict_replies_total", outcome="matched")
        outcome = await w.check(exchange)
        assert outcome.outcome == "verdict"
        assert outcome.verdict is not None
        assert outcome.verdict.meta.exchange_id == exchange.event_id
        assert outcome.verdict.checkpoint is not None
        assert outcome.verdict.checkpoint.verdict == "review_needed"
        assert outcome.seconds < 1.0
        assert sample("smoltbot_gateway_verdict_replies_total", outcome="matched") == matched + 1
        # published once, on the priority lane, with this gateway's reply stream
        assert [(s, e.reply_to) for s, e in events.published] == [  # type: ignore[union-attr]
            (EXCHANGES_PRIORITY, f"replies:{INSTANCE}")
        ]
        assert events.enqueued == []
        assert w.waiting == 0
        await _until(lambda: _xlen(redis, reply_key(prefix, INSTANCE)), 0)
    finally:
        await w.close()


async def test_many_concurrent_calls_each_get_their_own_verdict(redis: Redis, prefix: str) -> None:
    verdicts = ["clear", "review_needed", "boundary_violation"]

    async def reply(exchange: ExchangeV1) -> None:
        answer = verdict_for(exchange, verdicts[int(exchange.user_query or "0") % 3])
        await asyncio.sleep(0.01)
        await redis.xadd(reply_key(prefix, INSTANCE), to_fields(answer))  # type: ignore[arg-type]

    w = waiter(redis, prefix, FakePublisher(on_publish=reply))
    await w.start()
    try:
        exchanges = [
            msgspec.structs.replace(exchange_event(b"{}"), user_query=str(i)) for i in range(30)
        ]
        outcomes = await asyncio.gather(*(w.check(e) for e in exchanges))
        for i, (exchange, outcome) in enumerate(zip(exchanges, outcomes, strict=True)):
            assert outcome.outcome == "verdict"
            assert outcome.verdict is not None
            assert outcome.verdict.meta.exchange_id == exchange.event_id
            assert outcome.verdict.checkpoint is not None
            assert outcome.verdict.checkpoint.verdict == verdicts[i % 3]
    finally:
        await w.close()


async def test_unknown_and_unreadable_replies_are_ignored_and_trimmed(
    redis: Redis, prefix: str
) -> None:
    key = reply_key(prefix, INSTANCE)
    w = waiter(redis, prefix, FakePublisher())
    unknown = sample("smoltbot_gateway_verdict_replies_total", outcome="unknown")
    invalid = sample("smoltbot_gateway_verdict_replies_total", outcome="invalid")
    # Left by an earlier process of the same instance name, before this one started.
    await redis.xadd(key, to_fields(verdict_for(exchange_event())))  # type: ignore[arg-type]
    await w.start()
    try:
        await redis.xadd(key, to_fields(verdict_for(exchange_event())))  # type: ignore[arg-type]
        await redis.xadd(key, {b"t": b"verdict.v1", b"id": b"x", b"b": b"\xc1"})
        await redis.xadd(key, to_fields(exchange_event()))  # type: ignore[arg-type]
        await _until(lambda: _xlen(redis, key), 0)
        assert sample("smoltbot_gateway_verdict_replies_total", outcome="unknown") == unknown + 2
        assert sample("smoltbot_gateway_verdict_replies_total", outcome="invalid") == invalid + 2
        # the reader is still alive: a waited-for verdict still arrives
        outcome = await waiter_check(w, redis, prefix)
        assert outcome == "verdict"
    finally:
        await w.close()


async def waiter_check(w: VerdictWaiter, redis: Redis, prefix: str) -> str:
    w._events = FakePublisher(on_publish=replier(redis, prefix))  # noqa: SLF001 - test seam
    return (await w.check(exchange_event(b"{}"))).outcome


async def test_no_verdict_in_time_is_a_timeout_and_a_late_one_is_unknown(
    redis: Redis, prefix: str
) -> None:
    events = FakePublisher()
    w = waiter(redis, prefix, events, timeout_s=0.3)
    await w.start()
    try:
        exchange = exchange_event(b"{}")
        started = time.perf_counter()
        outcome = await w.check(exchange)
        assert outcome.outcome == "timeout"
        assert outcome.verdict is None
        assert 0.3 <= time.perf_counter() - started < 0.8
        assert w.waiting == 0
        unknown = sample("smoltbot_gateway_verdict_replies_total", outcome="unknown")
        await replier(redis, prefix)(events.published[0][1])  # type: ignore[arg-type]
        await _until(
            lambda: _value(sample("smoltbot_gateway_verdict_replies_total", outcome="unknown")),
            unknown + 1,
        )
    finally:
        await w.close()


async def test_a_refused_priority_publish_falls_back_to_the_buffered_path(
    redis: Redis, prefix: str
) -> None:
    events = FakePublisher(down=True)
    w = waiter(redis, prefix, events)
    await w.start()
    try:
        exchange = exchange_event(b"{}")
        before = sample("smoltbot_gateway_verdict_waits_total", outcome="bus_unavailable")
        started = time.perf_counter()
        outcome = await w.check(exchange)
        assert outcome.outcome == "bus_unavailable"
        assert time.perf_counter() - started < 0.2  # at once, not after the timeout
        # recorded exactly once, on the buffered path, with nobody to reply to
        assert events.published == []
        assert events.enqueued == [(EXCHANGES, exchange)]
        after = sample("smoltbot_gateway_verdict_waits_total", outcome="bus_unavailable")
        assert after == before + 1
    finally:
        await w.close()


async def test_a_failed_analysis_is_an_error_not_its_synthetic_verdict(
    redis: Redis, prefix: str
) -> None:
    on_publish = replier(redis, prefix, "boundary_violation", synthetic_reason=ANALYSIS_FAILED)
    w = waiter(redis, prefix, FakePublisher(on_publish=on_publish))
    await w.start()
    try:
        outcome = await w.check(exchange_event(b"{}"))
        assert outcome.outcome == "error"
        assert outcome.verdict is not None  # kept for the record
    finally:
        await w.close()


async def test_closing_answers_every_waiting_call_with_an_error(redis: Redis, prefix: str) -> None:
    w = waiter(redis, prefix, FakePublisher(), timeout_s=30)
    await w.start()
    pending = [asyncio.create_task(w.check(exchange_event(b"{}"))) for _ in range(3)]
    await _until(lambda: _value(w.waiting), 3)
    started = time.perf_counter()
    await w.close()
    outcomes = await asyncio.gather(*pending)
    assert [o.outcome for o in outcomes] == ["error"] * 3
    assert time.perf_counter() - started < 1.0


async def test_with_the_real_publisher_the_exchange_lands_on_the_priority_stream(
    redis: Redis, prefix: str
) -> None:
    publisher = Publisher(redis, prefix)
    await publisher.start()
    w = waiter(redis, prefix, publisher, timeout_s=0.2)
    await w.start()
    try:
        exchange = exchange_event(b"{}")
        assert (await w.check(exchange)).outcome == "timeout"  # nobody replies here
        entries = await redis.xrange(stream_key(prefix, EXCHANGES_PRIORITY))
        assert [decode_fields(f) for _, f in entries] == [
            msgspec.structs.replace(exchange, reply_to=f"replies:{INSTANCE}")
        ]
        await publisher.flush()
        assert await redis.xlen(stream_key(prefix, EXCHANGES)) == 0  # not a second time
    finally:
        await w.close()
        await publisher.close()


@pytest.mark.timeout(60)
async def test_the_reader_survives_a_redis_outage_and_resumes_where_it_stopped(
    redis: Redis, prefix: str
) -> None:
    url = urlparse(REDIS_URL)
    proxy = FaultProxy(url.hostname or "127.0.0.1", url.port or 6379).start()
    through_proxy = Redis.from_url(
        f"redis://{proxy.url_host_port}{url.path or '/0'}",
        socket_timeout=2,
        socket_connect_timeout=1,
    )
    key = reply_key(prefix, INSTANCE)
    events = FakePublisher()
    w = waiter(redis, prefix, events, timeout_s=20)
    w._redis = through_proxy  # noqa: SLF001 - only the reader goes through the proxy
    await w.start()
    try:
        first = exchange_event(b"{}")
        call = asyncio.create_task(w.check(first))
        await _until(lambda: _value(len(events.published)), 1)
        errors = sample("smoltbot_gateway_reply_reader_errors_total")
        proxy.set_mode("cut")
        await _until(
            lambda: _value(sample("smoltbot_gateway_reply_reader_errors_total") > errors), True
        )
        # The verifier answers while this gateway cannot read its reply stream.
        await redis.xadd(key, to_fields(verdict_for(first, "clear")))  # type: ignore[arg-type]
        await asyncio.sleep(0.3)
        assert not call.done()
        proxy.set_mode("pass")
        outcome = await asyncio.wait_for(call, 10)
        assert outcome.outcome == "verdict"
        assert outcome.verdict is not None
        assert outcome.verdict.meta.exchange_id == first.event_id
        # and it keeps working afterwards
        w._events = FakePublisher(on_publish=replier(redis, prefix))  # noqa: SLF001
        assert (await w.check(exchange_event(b"{}"))).outcome == "verdict"
        await _until(lambda: _xlen(redis, key), 0)
    finally:
        await w.close()
        await through_proxy.aclose()
        proxy.stop()


# ----------------------------------------------------------------------------------------------


async def _xlen(redis: Redis, key: str) -> int:
    return int(await redis.xlen(key))


async def _value(value: object) -> object:
    return value


async def _until(probe: Callable[[], Awaitable[object]], expected: object, timeout_s: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        last = await probe()
        if last == expected:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"expected {expected!r}, last {last!r}")
