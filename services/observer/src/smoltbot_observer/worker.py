"""Wiring: Redis-backed card source + handler + the bus's worker runtime."""

from __future__ import annotations

from redis.asyncio import Redis
from smoltbot_bus import ConsumerConfig, WorkerRuntime
from smoltbot_contracts.streams import EXCHANGES, EXCHANGES_PRIORITY, card_key

from smoltbot_observer.cards import CardCache
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
    """Priority first: a gateway may be waiting on those exchanges (architecture §3.3)."""
    return ConsumerConfig(
        group=SERVICE,
        streams=[EXCHANGES_PRIORITY, EXCHANGES],
        batch_size=settings.batch_size,
    )


def build_handler(redis: Redis, settings: ObserverSettings) -> ObserverHandler:
    cards = CardCache(
        RedisCardSource(redis, settings.stream_prefix), ttl_s=settings.card_cache_ttl_s
    )
    return ObserverHandler(cards)


async def run(settings: ObserverSettings) -> None:
    """Consume until SIGTERM/SIGINT, then drain the batch in hand and return."""
    async with WorkerRuntime(SERVICE, settings, port=settings.port, host=settings.host) as rt:
        await rt.run_consumer(consumer_config(settings), build_handler(rt.redis, settings))
