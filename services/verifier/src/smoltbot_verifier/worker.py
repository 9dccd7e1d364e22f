"""Wires settings, Redis, the analyzer and the handler into the bus runtime."""

from __future__ import annotations

from redis.asyncio import Redis
from smoltbot_analysis import Analyzer
from smoltbot_bus import ConsumerConfig, WorkerRuntime
from smoltbot_contracts.streams import TRACES, TRACES_PRIORITY

from smoltbot_verifier.cards import CardStore
from smoltbot_verifier.handlers import VerifierHandler
from smoltbot_verifier.integrity import IntegrityOptions
from smoltbot_verifier.nudges import NudgeWriter
from smoltbot_verifier.settings import VerifierSettings

SERVICE = "verifier"


def consumer_config(settings: VerifierSettings) -> ConsumerConfig:
    """Priority traces (callers waiting in enforce mode) are read before the rest."""
    return ConsumerConfig(
        group=SERVICE,
        streams=[TRACES_PRIORITY, TRACES],
        batch_size=settings.batch_size,
    )


def integrity_options(settings: VerifierSettings) -> IntegrityOptions:
    return IntegrityOptions(
        min_evidence_tokens=settings.min_evidence_tokens,
        analysis_timeout_s=settings.analysis_timeout_ms / 1000,
        fail_closed=settings.failure_policy == "fail_closed",
    )


def build_handler(
    redis: Redis, prefix: str, settings: VerifierSettings, analyzer: Analyzer
) -> VerifierHandler:
    """The batch handler with its Redis-backed card store and nudge writer."""
    return VerifierHandler(
        CardStore(redis, prefix),
        analyzer,
        integrity_options(settings),
        prefix,
        nudges=NudgeWriter(redis, prefix),
    )


async def run(settings: VerifierSettings, analyzer: Analyzer) -> None:
    """Consume ``traces:priority`` and ``traces`` until SIGTERM/SIGINT, then drain and return."""
    async with WorkerRuntime(SERVICE, settings, port=settings.port, host=settings.host) as rt:
        handler = build_handler(rt.redis, rt.prefix, settings, analyzer)
        await rt.run_consumer(consumer_config(settings), handler)
