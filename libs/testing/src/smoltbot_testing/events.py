"""Small event factories for tests (valid events with fresh ids and fixed timestamps)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from smoltbot_contracts import AgentV1, ExchangeMeta, ExchangeV1
from smoltbot_contracts.ids import agent_hash, agent_id, session_id, uuid7

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


def exchange_meta(
    api_key: str, at: datetime, *, exchange_id: str | None = None, **fields: Any
) -> ExchangeMeta:
    """The metadata of one ``POST /v1/messages`` to Anthropic (model ``claude-test``, status
    200) that the agent of ``api_key`` completed at ``at``.

    Agent and session ids are derived from the key and ``at`` as the gateway derives them; the
    exchange id, unless given, is a UUIDv7 of ``at``. ``fields`` set or override the rest.
    """
    h = agent_hash(api_key)
    values: dict[str, Any] = {
        "exchange_id": exchange_id or uuid7(int(at.timestamp() * 1000)),
        "agent_id": agent_id(h),
        "agent_hash": h,
        "session_id": session_id(h, at),
        "provider": "anthropic",
        "model": "claude-test",
        "path": "/v1/messages",
        "status": 200,
        "started_at": at,
        "completed_at": at,
    }
    return ExchangeMeta(**{**values, **fields})


def messages_exchange(
    meta: ExchangeMeta, response_body: bytes, user_query: str | None = None
) -> ExchangeV1:
    """The ``exchange.v1`` of the call ``meta`` describes (its event id is the exchange id),
    answered with the JSON ``response_body``."""
    return ExchangeV1(
        event_id=meta.exchange_id,
        meta=meta,
        user_query=user_query,
        response_body=response_body,
        content_type="application/json",
    )
