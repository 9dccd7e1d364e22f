"""Builders shared by the verifier tests (unique module name: test dirs are not packages)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from smoltbot_contracts import (
    Alternative,
    APTrace,
    CardRecord,
    ExchangeMeta,
    TraceAction,
    TraceContext,
    TraceDecision,
    TraceEscalation,
    TraceV1,
    ids,
)

AGENT = "smolt-abcd1234"
AGENT_HASH = "abcd1234abcd1234"
COMPLETED = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
LONG_THINKING = (
    "The user wants the failing config test fixed. Let me read the config loader, find why "
    "the timeout is parsed as a string, and write a small patch with a unit test."
)


def meta(exchange_id: str = "0190f0e0-0000-7000-8000-000000000001", **kw: Any) -> ExchangeMeta:
    fields: dict[str, Any] = {
        "exchange_id": exchange_id,
        "agent_id": AGENT,
        "agent_hash": AGENT_HASH,
        "session_id": f"{AGENT_HASH}-493000",
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "status": 200,
        "started_at": datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC),
        "completed_at": COMPLETED,
    }
    fields.update(kw)
    return ExchangeMeta(**fields)


def ap_trace(
    exchange_id: str = "0190f0e0-0000-7000-8000-000000000001",
    *,
    card_id: str = "ac-abcd1234",
    name: str = "inference",
    category: str = "bounded",
    action_type: str = "execute",
    values: Iterable[str] = ("helpfulness",),
    confidence: float | None = 0.9,
    selected: str = "answer",
    alternatives: Iterable[Alternative] | None = None,
    parameters: dict[str, Any] | None = None,
    required: bool = False,
) -> APTrace:
    return APTrace(
        trace_id=ids.trace_id(exchange_id),
        agent_id=AGENT,
        card_id=card_id,
        timestamp=COMPLETED,
        action=TraceAction(
            type=action_type,  # type: ignore[arg-type]
            name=name,
            category=category,  # type: ignore[arg-type]
            parameters=parameters or {},
        ),
        decision=TraceDecision(
            alternatives_considered=list(
                alternatives or [Alternative(option_id="answer", description="Answer directly")]
            ),
            selected=selected,
            selection_reasoning="Direct answer fits the request.",
            values_applied=list(values),
            confidence=confidence,
        ),
        escalation=TraceEscalation(required=required),
        context=TraceContext(session_id=f"{AGENT_HASH}-493000"),
    )


def trace_event(
    exchange_id: str = "0190f0e0-0000-7000-8000-000000000001",
    *,
    thinking: str | None = LONG_THINKING,
    trace: APTrace | None | bool = True,
    reply_to: str | None = None,
    **meta_kw: Any,
) -> TraceV1:
    built = ap_trace(exchange_id) if trace is True else (None if trace is False else trace)
    return TraceV1(
        event_id=ids.trace_event_id(exchange_id),
        meta=meta(exchange_id, **meta_kw),
        trace=built,  # type: ignore[arg-type]
        thinking=thinking,
        extraction_confidence=1.0 if thinking else 0.0,
        reply_to=reply_to,
    )


def card(**envelope: Any) -> dict[str, Any]:
    return {
        "aap_version": "0.1.0",
        "card_id": "ac-abcd1234",
        "agent_id": AGENT,
        "issued_at": "2026-01-01T00:00:00Z",
        "principal": {"type": "human", "relationship": "delegated_authority"},
        "values": {"declared": ["helpfulness", "transparency"]},
        "autonomy_envelope": {
            "bounded_actions": ["inference"],
            "escalation_triggers": [],
            "forbidden_actions": [],
            **envelope,
        },
        "audit_commitment": {"retention_days": 365, "queryable": True},
    }


class DictCards:
    """In-memory card source for handler tests."""

    def __init__(self, records: dict[str, CardRecord] | None = None) -> None:
        self.records = records or {}
        self.calls: list[list[str]] = []

    async def fetch(self, agents: Iterable[str]) -> dict[str, tuple[CardRecord | None, str]]:
        names = sorted(set(agents))
        self.calls.append(names)
        return {a: (self.records.get(a), "" if a in self.records else "missing") for a in names}
