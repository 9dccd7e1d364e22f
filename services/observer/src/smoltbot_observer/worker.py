"""Wiring: Redis-backed card source, the decision analyzer, the handler and the bus runtime."""

from __future__ import annotations

from redis.asyncio import Redis
from smoltbot_analysis import DEFAULT_ANTHROPIC_MODEL, DEFAULT_ANTHROPIC_URL
from smoltbot_bus import ConsumerConfig, WorkerRuntime
from smoltbot_contracts.streams import EXCHANGES, EXCHANGES_PRIORITY, card_key

from smoltbot_observer import metrics
from smoltbot_observer.analysis import DecisionAnalyzer, RulesDecisionAnalyzer
from smoltbot_observer.cards import CardCache
from smoltbot_observer.decision_llm import LLMDecisionAnalyzer
from smoltbot_observer.handlers import ObserverHandler
from smoltbot_observer.settings import ObserverSettings

SERVICE = "observer"


class RedisCardSource:
    """Reads ``card:{agent}`` (written by the api / persister; the observer never writes it)."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def fetch(self, agent_id: str) -> bytes | None:
        value = await self._redis.get(card_key(self._prefix, agent_id))
        return value if isinstance(value, bytes) else None


def consumer_config(settings: ObserverSettings) -> ConsumerConfig:
    """Priority and normal exchanges; :func:`run` gives the priority stream a lane of its own
    (``ConsumerConfig.lanes``): a gateway waits on those (architecture §3.3) and must never wait
    behind a batch of slow decision analyses."""
    return ConsumerConfig(
        group=SERVICE,
        streams=[EXCHANGES_PRIORITY, EXCHANGES],
        batch_size=settings.batch_size,
    )


def build_analyzer(settings: ObserverSettings) -> DecisionAnalyzer:
    """The normal lane's decision analyzer: an LLM one for ``anthropic``/``openai``, else the
    rules (``hybrid`` has no decision endpoint). The settings were checked when loaded."""
    backend = settings.decision_backend
    metrics.zero_decision_counters(backend)
    if backend == "anthropic":
        return LLMDecisionAnalyzer(
            "anthropic",
            base_url=settings.analyzer_base_url or DEFAULT_ANTHROPIC_URL,
            api_key=settings.analyzer_key or None,
            model=settings.analyzer_model or DEFAULT_ANTHROPIC_MODEL,
            timeout_s=settings.decision_timeout_ms / 1000,
            hooks=metrics.DecisionMetrics(),
        )
    if backend == "openai":
        return LLMDecisionAnalyzer(
            "openai",
            base_url=settings.analyzer_base_url,
            api_key=settings.analyzer_key or None,
            model=settings.analyzer_model,
            timeout_s=settings.decision_timeout_ms / 1000,
            hooks=metrics.DecisionMetrics(),
        )
    return RulesDecisionAnalyzer()


async def aclose_analyzer(analyzer: DecisionAnalyzer) -> None:
    """Release the LLM analyzer's HTTP client; nothing to do for the rules."""
    if isinstance(analyzer, LLMDecisionAnalyzer):
        await analyzer.aclose()


def build_handler(
    redis: Redis, settings: ObserverSettings, analyzer: DecisionAnalyzer | None = None
) -> ObserverHandler:
    """The batch handler; ``analyzer`` serves the normal lane (the rules when None: see
    :func:`build_analyzer` for the configured one). The priority lane always has the rules."""
    cards = CardCache(
        RedisCardSource(redis, settings.stream_prefix), ttl_s=settings.card_cache_ttl_s
    )
    return ObserverHandler(
        cards,
        analyzer=analyzer,
        fast_analyzer=RulesDecisionAnalyzer(),
        decision_timeout_s=settings.decision_timeout_ms / 1000,
    )


async def run(settings: ObserverSettings) -> None:
    """Consume until SIGTERM/SIGINT, then drain the batch in hand and return."""
    analyzer = build_analyzer(settings)
    try:
        async with WorkerRuntime(SERVICE, settings, port=settings.port, host=settings.host) as rt:
            handler = build_handler(rt.redis, settings, analyzer)
            lanes = consumer_config(settings).lanes(rt.consumer_name)
            await rt.run_consumers([(lane, handler) for lane in lanes])
    finally:
        await aclose_analyzer(analyzer)
