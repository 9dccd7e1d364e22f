"""Per-call agent config from Redis that never fails or slows a call (architecture §3.2, §5.2).

Every call asks Redis once with a short budget. On a miss the defaults apply (observe); on an
error or timeout the last config seen for that agent is used, and a circuit breaker leaves Redis
alone for a back-off period so a dead Redis costs nothing per call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError
from smoltbot_contracts import AgentConfig
from smoltbot_contracts.streams import cfg_key
from smoltbot_resilience import CircuitBreaker

from smoltbot_gateway.metrics import CONFIG_FALLBACKS

log = logging.getLogger(__name__)

DEFAULT_CONFIG = AgentConfig()
CFG_FIELD = b"b"
_DECODER = msgspec.msgpack.Decoder(AgentConfig)
_MAX_REMEMBERED = 100_000


class ConfigReader:
    """Reads ``cfg:{agent}`` on every call and remembers the last config seen per agent."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        timeout_s: float = 0.05,
        backoff_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._timeout_s = timeout_s
        # One failure opens it: the next read that may cost a timeout is one back-off away.
        self._breaker = CircuitBreaker(threshold=1, cooldown_s=backoff_s, clock=clock)
        self._last: dict[str, AgentConfig] = {}

    def _fallback(self, agent: str, reason: str) -> AgentConfig:
        CONFIG_FALLBACKS.labels(reason).inc()
        return self._last.get(agent, DEFAULT_CONFIG)

    def _remember(self, agent: str, config: AgentConfig) -> None:
        if len(self._last) >= _MAX_REMEMBERED and agent not in self._last:
            self._last.clear()  # crude but bounded; entries refill on the next call per agent
        self._last[agent] = config

    async def get(self, agent: str) -> AgentConfig:
        """The agent's config; never raises, never waits longer than the timeout."""
        if not self._breaker.allow():
            return self._fallback(agent, "backoff")
        try:
            raw = await asyncio.wait_for(
                self._redis.hget(cfg_key(self._prefix, agent), CFG_FIELD),
                self._timeout_s,
            )
        except (RedisError, OSError, TimeoutError) as exc:
            self._breaker.failure()
            log.warning(
                "agent config read failed; using last known config",
                extra={"error": type(exc).__name__, "backoff_s": self._breaker.cooldown_s},
            )
            return self._fallback(agent, "error")
        self._breaker.success()
        if raw is None:
            config = DEFAULT_CONFIG
        elif not isinstance(raw, bytes):
            return self._fallback(agent, "invalid")
        else:
            try:
                config = _DECODER.decode(raw)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                log.warning("agent config unreadable; ignoring it", extra={"error": str(exc)[:200]})
                return self._fallback(agent, "invalid")
        self._remember(agent, config)
        return config
