"""Per-call agent config from Redis that never fails or slows a call (architecture §3.2, §5.2).

Configs are cached per agent for ``ttl_s`` (a Redis round trip per call would be most of the
gateway's own cost). A config just past its TTL is still served while one background read
refreshes it; one older than ``ttl_s + grace_s`` is read before the call proceeds, so a pause
or kill reaches every call within ``ttl_s + grace_s`` (1 s by default). On a miss the defaults
apply (observe); on an error or timeout the last config seen for that agent is used, and a
circuit breaker leaves Redis alone for a back-off period so a dead Redis costs nothing per call.

Agents in ``nudge`` or ``enforce`` mode (and agents not seen yet) skip the cache on calls that can
carry nudges (:meth:`ConfigReader.get_for_call`): their config is read through the nudge claim
script, which returns it together with the nudges it claimed for the call, in the same round
trip and under the same budget and breaker (:mod:`smoltbot_gateway.nudges`).
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
from smoltbot_gateway.nudges import CLAIMING_MODES, NudgeClaim, NudgeStore

log = logging.getLogger(__name__)

DEFAULT_CONFIG = AgentConfig()
CFG_FIELD = b"b"
_DECODER = msgspec.msgpack.Decoder(AgentConfig)
_MAX_REMEMBERED = 100_000


class _Entry:
    __slots__ = ("config", "fresh_until", "refreshing")

    def __init__(self, config: AgentConfig, fresh_until: float) -> None:
        self.config = config
        self.fresh_until = fresh_until
        self.refreshing = False


class ConfigReader:
    """Cached reads of ``cfg:{agent}``; remembers the last config seen per agent."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        timeout_s: float = 0.05,
        backoff_s: float = 5.0,
        ttl_s: float = 0.5,
        grace_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._timeout_s = timeout_s
        self._ttl_s = ttl_s
        self._grace_s = grace_s
        self._clock = clock
        # One failure opens it: the next read that may cost a timeout is one back-off away.
        self._breaker = CircuitBreaker(threshold=1, cooldown_s=backoff_s, clock=clock)
        self._entries: dict[str, _Entry] = {}
        self._refreshes: set[asyncio.Task[AgentConfig]] = set()  # keeps them referenced
        self.nudges = NudgeStore(redis, prefix)

    async def get(self, agent: str) -> AgentConfig:
        """The agent's config; never raises, never waits longer than the timeout."""
        entry = self._entries.get(agent)
        if entry is not None:
            now = self._clock()
            if now < entry.fresh_until:
                return entry.config
            if now < entry.fresh_until + self._grace_s or not self._breaker.allow():
                self._refresh_soon(agent, entry)
                return entry.config
        return await self._read(agent)

    async def get_for_call(self, agent: str, claim: NudgeClaim | None) -> AgentConfig:
        """:meth:`get`, except that with a ``claim`` (the call can carry nudges) an agent in
        nudge or enforce mode, or one not seen yet, is read through the claim script: config
        and claimed nudges (into ``claim``) in one round trip. Observe agents keep the cache."""
        if claim is None:
            return await self.get(agent)
        entry = self._entries.get(agent)
        if entry is not None and entry.config.enforcement_mode not in CLAIMING_MODES:
            return await self.get(agent)
        return await self._read(agent, claim)

    def _refresh_soon(self, agent: str, entry: _Entry) -> None:
        if entry.refreshing or not self._breaker.allow():
            return
        entry.refreshing = True
        task = asyncio.create_task(self._read(agent))
        self._refreshes.add(task)
        task.add_done_callback(self._refreshes.discard)

    def _fallback(self, agent: str, reason: str) -> AgentConfig:
        CONFIG_FALLBACKS.labels(reason).inc()
        entry = self._entries.get(agent)
        if entry is None:
            return DEFAULT_CONFIG
        entry.refreshing = False
        return entry.config

    def _remember(self, agent: str, config: AgentConfig) -> None:
        if len(self._entries) >= _MAX_REMEMBERED and agent not in self._entries:
            self._entries.clear()  # crude but bounded; entries refill on the next call per agent
        self._entries[agent] = _Entry(config, self._clock() + self._ttl_s)

    async def _read(self, agent: str, claim: NudgeClaim | None = None) -> AgentConfig:
        if not self._breaker.allow():
            return self._fallback(agent, "backoff")
        try:
            async with asyncio.timeout(self._timeout_s):
                if claim is None:
                    raw = await self._redis.hget(cfg_key(self._prefix, agent), CFG_FIELD)
                else:
                    raw = await self.nudges.read_and_claim(agent, claim, CFG_FIELD)
        except (RedisError, OSError, TimeoutError) as exc:
            self._breaker.failure()
            if claim is not None and claim.attempted:
                # The script may have run all the same: give back what it marked for this call.
                claim.nudges = ()
                self.nudges.release_soon(agent, claim.event_id, "read_failed")
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
