"""Realistic events for the persister tests (ids derived the way the services derive them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from smoltbot_contracts import (
    AgentV1,
    APTrace,
    Checkpoint,
    Concern,
    ExchangeMeta,
    TraceAction,
    TraceContext,
    TraceDecision,
    Usage,
    VerdictV1,
    Verification,
    Violation,
)
from smoltbot_contracts.ids import (
    agent_hash,
    agent_id,
    card_id,
    checkpoint_id,
    trace_id,
    uuid7,
    verdict_event_id,
)
from smoltbot_testing.events import exchange_meta

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def agent_identity(key: str = "sk-test") -> tuple[str, str]:
    h = agent_hash(key)
    return agent_id(h), h


def meta(key: str = "sk-test", at: datetime = T0, exchange_id: str | None = None) -> ExchangeMeta:
    """A streamed call of 2 s through gateway ``gw-1``, with timings and token counts."""
    return exchange_meta(
        key,
        at,
        exchange_id=exchange_id,
        streamed=True,
        started_at=at - timedelta(seconds=2),
        upstream_ms=1900.0,
        total_ms=1950.5,
        ttfb_ms=300.0,
        usage=Usage(input_tokens=10, output_tokens=20),
        gateway_instance="gw-1",
    )


def verdict(m: ExchangeMeta, *, with_trace: bool = True, with_checkpoint: bool = True) -> VerdictV1:
    trace = verification = checkpoint = None
    card = card_id(m.agent_id)
    # The trace and the checkpoint are the agent's, under its card, at the exchange's end.
    owned: dict[str, Any] = {"agent_id": m.agent_id, "card_id": card, "timestamp": m.completed_at}
    if with_trace:
        trace = APTrace(
            trace_id=trace_id(m.exchange_id),
            **owned,
            action=TraceAction(name="inference", parameters={"k": [1, 2]}),
            decision=TraceDecision(
                alternatives_considered=[], selected="answer", selection_reasoning="only option"
            ),
            context=TraceContext(session_id=m.session_id),
        )
        verification = Verification(
            verified=False,
            card_id=card,
            similarity_score=0.42,
            violations=[Violation(type="forbidden", severity="high", description="x")],
            checks_performed=["autonomy"],
            algorithm_version="1.0",
        )
    if with_checkpoint:
        checkpoint = Checkpoint(
            checkpoint_id=checkpoint_id(m.exchange_id),
            **owned,
            session_id=m.session_id,
            thinking_block_hash="ab" * 32,
            provider=m.provider,
            model=m.model or "",
            verdict="review_needed",
            concerns=[Concern(category="deception", severity="medium", description="d")],
            linked_trace_id=trace_id(m.exchange_id) if with_trace else None,
            recommended_action="log_and_continue",
        )
    return VerdictV1(
        event_id=verdict_event_id(m.exchange_id),
        meta=m,
        trace=trace,
        verification=verification,
        checkpoint=checkpoint,
    )


def agent_event(key: str = "sk-test", at: datetime = T0, name: str | None = None) -> AgentV1:
    aid, h = agent_identity(key)
    return AgentV1(event_id=uuid7(), agent_id=aid, agent_hash=h, name=name, seen_at=at)
