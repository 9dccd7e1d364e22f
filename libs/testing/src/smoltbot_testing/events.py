"""Small event factories for tests (valid events with fresh ids and fixed timestamps)."""

from __future__ import annotations

from datetime import UTC, datetime

from smoltbot_contracts import AgentV1, ExchangeMeta, ExchangeV1
from smoltbot_contracts.ids import uuid7

FIXED_TIME = datetime(2026, 1, 1, tzinfo=UTC)


def agent_event(n: int = 1) -> AgentV1:
    """An ``agent.v1`` for a synthetic agent number ``n``."""
    return AgentV1(
        event_id=uuid7(), agent_id=f"smolt-{n:08d}", agent_hash=f"{n:016d}", seen_at=FIXED_TIME
    )


def exchange_event(response_body: bytes = b"secret response bytes") -> ExchangeV1:
    """An ``exchange.v1`` of one Anthropic call carrying ``response_body``."""
    eid = uuid7()
    meta = ExchangeMeta(
        exchange_id=eid,
        agent_id="smolt-1",
        agent_hash="1" * 16,
        session_id="s",
        provider="anthropic",
        started_at=FIXED_TIME,
        completed_at=FIXED_TIME,
    )
    return ExchangeV1(event_id=eid, meta=meta, response_body=response_body)
