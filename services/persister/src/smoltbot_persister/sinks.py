"""SQL of the persister: events -> rows keyed by natural keys, written with ``ON CONFLICT``.

Rows derived from an event are immutable facts (``DO NOTHING``), the verifier's decided facts
on ``verdict.v1`` (drift alerts, containment log) included: a redelivered or replayed event
carries the same derived ids and writes nothing. The mutable rows only move forward, so events
arriving out of order or twice never regress them: ``agents`` widens its seen-interval
(``LEAST``/``GREATEST``); ``nudges`` fills in what it did not know yet and its status only
leaves ``pending`` (see ``NUDGES``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
from psycopg.types.json import Jsonb
from redis.asyncio import Redis
from smoltbot_contracts import (
    AgentV1,
    CardRecord,
    DriftAlert,
    Fact,
    NudgeCreated,
    NudgesDelivered,
    VerdictV1,
)
from smoltbot_contracts.cards import default_card
from smoltbot_contracts.ids import card_id
from smoltbot_contracts.streams import card_key
from smoltbot_db import UpsertSpec, upsert
from smoltbot_db.cards import card_records
from smoltbot_db.upsert import Conn

__all__ = [
    "AGENTS",
    "CARDS",
    "CHECKPOINTS",
    "CONTAINMENT_LOG",
    "DRIFT_ALERTS",
    "EXCHANGES",
    "NUDGES",
    "TRACES",
    "VERIFICATIONS",
    "InvalidRow",
    "WritePlan",
    "active_cards",
    "seed_card_cache",
    "write_plan",
]

log = logging.getLogger(__name__)

_JSON = msgspec.json.Encoder()


def _dumps(obj: Any) -> str:
    return _JSON.encode(obj).decode()


def _json(obj: Any) -> Jsonb:
    """jsonb parameter encoded by msgspec exactly as on the wire (the contracts decide which
    defaults are encoded; the AAP SDK and the api read the stored documents)."""
    return Jsonb(obj, dumps=_dumps)


def _utc(ts: datetime) -> datetime:
    # A naive timestamp on the wire is UTC by contract; never let the session TimeZone decide.
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


class InvalidRow(ValueError):  # noqa: N818 - mirrors the bus's InvalidEvent
    """An event whose content can never become a row (e.g. a malformed exchange id)."""


class AgentIdCollisionError(InvalidRow):
    """Two different key hashes share one ``smolt-<8 hex>`` id.

    Merging them would mix two agents' records, so the newcomer's events are refused (they go
    to the DLQ with this reason) until ids are lengthened across services.
    """

    def __init__(self, agent: str) -> None:
        super().__init__(f"agent id {agent} already belongs to a different key hash (collision)")


AGENTS = UpsertSpec(
    table="agents",
    columns=("id", "agent_hash", "name", "first_seen_at", "last_seen_at"),
    key=("id",),
    action=(
        "DO UPDATE SET first_seen_at = LEAST(agents.first_seen_at, EXCLUDED.first_seen_at), "
        "last_seen_at = GREATEST(agents.last_seen_at, EXCLUDED.last_seen_at), "
        "name = COALESCE(agents.name, EXCLUDED.name) "
        "WHERE agents.first_seen_at > EXCLUDED.first_seen_at "
        "OR agents.last_seen_at < EXCLUDED.last_seen_at "
        "OR (agents.name IS NULL AND EXCLUDED.name IS NOT NULL)"
    ),
)
# No conflict target: skip on the primary key *and* on "one active card per agent", so a card
# published by the api before a replayed agent.v1 is never displaced by the default.
CARDS = UpsertSpec(
    table="alignment_cards",
    columns=("id", "agent_id", "card_json", "is_active", "issued_at"),
    key=(),
)
EXCHANGES = UpsertSpec(
    table="exchanges",
    columns=(
        "exchange_id",
        "agent_id",
        "session_id",
        "provider",
        "model",
        "method",
        "path",
        "status",
        "streamed",
        "started_at",
        "completed_at",
        "upstream_ms",
        "total_ms",
        "ttfb_ms",
        "input_tokens",
        "output_tokens",
        "gateway_instance",
    ),
    key=("exchange_id",),
)
TRACES = UpsertSpec(
    table="traces",
    columns=(
        "trace_id",
        "exchange_id",
        "agent_id",
        "card_id",
        "session_id",
        "timestamp",
        "action",
        "decision",
        "escalation",
        "context",
        "verified",
        "trace_json",
    ),
    key=("trace_id",),
)
VERIFICATIONS = UpsertSpec(
    table="verifications",
    columns=(
        "trace_id",
        "agent_id",
        "card_id",
        "verified",
        "similarity_score",
        "violations",
        "warnings",
        "checks_performed",
        "algorithm_version",
    ),
    key=("trace_id",),
)
CHECKPOINTS = UpsertSpec(
    table="integrity_checkpoints",
    columns=(
        "checkpoint_id",
        "exchange_id",
        "agent_id",
        "card_id",
        "session_id",
        "timestamp",
        "thinking_block_hash",
        "provider",
        "model",
        "verdict",
        "concerns",
        "reasoning_summary",
        "conscience_context",
        "window_position",
        "analysis_metadata",
        "linked_trace_id",
        "synthetic",
        "synthetic_reason",
        "recommended_action",
        "proceed",
        "analyzer_verdict",
    ),
    key=("checkpoint_id",),
)

DRIFT_ALERTS = UpsertSpec(
    table="drift_alerts",
    columns=(
        "id",
        "source",
        "agent_id",
        "card_id",
        "session_id",
        "alert_type",
        "severity",
        "description",
        "streak_start",
        "streak_ids",
        "exchange_id",
        "detected_at",
        "drift_data",
    ),
    key=("id",),
)
CONTAINMENT_LOG = UpsertSpec(
    table="agent_containment_log",
    columns=(
        "id",
        "agent_id",
        "action",
        "actor",
        "reason",
        "new_status",
        "checkpoint_id",
        "exchange_id",
        "streak_start",
        "consecutive_violations",
        "threshold",
        "decided_at",
    ),
    key=("id",),
)

# A nudge's row is written by two facts on two verdicts that may arrive in either order or
# again: NudgeCreated (checkpoint, created_at, text; status pending) and NudgesDelivered
# (status delivered, delivered_at, delivered_event_id). The columns each owns are filled in when
# still NULL, never overwritten; the status only leaves 'pending' (pending < delivered,
# pending < expired), taking its delivery columns with it. So a replayed creation never turns a
# delivered row back to pending, and a delivery that arrives first inserts a row (no checkpoint
# or text yet) that the creation later completes. The WHERE clause skips no-op updates, so a
# replay writes nothing.
NUDGES = UpsertSpec(
    table="nudges",
    columns=(
        "id",
        "agent_id",
        "checkpoint_id",
        "created_at",
        "text",
        "status",
        "delivered_at",
        "delivered_event_id",
    ),
    key=("id",),
    action=(
        "DO UPDATE SET checkpoint_id = COALESCE(nudges.checkpoint_id, EXCLUDED.checkpoint_id), "
        "created_at = COALESCE(nudges.created_at, EXCLUDED.created_at), "
        "text = COALESCE(nudges.text, EXCLUDED.text), "
        "status = CASE WHEN nudges.status = 'pending' THEN EXCLUDED.status "
        "ELSE nudges.status END, "
        "delivered_at = CASE WHEN nudges.status = 'pending' THEN EXCLUDED.delivered_at "
        "ELSE nudges.delivered_at END, "
        "delivered_event_id = CASE WHEN nudges.status = 'pending' "
        "THEN EXCLUDED.delivered_event_id ELSE nudges.delivered_event_id END "
        "WHERE (nudges.status = 'pending' AND EXCLUDED.status <> 'pending') "
        "OR (nudges.checkpoint_id IS NULL AND EXCLUDED.checkpoint_id IS NOT NULL) "
        "OR (nudges.created_at IS NULL AND EXCLUDED.created_at IS NOT NULL) "
        "OR (nudges.text IS NULL AND EXCLUDED.text IS NOT NULL)"
    ),
)

_NUDGE_RANK = {"pending": 0, "delivered": 1, "expired": 1}


def _merge_nudge(old: tuple[Any, ...] | None, new: tuple[Any, ...]) -> tuple[Any, ...]:
    """Two facts about one nudge in one batch, merged as the ``NUDGES`` upsert would (one
    statement never touches a row twice, so they cannot be two rows)."""
    if old is None:
        return new
    filled = [a if a is not None else b for a, b in zip(old[:5], new[:5], strict=True)]
    keep_old = _NUDGE_RANK[old[5]] > 0 or _NUDGE_RANK[new[5]] == 0
    delivery = old[5:] if keep_old else new[5:]
    return (*filled, *delivery)


@dataclass
class _Seen:
    agent_hash: str
    name: str | None
    first: datetime
    last: datetime


@dataclass
class WritePlan:
    """Rows of one batch, collected before the transaction so a bad event fails early."""

    agents: dict[str, _Seen] = field(default_factory=dict)
    cards: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    card_agents: set[str] = field(default_factory=set)
    exchanges: list[tuple[Any, ...]] = field(default_factory=list)
    traces: list[tuple[Any, ...]] = field(default_factory=list)
    verifications: list[tuple[Any, ...]] = field(default_factory=list)
    checkpoints: list[tuple[Any, ...]] = field(default_factory=list)
    drift_alerts: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    containments: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    nudges: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    def _see(self, agent: str, agent_hash: str, name: str | None, at: datetime) -> None:
        at = _utc(at)
        seen = self.agents.get(agent)
        if seen is None:
            self.agents[agent] = _Seen(agent_hash, name, at, at)
            return
        if seen.agent_hash != agent_hash:
            raise AgentIdCollisionError(agent)
        seen.first = min(seen.first, at)
        seen.last = max(seen.last, at)
        seen.name = seen.name or name

    def add_agent(self, event: AgentV1) -> None:
        """First sight: the agent row plus its default card (issued at first sight)."""
        if not event.agent_id or not event.agent_hash:
            raise InvalidRow("agent.v1 without agent_id or agent_hash")
        self._see(event.agent_id, event.agent_hash, event.name, event.seen_at)
        seen_at = _utc(event.seen_at)
        previous = self.cards.get(event.agent_id)
        if previous is None or seen_at < previous[4]:
            self.cards[event.agent_id] = (
                card_id(event.agent_id),
                event.agent_id,
                _json(default_card(event.agent_id, seen_at)),
                True,
                seen_at,
            )
        self.card_agents.add(event.agent_id)

    def add_verdict(self, event: VerdictV1) -> None:
        meta = event.meta
        try:
            exchange_id = uuid.UUID(meta.exchange_id)
        except ValueError:
            raise InvalidRow(f"exchange_id {meta.exchange_id[:64]!r} is not a UUID") from None
        if not meta.agent_id or not meta.agent_hash:
            raise InvalidRow("verdict.v1 meta without agent_id or agent_hash")
        # The verdict may overtake agent.v1 (another stream): create the agent from meta.
        self._see(meta.agent_id, meta.agent_hash, meta.agent_name, meta.completed_at)
        self.exchanges.append(
            (
                exchange_id,
                meta.agent_id,
                meta.session_id,
                meta.provider,
                meta.model,
                meta.method,
                meta.path,
                meta.status,
                meta.streamed,
                _utc(meta.started_at),
                _utc(meta.completed_at),
                meta.upstream_ms,
                meta.total_ms,
                meta.ttfb_ms,
                meta.usage.input_tokens,
                meta.usage.output_tokens,
                meta.gateway_instance,
            )
        )
        trace, verification = event.trace, event.verification
        if trace is not None:
            self.traces.append(
                (
                    trace.trace_id,
                    exchange_id,
                    trace.agent_id,
                    trace.card_id,
                    trace.context.session_id if trace.context else meta.session_id,
                    _utc(trace.timestamp),
                    _json(trace.action),
                    _json(trace.decision),
                    _json(trace.escalation),
                    _json(trace.context) if trace.context is not None else None,
                    verification.verified if verification is not None else None,
                    _json(trace),
                )
            )
            if verification is not None:
                self.verifications.append(
                    (
                        trace.trace_id,
                        trace.agent_id,
                        verification.card_id,
                        verification.verified,
                        verification.similarity_score,
                        _json(verification.violations),
                        _json(verification.warnings),
                        _json(verification.checks_performed),
                        verification.algorithm_version,
                    )
                )
        cp = event.checkpoint
        if cp is not None:
            self.checkpoints.append(
                (
                    cp.checkpoint_id,
                    exchange_id,
                    cp.agent_id,
                    cp.card_id,
                    cp.session_id,
                    _utc(cp.timestamp),
                    cp.thinking_block_hash,
                    cp.provider,
                    cp.model,
                    cp.verdict,
                    _json(cp.concerns),
                    cp.reasoning_summary,
                    _json(cp.conscience_context),
                    _json(cp.window_position),
                    _json(cp.analysis_metadata),
                    cp.linked_trace_id,
                    cp.synthetic,
                    cp.synthetic_reason,
                    cp.recommended_action,
                    cp.proceed,
                    cp.analyzer_verdict,
                )
            )

        for fact in event.facts:
            self._add_fact(fact, exchange_id)

    def _add_nudge(self, row: tuple[Any, ...]) -> None:
        self.nudges[row[0]] = _merge_nudge(self.nudges.get(row[0]), row)

    def _add_fact(self, fact: Fact, exchange_id: uuid.UUID) -> None:
        # Keyed by id: one batch may carry the same fact twice (a redelivery beside the first).
        if isinstance(fact, NudgeCreated):
            self._add_nudge(
                (
                    fact.nudge_id,
                    fact.agent_id,
                    fact.checkpoint_id,
                    _utc(fact.created_at),
                    fact.text,
                    "pending",
                    None,
                    None,
                )
            )
        elif isinstance(fact, NudgesDelivered):
            for nudge_id in fact.nudge_ids:
                self._add_nudge(
                    (
                        nudge_id,
                        fact.agent_id,
                        None,
                        None,
                        None,
                        "delivered",
                        _utc(fact.delivered_at),
                        fact.event_id,
                    )
                )
        elif isinstance(fact, DriftAlert):
            self.drift_alerts.setdefault(
                fact.alert_id,
                (
                    fact.alert_id,
                    fact.source,
                    fact.agent_id,
                    fact.card_id,
                    fact.session_id,
                    fact.alert_type,
                    fact.severity,
                    fact.description,
                    fact.streak_start,
                    _json(fact.streak_ids),
                    exchange_id,
                    _utc(fact.detected_at),
                    _json(fact.data),
                ),
            )
        else:
            self.containments.setdefault(
                fact.containment_id,
                (
                    fact.containment_id,
                    fact.agent_id,
                    fact.action,
                    fact.actor,
                    fact.reason,
                    fact.new_status,
                    fact.checkpoint_id,
                    exchange_id,
                    fact.streak_start,
                    fact.consecutive_violations,
                    fact.threshold,
                    _utc(fact.decided_at),
                ),
            )

    def agent_rows(self) -> list[tuple[Any, ...]]:
        return [(a, s.agent_hash, s.name, s.first, s.last) for a, s in self.agents.items()]


async def write_plan(conn: Conn, plan: WritePlan, *, copy_threshold: int) -> dict[str, int]:
    """Write every row of ``plan`` inside the caller's transaction; rows written per table.

    Order matters for foreign keys: agents before cards, traces before verifications.
    """
    await _refuse_id_collisions(conn, plan)
    steps: list[tuple[UpsertSpec, Iterable[tuple[Any, ...]]]] = [
        (AGENTS, plan.agent_rows()),
        (CARDS, plan.cards.values()),
        (EXCHANGES, plan.exchanges),
        (TRACES, plan.traces),
        (VERIFICATIONS, plan.verifications),
        (CHECKPOINTS, plan.checkpoints),
        (DRIFT_ALERTS, plan.drift_alerts.values()),
        (CONTAINMENT_LOG, plan.containments.values()),
        (NUDGES, plan.nudges.values()),
    ]
    written: dict[str, int] = {}
    for spec, rows in steps:
        batch = list(rows)
        if batch:
            written[spec.table] = await upsert(conn, spec, batch, copy_threshold=copy_threshold)
    return written


async def _refuse_id_collisions(conn: Conn, plan: WritePlan) -> None:
    if not plan.agents:
        return
    cur = await conn.execute(
        "SELECT id, agent_hash FROM agents WHERE id = ANY(%s)", [sorted(plan.agents)]
    )
    for agent, agent_hash in await cur.fetchall():
        if plan.agents[agent].agent_hash != agent_hash:
            raise AgentIdCollisionError(agent)


async def active_cards(conn: Conn, agents: Iterable[str]) -> dict[str, CardRecord]:
    """The record of each agent as the api would write ``card:{agent}``: its active card and
    the org layers that apply to it (``smoltbot_db.cards``, migration 0005)."""
    return await card_records(conn, agents)


async def seed_card_cache(
    redis: Redis, prefix: str, cards: Mapping[str, CardRecord]
) -> dict[str, bool]:
    """``SET NX`` each agent's card: the api owns the key once it exists, never overwrite it."""
    if not cards:
        return {}
    agents = sorted(cards)
    async with redis.pipeline(transaction=False) as pipe:
        for agent in agents:
            pipe.set(card_key(prefix, agent), msgspec.msgpack.encode(cards[agent]), nx=True)
        results = await pipe.execute()
    return {agent: bool(res) for agent, res in zip(agents, results, strict=True)}
