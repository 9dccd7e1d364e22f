"""``rt:{agent}``: the verifier's per-agent history (architecture §4; only the verifier writes it).

Two keys per agent, one hash tag:

- ``rt:{a}`` — hash: checkpoint id -> :class:`Entry` JSON (verdict, session, a short reasoning
  summary, concern categories, synthetic flag, the few AP-Trace fields AAP drift reads);
- ``rt:{a}:order`` — sorted set: checkpoint id scored by the exchange's completion time (ms);
  equal scores order by id, so the order is total and the same on every replay.

At most :data:`MAX_ENTRIES` entries are kept (the oldest by that order are evicted); both keys
expire :data:`TTL_MS` after the last write. :data:`RECORD_LUA` adds one entry with ``HSETNX`` on
the checkpoint id — a redelivered or replayed trace changes nothing — and answers, for that
checkpoint, the consecutive boundary violations ending at it (synthetic checkpoints skipped), the
first checkpoint of that streak and every entry up to and including it, oldest first. Counts are
derived from the entries, never kept beside them, so they cannot drift apart.

Synthetic checkpoints (no thinking, below the evidence threshold, failed analysis) are recorded
(their traces still count for AAP drift) but kept out of the AIP window, the integrity ratio,
AIP drift and the violation count.

The AIP window of a checkpoint (:func:`window_for`) is made of the entries strictly before it in
that order, in its session, non-synthetic, at most an hour older than it, pushed through
``aip.WindowManager`` (size 10, sliding). It never depends on what arrived after the checkpoint,
so replaying a trace shows its analysis the same window as long as its predecessors were
verified before it the first time (one agent's traces are read in order; see architecture §4).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import aip
import msgspec
from redis.asyncio import Redis
from smoltbot_contracts import Checkpoint, JSONObject, TraceV1, Verdict
from smoltbot_contracts.streams import runtime_key, runtime_order_key

__all__ = [
    "MAX_ENTRIES",
    "RECORD_LUA",
    "Entry",
    "Recorded",
    "RuntimeState",
    "aip_checkpoint",
    "entry_for",
    "window_for",
]

MAX_ENTRIES = 50
"""Entries kept per agent: AAP drift reads the 50 most recent traces (protocols.md §3.5)."""
TTL_MS = 7 * 24 * 3_600_000
WINDOW_MAX_SIZE = aip.DEFAULT_WINDOW_MAX_SIZE
WINDOW_MAX_AGE_MS = aip.DEFAULT_WINDOW_MAX_AGE_SECONDS * 1000
SUMMARY_CHARS = 300

# KEYS: rt:{a}, rt:{a}:order
# ARGV: checkpoint id, score (completion ms), entry JSON, max entries, ttl ms
# Returns {added 1|0, consecutive violations ending at this checkpoint, streak start id or '',
#          entry JSON up to and including this checkpoint, oldest first...}
RECORD_LUA = """
local added = redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[3])
if added == 1 then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
  local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
  if excess > 0 then
    local old = redis.call('ZRANGE', KEYS[2], 0, excess - 1)
    redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
    redis.call('HDEL', KEYS[1], unpack(old))
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
local upto = {}
local found = false
for _, id in ipairs(ids) do
  upto[#upto + 1] = id
  if id == ARGV[1] then
    found = true
    break
  end
end
if not found then
  return {added, 0, ''}
end
local entries = redis.call('HMGET', KEYS[1], unpack(upto))
local count, start = 0, ''
for i = #entries, 1, -1 do
  local ok, e = pcall(cjson.decode, entries[i])
  if ok and type(e) == 'table' and e['y'] ~= true then
    if e['v'] ~= 'boundary_violation' then
      break
    end
    count = count + 1
    start = e['id']
  end
end
local out = {added, count, start}
for i = 1, #entries do
  out[#out + 1] = entries[i]
end
return out
"""


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """One checkpoint as ``rt:{agent}`` keeps it (short JSON names: Lua reads ``v`` and ``y``)."""

    checkpoint_id: str = msgspec.field(name="id")
    completed_ms: int = msgspec.field(name="ms")
    session_id: str = msgspec.field(name="s")
    verdict: Verdict = msgspec.field(name="v")
    synthetic: bool = msgspec.field(default=False, name="y")
    summary: str = msgspec.field(default="", name="r")
    categories: list[str] = msgspec.field(default_factory=list, name="c")
    trace: JSONObject | None = msgspec.field(default=None, name="t")
    """The AP-Trace fields AAP drift reads (protocols.md §3.4): ids, timestamp, action type,
    category and name, values applied, confidence, escalation flags."""

    @property
    def order(self) -> tuple[int, str]:
        return (self.completed_ms, self.checkpoint_id)


_ENTRY = msgspec.json.Decoder(Entry)
_ENCODE = msgspec.json.Encoder()


def _trace_view(event: TraceV1) -> JSONObject | None:
    trace = event.trace
    if trace is None:
        return None
    decision: dict[str, Any] = {"values_applied": list(trace.decision.values_applied)}
    if trace.decision.confidence is not None:
        decision["confidence"] = trace.decision.confidence
    return {
        "trace_id": trace.trace_id,
        "agent_id": trace.agent_id,
        "card_id": trace.card_id,
        "timestamp": trace.timestamp.isoformat(),
        "action": {
            "type": trace.action.type,
            "name": trace.action.name,
            "category": trace.action.category,
        },
        "decision": decision,
        "escalation": {
            "evaluated": trace.escalation.evaluated,
            "required": trace.escalation.required,
        },
    }


def entry_for(event: TraceV1, checkpoint: Checkpoint) -> Entry:
    """What ``rt:{agent}`` keeps of one verified trace."""
    return Entry(
        checkpoint_id=checkpoint.checkpoint_id,
        completed_ms=int(event.meta.completed_at.timestamp() * 1000),
        session_id=checkpoint.session_id,
        verdict=checkpoint.verdict,
        synthetic=checkpoint.synthetic,
        summary=checkpoint.reasoning_summary[:SUMMARY_CHARS],
        categories=[c.category for c in checkpoint.concerns],
        trace=_trace_view(event),
    )


def decode_entry(raw: object) -> Entry | None:
    if not isinstance(raw, bytes | str):
        return None
    try:
        return _ENTRY.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def aip_checkpoint(entry: Entry, agent: str, card_id: str) -> aip.IntegrityCheckpoint:
    """An entry as the AIP package's checkpoint (only what its window and drift read)."""
    return aip.IntegrityCheckpoint(
        checkpoint_id=entry.checkpoint_id,
        agent_id=agent,
        card_id=card_id,
        session_id=entry.session_id,
        timestamp=datetime.fromtimestamp(entry.completed_ms / 1000, UTC).isoformat(),
        thinking_block_hash="",
        provider="",
        model="",
        verdict=entry.verdict,
        concerns=[
            aip.IntegrityConcern(
                category=c,  # type: ignore[arg-type]  # AIP's categories, from its own parse
                severity="low",
                description="",
                evidence="",
                relevant_card_field=None,
                relevant_conscience_value=None,
            )
            for c in entry.categories
        ],
        reasoning_summary=entry.summary,
        conscience_context=aip.ConscienceContext(),
        window_position=aip.WindowPosition(index=0, window_size=0),
        analysis_metadata=aip.AnalysisMetadata(
            analysis_model="",
            analysis_duration_ms=0.0,
            thinking_tokens_original=0,
            thinking_tokens_analyzed=0,
            truncated=False,
            extraction_confidence=0.0,
        ),
        synthetic=entry.synthetic,
    )


def window_for(
    history: Iterable[Entry],
    *,
    checkpoint_id: str,
    completed_ms: int,
    session_id: str,
    agent: str,
    card_id: str,
) -> list[aip.IntegrityCheckpoint]:
    """The AIP session window a checkpoint is analysed with: earlier non-synthetic checkpoints
    of its session within the window's max age of it, through ``aip.WindowManager``.

    Age is measured against the checkpoint's own completion time, not "now" (the package's
    eviction reads the clock, so its own max age is disabled here): a replay sees the same
    window."""
    before = sorted(
        (
            e
            for e in history
            if e.order < (completed_ms, checkpoint_id)
            and e.session_id == session_id
            and not e.synthetic
            and completed_ms - e.completed_ms <= WINDOW_MAX_AGE_MS
        ),
        key=lambda e: e.order,
    )
    manager = aip.WindowManager(
        aip.WindowConfig(max_size=WINDOW_MAX_SIZE, max_age_seconds=10**12), session_id
    )
    for entry in before:
        manager.push(aip_checkpoint(entry, agent, card_id))
    return list(manager.get_state().checkpoints)


class Recorded(msgspec.Struct, frozen=True, kw_only=True):
    """What :data:`RECORD_LUA` answered for one checkpoint."""

    added: bool
    consecutive_violations: int
    streak_start: str | None
    upto: list[Entry]
    """Entries up to and including the checkpoint, oldest first (empty: evicted at once)."""


class RuntimeState:
    """Reads and writes ``rt:{agent}``; Redis errors propagate (the batch is retried)."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(RECORD_LUA)

    async def history(self, agents: Iterable[str]) -> dict[str, list[Entry]]:
        """Every kept entry of each agent, oldest first; one pipelined round trip."""
        names = sorted(set(agents))
        if not names:
            return {}
        pipe = self._redis.pipeline(transaction=False)
        for agent in names:
            pipe.hvals(runtime_key(self._prefix, agent))
        raws: list[Any] = await pipe.execute()
        out: dict[str, list[Entry]] = {}
        for agent, values in zip(names, raws, strict=True):
            entries = [e for e in (decode_entry(v) for v in values) if e is not None]
            out[agent] = sorted(entries, key=lambda e: e.order)
        return out

    async def record(self, items: Sequence[tuple[str, Entry]]) -> list[Recorded]:
        """Add ``(agent, entry)`` pairs (idempotent per checkpoint id), pipelined, in order."""
        if not items:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for agent, entry in items:
            await self._script(
                keys=[
                    runtime_key(self._prefix, agent),
                    runtime_order_key(self._prefix, agent),
                ],
                args=[
                    entry.checkpoint_id,
                    entry.completed_ms,
                    _ENCODE.encode(entry),
                    MAX_ENTRIES,
                    TTL_MS,
                ],
                client=pipe,
            )
        results: list[Any] = await pipe.execute()
        recorded: list[Recorded] = []
        for result in results:
            start = result[2].decode() if isinstance(result[2], bytes) else str(result[2])
            upto = [e for e in (decode_entry(raw) for raw in result[3:]) if e is not None]
            recorded.append(
                Recorded(
                    added=int(result[0]) == 1,
                    consecutive_violations=int(result[1]),
                    streak_start=start or None,
                    upto=upto,
                )
            )
        return recorded
