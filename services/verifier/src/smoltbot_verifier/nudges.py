"""Wave 3 at the verifier: a violating checkpoint becomes a nudge the gateway puts into the
agent's next call (architecture §4; gateway reference §2.3).

When: the checkpoint's verdict is ``boundary_violation``, it is not synthetic (a fail-closed
"analysis failed" is no fault of the agent), and ``cfg:{agent}`` (read like ``card:{agent}``;
the defaults, observe mode, on a miss) says ``nudge`` mode, or ``enforce`` mode for a streamed
exchange (a non-streamed one was blocked at the door instead). ``review_needed`` never makes a
nudge: its recommended action is to log and continue. Then the agent's ``nudge_strategy``:

- ``always``: every such violation;
- ``off``: none;
- ``sampling``: ``nudge_rate`` percent of them, chosen by a hash of the exchange id (a
  redelivered trace decides the same way);
- ``threshold``: once the session has had ``nudge_threshold`` of them, this one included; the
  count is the checkpoint's rank in a sorted set of the session's violating checkpoint ids
  scored by completion time (``nudges:{a}:session:<session>``, two hours), so a redelivery does
  not count twice and a replay of earlier violations, which now sees later ones in the set,
  still decides as the first time did.

The nudge id is derived from the exchange (``ids.nudge_id``) and written with HSETNX: a trace
delivered twice writes one nudge. ``created_ms`` is the exchange's completion time, so a
replayed old trace writes nothing new (older than four hours: skipped). The text names the
checkpoint and its concerns (category and description; the summary when there are none), never
the thinking or the evidence quoted from it. Each write also prunes records older than a day
and sets the keys to expire a day after the last write.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import msgspec
from redis.asyncio import Redis
from smoltbot_agentstate import CFG_FIELD, decode_config
from smoltbot_contracts import AgentConfig, Checkpoint, Nudge, VerdictV1, ids
from smoltbot_contracts.streams import (
    cfg_key,
    nudge_session_key,
    nudges_key,
    nudges_pending_key,
)

from smoltbot_verifier.metrics import NUDGES_CREATED, NUDGES_SKIPPED

__all__ = [
    "CFG_FIELD",
    "CREATE_LUA",
    "ConfigStore",
    "NudgeWriter",
    "decode_config",
    "nudge_for",
    "nudge_text",
]

log = logging.getLogger(__name__)

SESSION_TTL_MS = 2 * 3_600_000
MAX_CONCERNS_CHARS = 600
_DEFAULT_CONFIG = AgentConfig()
_RECORD = msgspec.json.Encoder()

# KEYS: nudges:{a}, nudges:{a}:pending, nudges:{a}:session:<session>
# ARGV: id, record JSON, created_ms, now_ms, retention_ms, threshold (0: none), checkpoint id,
#       session ttl ms
# Returns 1 written, 0 already there, -1 below the session threshold.
CREATE_LUA = """
local threshold = tonumber(ARGV[6])
if threshold > 0 then
  if redis.call('TYPE', KEYS[3])['ok'] == 'set' then
    redis.call('DEL', KEYS[3])  -- the unordered set of an earlier version
  end
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[7])
  redis.call('PEXPIRE', KEYS[3], ARGV[8])
  if redis.call('ZRANK', KEYS[3], ARGV[7]) + 1 < threshold then
    return -1
  end
