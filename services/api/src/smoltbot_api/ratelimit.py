"""Per-key rate limits in Redis: one token bucket per API key, one script call per request.

Each key has a bucket of ``SMOLTBOT_API_RATE_LIMIT_BURST`` tokens, refilled at
``SMOLTBOT_API_RATE_LIMIT_PER_MIN`` per minute; a request takes one token, and a request that
finds the bucket empty is answered 429 with ``Retry-After`` (the seconds until a token is back).
A token bucket rather than a fixed window: it allows exactly "this many per minute, this many at
once", with no double burst at a window's edge. The bucket lives in one Redis hash,
``<SMOLTBOT_STREAM_PREFIX>ratelimit:api:<key id>``, read, refilled and spent by one Lua script
(atomic, one round trip, shared by every api replica), with Redis's own clock so replicas
agree. The hash expires once a full bucket would have refilled.

The limiter never makes the api fail: when Redis does not answer (short timeouts; a circuit
breaker then skips Redis for a few seconds) the request is let through, counted in
``smoltbot_api_rate_limit_fail_open_total`` and logged at most once a minute.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import redis.exceptions
from redis.asyncio import Redis
from smoltbot_resilience import CircuitBreaker

from smoltbot_api.metrics import RATE_LIMIT_FAIL_OPEN, RATE_LIMITED

__all__ = ["RateLimiter"]

logger = logging.getLogger(__name__)

# KEYS[1] bucket; ARGV[1] refill in tokens per millisecond, ARGV[2] bucket size.
# Answers {allowed (1/0), milliseconds until one token is back (0 when allowed)}.
_TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate)
end
local allowed = 0
local wait_ms = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait_ms = math.ceil((1 - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(math.max(now, at)))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate) + 1000)
return {allowed, wait_ms}
"""  # noqa: S105 - a Lua script, not a password

_LOG_EVERY_S = 60.0


class RateLimiter:
    """``await limiter.check(identity)``: None when the request may go on, else the seconds to
    wait. ``per_min == 0`` turns limiting off (no Redis traffic at all)."""

    def __init__(
        self,
        redis_url: str,
        prefix: str,
        *,
        per_min: int,
        burst: int,
        timeout_s: float = 0.25,
        breaker_cooldown_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = per_min > 0
        self._prefix = prefix
        self._rate_per_ms = per_min / 60_000.0
        self._burst = burst
        self._clock = clock
        # Its own client with tight timeouts: a slow Redis must not slow requests down.
        self._client: Redis = Redis.from_url(
            redis_url,
            decode_responses=False,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
        )
        self._script = self._client.register_script(_TOKEN_BUCKET)
        self._breaker = CircuitBreaker(threshold=1, cooldown_s=breaker_cooldown_s, clock=clock)
        self._last_logged = -math.inf

    def key(self, identity: str) -> str:
        return f"{self._prefix}ratelimit:api:{identity}"

    async def check(self, identity: str) -> int | None:
        """Spend one token of ``identity``'s bucket; the whole seconds to wait when empty."""
        if not self.enabled:
            return None
        if not self._breaker.allow():
            self._fail_open("redis skipped after a recent failure", None)
            return None
        try:
            reply = await self._script(
                keys=[self.key(identity)], args=[repr(self._rate_per_ms), self._burst]
            )
            allowed, wait_ms = int(reply[0]), int(reply[1])
        except (redis.exceptions.RedisError, OSError, TimeoutError) as exc:
            self._breaker.failure()
            self._fail_open("redis unavailable", exc)
            return None
        self._breaker.success()
        if allowed:
            return None
        RATE_LIMITED.inc()
        return max(1, math.ceil(wait_ms / 1000))

    def _fail_open(self, why: str, exc: BaseException | None) -> None:
        RATE_LIMIT_FAIL_OPEN.inc()
        now = self._clock()
        if now - self._last_logged >= _LOG_EVERY_S:
            self._last_logged = now
            detail = "" if exc is None else f"{type(exc).__name__}: {exc}"[:300]
            logger.warning(
                "rate limit not checked, request let through (%s)",
                why,
                extra={"error": detail} if detail else None,
            )

    async def close(self) -> None:
        await self._client.aclose()
