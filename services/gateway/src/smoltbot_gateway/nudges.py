"""Wave 3 at the gateway: claim an agent's pending nudges with its config (architecture §4).

Storage (written by the verifier, see ``smoltbot_verifier.nudges``):

- ``nudges:{a}``: hash, nudge id -> :class:`~smoltbot_contracts.Nudge` as JSON;
- ``nudges:{a}:pending``: sorted set of the pending ids, scored by ``created_ms``.

An agent in ``nudge`` or ``enforce`` mode has its config read through :data:`CLAIM_LUA`, one
script that reads ``cfg:{a}`` and, when that config says nudge or enforce mode and the agent is
active, in the same atomic step marks pending nudges older than :attr:`Nudge.MAX_AGE_MS`
``expired`` and claims the oldest :attr:`Nudge.CLAIM_LIMIT` others: each is marked
``delivered`` with the time and the call's event id and leaves the pending index. Redis runs a
script alone, so concurrent calls never claim one nudge twice. Only calls that can carry nudges
(a POST to a generation endpoint, :func:`claim_for`) claim anything; a call that claimed nudges
but could not carry them after all (a body that is not a JSON object, a ``system`` of an odd
type, an early refusal) gives them back (:data:`RELEASE_LUA`), in the background.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError
from smoltbot_contracts import EnforcementMode, Nudge
from smoltbot_contracts.streams import cfg_key, nudges_key, nudges_pending_key

from smoltbot_gateway.metrics import NUDGES_EXPIRED, NUDGES_RELEASED
from smoltbot_gateway.providers import Provider

__all__ = [
    "CLAIMING_MODES",
    "CLAIM_LUA",
    "NOTICE_HEADER",
    "RELEASE_LUA",
    "NudgeClaim",
    "NudgeStore",
    "claim_for",
    "notice_text",
]

log = logging.getLogger(__name__)

CLAIMING_MODES: frozenset[EnforcementMode] = frozenset({"nudge", "enforce"})
NOTICE_HEADER = "[smoltbot integrity notice]"
RELEASE_DELAY_S = 1.0
"""After a failed read the claim may still run on the server: the give-back waits this long."""
RELEASE_TIMEOUT_S = 2.0

# KEYS: cfg:{a}, nudges:{a}, nudges:{a}:pending
# ARGV: cfg hash field, now_ms, max_age_ms, limit, event_id
# Returns {raw config or nil, {claimed record JSON, ...}, expired count}.
CLAIM_LUA = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local mode, containment = 'observe', 'active'
if raw then
  local ok, cfg = pcall(cmsgpack.unpack, raw)
  if ok and type(cfg) == 'table' then
    if type(cfg['enforcement_mode']) == 'string' then mode = cfg['enforcement_mode'] end
    if type(cfg['containment']) == 'string' then containment = cfg['containment'] end
  end
end
if (mode ~= 'nudge' and mode ~= 'enforce') or containment ~= 'active' then
  return {raw or false, {}, 0}
end
local now = tonumber(ARGV[2])
local cutoff = now - tonumber(ARGV[3])
local expired = 0
local stale = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', cutoff)
for _, id in ipairs(stale) do
  local record = redis.call('HGET', KEYS[2], id)
  if record then
    local ok, n = pcall(cjson.decode, record)
    if ok and type(n) == 'table' and n['status'] == 'pending' then
      n['status'] = 'expired'
      n['expired_ms'] = now
      redis.call('HSET', KEYS[2], id, cjson.encode(n))
      expired = expired + 1
    end
  end
end
if #stale > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', cutoff)
end
local claimed = {}
local ids = redis.call('ZRANGE', KEYS[3], 0, tonumber(ARGV[4]) - 1)
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[3], id)
  local record = redis.call('HGET', KEYS[2], id)
  if record then
    local ok, n = pcall(cjson.decode, record)
    if ok and type(n) == 'table' and n['status'] == 'pending' then
      n['status'] = 'delivered'
      n['delivered_ms'] = now
      n['delivered_event_id'] = ARGV[5]
      local encoded = cjson.encode(n)
      redis.call('HSET', KEYS[2], id, encoded)
      claimed[#claimed + 1] = encoded
    end
  end
end
return {raw or false, claimed, expired}
"""

# KEYS: nudges:{a}, nudges:{a}:pending
# ARGV: event_id
# Nudges marked delivered to that event go back to pending. Returns how many.
RELEASE_LUA = """
local all = redis.call('HGETALL', KEYS[1])
local released = 0
for i = 1, #all, 2 do
  local ok, n = pcall(cjson.decode, all[i + 1])
  if ok and type(n) == 'table' and n['status'] == 'delivered'
      and n['delivered_event_id'] == ARGV[1] then
    n['status'] = 'pending'
    n['delivered_ms'] = nil
    n['delivered_event_id'] = nil
    redis.call('HSET', KEYS[1], all[i], cjson.encode(n))
    redis.call('ZADD', KEYS[2], tonumber(n['created_ms']) or 0, all[i])
    released = released + 1
  end
end
return released
"""

