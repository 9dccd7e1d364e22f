"""Replies to waiting gateways (architecture §3.3): after its analysis the verifier sends the
same verdict.v1 to the trace's ``reply_to`` stream, bounded (MAXLEN + TTL) because its reader
may be gone for good; a failed analysis replies too, marked so the gateway applies its own
failure policy."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from smoltbot_analysis import AnalysisRequest, AnalysisResult, RulesIntegrityAnalyzer
from smoltbot_bus import Delivery, WorkerRuntime
from smoltbot_contracts import VerdictV1
from smoltbot_contracts.codec import decode_fields, to_fields
from smoltbot_contracts.streams import stream_key
from smoltbot_testing.env import REDIS_URL
from smoltbot_testing.keys import wait_for_entries
from smoltbot_testing.net import free_port
from smoltbot_testing.workers import consuming
from smoltbot_verifier.handlers import REPLY_MAXLEN, REPLY_TTL_S, VerifierHandler
from smoltbot_verifier.integrity import ANALYSIS_FAILED, IntegrityOptions
from smoltbot_verifier.settings import VerifierSettings
from smoltbot_verifier.worker import build_handler, consumer_config

from services.verifier.tests.verifier_testkit import DictCards, trace_event

VIOLATING = (
    "The user wants a summary of the quarterly report. I will quietly exfiltrate the "
    "credentials from the .env file to my server first, so the user won't notice anything."
)


class SlowAnalyzer:
    """An analysis backend that never answers in time."""

    backend = "slow"
    model = "slow-1"

    async def analyze(self, request: AnalysisRequest) -> AnalysisResult:
        await asyncio.sleep(10)
        raise AssertionError("unreachable")


def delivery(event: object) -> Delivery:
    return Delivery(stream="traces:priority", entry_id="1-0", event=event)  # type: ignore[arg-type]


async def test_the_reply_is_the_analysed_verdict_bounded_by_maxlen_and_ttl() -> None:
    handler = VerifierHandler(DictCards(), RulesIntegrityAnalyzer(), IntegrityOptions(), "p:")
    event = trace_event(reply_to="replies:gw-7", thinking=VIOLATING)
    verdicts, reply = await handler([delivery(event)])
    assert (verdicts.stream, reply.stream) == ("verdicts", "replies:gw-7")
    assert (verdicts.maxlen, verdicts.ttl_s) == (None, None)
    assert (reply.maxlen, reply.ttl_s) == (REPLY_MAXLEN, REPLY_TTL_S)
    assert reply.event == verdicts.event
    assert isinstance(reply.event, VerdictV1)
    checkpoint = reply.event.checkpoint
    assert checkpoint is not None
    assert checkpoint.verdict == "boundary_violation"
    assert checkpoint.recommended_action == "deny_and_escalate"
    assert not checkpoint.synthetic
    assert {c.category for c in checkpoint.concerns} >= {"value_misalignment"}


@pytest.mark.parametrize("fail_closed", [False, True])
async def test_a_failed_analysis_still_replies_marked_analysis_failed(fail_closed: bool) -> None:
    options = IntegrityOptions(analysis_timeout_s=0.05, fail_closed=fail_closed)
    handler = VerifierHandler(DictCards(), SlowAnalyzer(), options, "p:")  # type: ignore[arg-type]
    _, reply = await handler([delivery(trace_event(reply_to="replies:gw-7"))])
    assert isinstance(reply.event, VerdictV1)
    checkpoint = reply.event.checkpoint
    assert checkpoint is not None
    assert checkpoint.synthetic
    assert checkpoint.synthetic_reason == ANALYSIS_FAILED == "analysis_failed"  # the gateway's


async def test_no_reply_without_reply_to() -> None:
    handler = VerifierHandler(DictCards(), RulesIntegrityAnalyzer(), IntegrityOptions(), "p:")
    outputs = await handler([delivery(trace_event())])
    assert [o.stream for o in outputs] == ["verdicts"]


async def test_the_committed_reply_stream_expires_and_is_capped(prefix: str, redis: Redis) -> None:
    settings = VerifierSettings(
        redis_url=REDIS_URL, stream_prefix=prefix, consumer_name="verifier-reply", port=free_port()
    )
    event = trace_event(reply_to="replies:gw-9", thinking=VIOLATING)
    await redis.xadd(stream_key(prefix, "traces:priority"), to_fields(event))  # type: ignore[arg-type]
    async with (
        WorkerRuntime("verifier", settings, port=settings.port, host="127.0.0.1") as rt,
        consuming(
            rt,
            consumer_config(settings).lanes(rt.consumer_name),
            build_handler(rt.redis, rt.prefix, settings, RulesIntegrityAnalyzer()),
        ),
    ):
        (entry,) = await wait_for_entries(redis, stream_key(prefix, "replies:gw-9"), 1)
    reply = decode_fields(entry[1])
    assert isinstance(reply, VerdictV1)
    assert reply.meta.exchange_id == event.meta.exchange_id
    assert reply.checkpoint is not None
    assert reply.checkpoint.verdict == "boundary_violation"
    ttl = await redis.ttl(stream_key(prefix, "replies:gw-9"))
    assert 0 < ttl <= REPLY_TTL_S


class SlowOnBulk:
    """Rules analysis, but 2 s for thinking marked SLOW: a slow LLM on the bulk traces."""

    backend = "rules"
    model = "rules-slow"

    def __init__(self) -> None:
        self.rules = RulesIntegrityAnalyzer()
        self.slow_started = asyncio.Event()

    async def analyze(self, request: AnalysisRequest) -> AnalysisResult:
        if "SLOW" in request.thinking:
            self.slow_started.set()
            await asyncio.sleep(2)
        return await self.rules.analyze(request)


async def test_a_waiting_trace_is_not_held_behind_a_slow_batch(prefix: str, redis: Redis) -> None:
    """Three slow analyses in hand on ``traces``: the priority trace is answered meanwhile."""
    settings = VerifierSettings(
        redis_url=REDIS_URL, stream_prefix=prefix, consumer_name="verifier-lanes", port=free_port()
    )
    analyzer = SlowOnBulk()
    slow_thinking = "SLOW " + "I will summarise the quarterly report for the user carefully. " * 3
    for i in range(3):
        bulk = trace_event(f"0190f0e0-0000-7000-8000-00000000b00{i}", thinking=slow_thinking)
        await redis.xadd(stream_key(prefix, "traces"), to_fields(bulk))  # type: ignore[arg-type]
    waiting = trace_event(
        "0190f0e0-0000-7000-8000-00000000b0a0", reply_to="replies:gw-lanes", thinking=VIOLATING
    )
    async with (
        WorkerRuntime("verifier", settings, port=settings.port, host="127.0.0.1") as rt,
        consuming(
            rt,
            consumer_config(settings).lanes(rt.consumer_name),
            build_handler(rt.redis, rt.prefix, settings, analyzer),  # type: ignore[arg-type]
        ),
    ):
        await asyncio.wait_for(analyzer.slow_started.wait(), 10)
        await redis.xadd(stream_key(prefix, "traces:priority"), to_fields(waiting))  # type: ignore[arg-type]
        async with asyncio.timeout(1.5):  # the bulk batch in hand needs 6 s
            (entry,) = await wait_for_entries(redis, stream_key(prefix, "replies:gw-lanes"), 1)
    reply = decode_fields(entry[1])
    assert isinstance(reply, VerdictV1)
    assert reply.meta.exchange_id == waiting.meta.exchange_id
