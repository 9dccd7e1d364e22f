"""Wires settings, Redis, the analyzer and the handler into the bus runtime."""

from __future__ import annotations

from redis.asyncio import Redis
from smoltbot_agentstate import AgentState
from smoltbot_analysis import (
    LLM_BACKENDS,
    OUTCOMES,
    Analyzer,
    aclose_analyzer,
    make_analyzer,
)
from smoltbot_bus import ConsumerConfig, WorkerRuntime
from smoltbot_contracts.streams import TRACES, TRACES_PRIORITY

from smoltbot_verifier.cards import CardStore
from smoltbot_verifier.handlers import Facts, VerifierHandler
from smoltbot_verifier.integrity import IntegrityOptions
from smoltbot_verifier.metrics import AnalysisMetrics, zero_analysis_counters
from smoltbot_verifier.nudges import ConfigStore, NudgeWriter
from smoltbot_verifier.settings import VerifierSettings
from smoltbot_verifier.state import RuntimeState

SERVICE = "verifier"


def consumer_config(settings: VerifierSettings) -> ConsumerConfig:
    """``traces:priority`` (callers waiting in enforce mode) and ``traces``; :func:`run` gives the
    priority stream a lane of its own (``ConsumerConfig.lanes``), so a waiting caller is never
    held behind a batch of slow analyses."""
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


def build_analyzer(settings: VerifierSettings) -> Analyzer:
    """The configured analyzer (architecture §6), reporting to the verifier's metrics.

    The settings were checked when loaded, so this does not raise for a loaded struct.
    """
    analyzer = make_analyzer(
        settings.analyzer_backend,
        base_url=settings.analyzer_base_url or None,
        api_key=settings.analyzer_key or None,
        model=settings.analyzer_model or None,
        timeout_s=settings.analysis_timeout_ms / 1000,
        hooks=AnalysisMetrics(),
    )
    if settings.analyzer_backend in LLM_BACKENDS:
        zero_analysis_counters(settings.analyzer_backend, OUTCOMES)
    return analyzer


def build_handler(
    redis: Redis, prefix: str, settings: VerifierSettings, analyzer: Analyzer
) -> VerifierHandler:
    """The batch handler with its Redis-backed card store, nudge writer and agent state."""
    configs = ConfigStore(redis, prefix)
    return VerifierHandler(
        CardStore(redis, prefix),
        analyzer,
        integrity_options(settings),
        prefix,
        nudges=NudgeWriter(redis, prefix, configs=configs),
        facts=Facts(RuntimeState(redis, prefix), configs, AgentState(redis, prefix)),
    )


async def run(settings: VerifierSettings, analyzer: Analyzer | None = None) -> None:
    """Consume ``traces:priority`` and ``traces`` until SIGTERM/SIGINT, then drain and return.

    Without ``analyzer`` the configured one is built here and closed on the way out.
    """
    active = build_analyzer(settings) if analyzer is None else analyzer
    try:
        async with WorkerRuntime(SERVICE, settings, port=settings.port, host=settings.host) as rt:
            handler = build_handler(rt.redis, rt.prefix, settings, active)
            lanes = consumer_config(settings).lanes(rt.consumer_name)
            await rt.run_consumers([(lane, handler) for lane in lanes])
    finally:
        if analyzer is None:
            await aclose_analyzer(active)