_RECORD = msgspec.json.Decoder(Nudge)


class NudgeClaim:
    """One call's claim on its agent's pending nudges, filled in by the config read that made
    it: ``agent``, the claimed ``nudges`` (oldest first) and ``attempted`` (the script was sent,
    so nudges may be marked for this call even when no answer came back). The injection sets
    ``delivered`` once the nudges are in the upstream body."""

    __slots__ = ("agent", "attempted", "delivered", "event_id", "nudges")

    def __init__(self, event_id: str) -> None:
        self.event_id = event_id
        self.agent = ""
        self.nudges: tuple[Nudge, ...] = ()
        self.attempted = False
        self.delivered = False


def claim_for(provider: Provider, method: str, path: str, event_id: str) -> NudgeClaim | None:
    """A claim for a call that can carry nudges (a POST to a generation endpoint), else None:
    nudges are never spent on model lists, token counts or other calls without a prompt."""
    if method != "POST" or not generates(provider, path):
        return None
    return NudgeClaim(event_id)


def generates(provider: Provider, path: str) -> bool:
    """``path`` is the provider's generation endpoint: Anthropic Messages, OpenAI chat
    completions, Gemini ``generateContent`` / ``streamGenerateContent``."""
    if provider == "anthropic":
        return path.rstrip("/").endswith("/messages")
    if provider == "openai":
        return path.rstrip("/").endswith("/chat/completions")
    return path.endswith((":generateContent", ":streamGenerateContent"))


def notice_text(nudges: Sequence[Nudge]) -> str:
    """The text injected into the system prompt: :data:`NOTICE_HEADER`, then one paragraph per
    nudge (its ``text``), paragraphs separated by a blank line."""
    return NOTICE_HEADER + "\n" + "\n\n".join(n.text for n in nudges)


def _decode_claimed(records: object) -> tuple[Nudge, ...]:
    if not isinstance(records, list):
        return ()
    out: list[Nudge] = []
    for record in records:
        try:
            out.append(_RECORD.decode(record))
        except (msgspec.DecodeError, msgspec.ValidationError, TypeError) as exc:
            # Marked delivered all the same: a record nobody can read would block the queue.
            log.warning("unreadable nudge record skipped", extra={"error": str(exc)[:200]})
    return tuple(out)


class NudgeStore:
    """The claim and give-back scripts on the config read's Redis client."""

    def __init__(
        self, redis: Redis, prefix: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._clock = clock
        self._claim = redis.register_script(CLAIM_LUA)
        self._release = redis.register_script(RELEASE_LUA)
        self._tasks: set[asyncio.Task[int]] = set()  # keeps them referenced

    async def read_and_claim(self, agent: str, claim: NudgeClaim, cfg_field: bytes) -> Any:
        """One round trip: the raw ``cfg:{agent}`` value (hash field ``cfg_field``), and into
        ``claim`` the nudges claimed for its event (none unless that config says nudge or
        enforce mode and active)."""
        prefix = self._prefix
        claim.agent = agent
        claim.attempted = True
        reply = await self._claim(
            keys=[
                cfg_key(prefix, agent),
                nudges_key(prefix, agent),
                nudges_pending_key(prefix, agent),
            ],
            args=[
                cfg_field,
                int(self._clock() * 1000),
                Nudge.MAX_AGE_MS,
                Nudge.CLAIM_LIMIT,
                claim.event_id,
            ],
        )
        raw, records, expired = reply
        claim.nudges = _decode_claimed(records)
        if expired:
            NUDGES_EXPIRED.inc(int(expired))
        return raw

    def settle(self, claim: NudgeClaim) -> None:
        """After the call: nudges it claimed but never put into an upstream body go back."""
        if claim.nudges and not claim.delivered:
            self.release_soon(claim.agent, claim.event_id, "not_injected")

    def release_soon(self, agent: str, event_id: str, reason: str) -> None:
        """Give back, in the background, every nudge marked delivered to ``event_id``."""
        delay = RELEASE_DELAY_S if reason == "read_failed" else 0.0
        task = asyncio.get_running_loop().create_task(self.release(agent, event_id, reason, delay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def release(self, agent: str, event_id: str, reason: str, delay_s: float = 0.0) -> int:
        """Nudges marked delivered to ``event_id`` become pending again; never raises."""
        if delay_s:
            await asyncio.sleep(delay_s)
        prefix = self._prefix
        try:
            async with asyncio.timeout(RELEASE_TIMEOUT_S):
                count = int(
                    await self._release(
                        keys=[nudges_key(prefix, agent), nudges_pending_key(prefix, agent)],
                        args=[event_id],
                    )
                )
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning(
                "claimed nudges could not be given back; they stay marked delivered",
                extra={"agent_id": agent, "error": type(exc).__name__},
            )
            return 0
        if count:
            NUDGES_RELEASED.labels(reason).inc(count)
        return count