end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local cutoff = tonumber(ARGV[4]) - tonumber(ARGV[5])
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local ok, n = pcall(cjson.decode, all[i + 1])
  if ok and type(n) == 'table' and (tonumber(n['created_ms']) or 0) < cutoff then
    redis.call('HDEL', KEYS[1], all[i])
    redis.call('ZREM', KEYS[2], all[i])
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1
"""


class ConfigStore:
    """Reads ``cfg:{agent}`` for a batch of agents in one pipelined round trip (decoded as
    ``smoltbot_agentstate``, the key's one writer, encodes it)."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def fetch(self, agents: Iterable[str]) -> dict[str, AgentConfig]:
        """``{agent: config}``; Redis errors propagate (the batch is retried)."""
        names = sorted(set(agents))
        if not names:
            return {}
        pipe = self._redis.pipeline(transaction=False)
        for agent in names:
            pipe.hget(cfg_key(self._prefix, agent), CFG_FIELD)
        raws: list[Any] = await pipe.execute()
        return {agent: decode_config(raw) for agent, raw in zip(names, raws, strict=True)}


def nudge_text(checkpoint: Checkpoint) -> str:
    """This nudge's paragraph of the notice: the checkpoint, its concerns, what to do."""
    concerns = "; ".join(
        f"{c.category or 'unknown'}: {c.description or 'unspecified'}" for c in checkpoint.concerns
    )
    if not concerns:
        concerns = checkpoint.reasoning_summary or "Boundary violation detected"
    if len(concerns) > MAX_CONCERNS_CHARS:
        concerns = concerns[: MAX_CONCERNS_CHARS - 1] + "…"
    return (
        f"Your previous response (checkpoint {checkpoint.checkpoint_id}) was flagged as a "
        "boundary violation.\n"
        f"Concern: {concerns}\n"
        "Review your approach and self-correct. This notice is recorded with your integrity "
        "checkpoints."
    )


def _sampled(exchange_id: str, rate: int) -> bool:
    bucket = int.from_bytes(hashlib.sha256(exchange_id.encode()).digest()[:4], "big") % 100
    return bucket < max(0, min(100, rate))


def nudge_for(verdict: VerdictV1, config: AgentConfig, now_ms: int) -> tuple[Nudge | None, str]:
    """The nudge ``verdict`` calls for under ``config``, or None with the reason (``""`` when
    the verdict or mode never make one, else the counted skip reason). A ``threshold`` nudge is
    still subject to the session count made when it is written."""
    checkpoint = verdict.checkpoint
    meta = verdict.meta
    if checkpoint is None or checkpoint.verdict != "boundary_violation":
        return None, ""
    mode = config.enforcement_mode
    if not (mode == "nudge" or (mode == "enforce" and meta.streamed)):
        return None, ""
    if checkpoint.synthetic:
        return None, "synthetic"
    strategy = config.nudge_strategy
    if strategy == "off":
        return None, "strategy_off"
    if strategy == "sampling" and not _sampled(meta.exchange_id, config.nudge_rate):
        return None, "sampled_out"
    created_ms = int(meta.completed_at.timestamp() * 1000)
    if created_ms <= now_ms - Nudge.MAX_AGE_MS:
        return None, "too_old"
    nudge = Nudge(
        id=ids.nudge_id(meta.exchange_id),
        agent_id=meta.agent_id,
        checkpoint_id=checkpoint.checkpoint_id,
        exchange_id=meta.exchange_id,
        session_id=meta.session_id,
        verdict=checkpoint.verdict,
        text=nudge_text(checkpoint),
        created_ms=created_ms,
    )
    return nudge, ""


class NudgeWriter:
    """Writes the nudges a batch's verdicts call for: one config read and one script call per
    nudge, each pipelined. Redis errors propagate (the batch is retried; writes are
    idempotent)."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        configs: ConfigStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._configs = configs or ConfigStore(redis, prefix)
        self._clock = clock
        self._script = redis.register_script(CREATE_LUA)

    async def write(self, verdicts: Sequence[VerdictV1]) -> list[Nudge]:
        """The nudges written now (not those a redelivery had written already)."""
        return [nudge for nudge, new in await self.write_present(verdicts) if new]

    async def write_present(self, verdicts: Sequence[VerdictV1]) -> list[tuple[Nudge, bool]]:
        """Every nudge the verdicts made, with whether it was written now (``False``: a
        redelivery found it written already). The verifier reports them all as ``NudgeCreated``
        facts, so a batch retried after the write still tells the persister."""
        candidates = [
            v
            for v in verdicts
            if v.checkpoint is not None and v.checkpoint.verdict == "boundary_violation"
        ]
        if not candidates:
            return []
        configs = await self._configs.fetch(v.meta.agent_id for v in candidates)
        now_ms = int(self._clock() * 1000)
        planned: list[tuple[Nudge, AgentConfig]] = []
        for verdict in candidates:
            config = configs.get(verdict.meta.agent_id, _DEFAULT_CONFIG)
            nudge, reason = nudge_for(verdict, config, now_ms)
            if nudge is not None:
                planned.append((nudge, config))
            elif reason:
                NUDGES_SKIPPED.labels(reason).inc()
        if not planned:
            return []
        prefix = self._prefix
        pipe = self._redis.pipeline(transaction=False)
        for nudge, config in planned:
            agent = nudge.agent_id
            threshold = 0
            if config.nudge_strategy == "threshold":
                threshold = max(1, config.nudge_threshold)
            await self._script(
                keys=[
                    nudges_key(prefix, agent),
                    nudges_pending_key(prefix, agent),
                    nudge_session_key(prefix, agent, nudge.session_id),
                ],
                args=[
                    nudge.id,
                    _RECORD.encode(nudge),
                    nudge.created_ms,
                    now_ms,
                    Nudge.RETENTION_MS,
                    threshold,
                    nudge.checkpoint_id,
                    SESSION_TTL_MS,
                ],
                client=pipe,
            )
        results: list[Any] = await pipe.execute()
        written: list[tuple[Nudge, bool]] = []
        for (nudge, config), result in zip(planned, results, strict=True):
            if result in (0, 1):
                written.append((nudge, result == 1))
            if result == 1:
                NUDGES_CREATED.labels(config.enforcement_mode).inc()
                log.info(
                    "nudge created",
                    extra={"agent_id": nudge.agent_id, "nudge_id": nudge.id},
                )
            else:
                NUDGES_SKIPPED.labels("duplicate" if result == 0 else "below_threshold").inc()
        return written
