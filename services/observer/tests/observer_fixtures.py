"""Builders for observer tests: exchanges and Anthropic bodies as the gateway sees them.

A uniquely named module rather than conftest helpers, so services never collide on imports.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from smoltbot_contracts import ExchangeMeta, ExchangeV1, Usage

COMPLETED_AT = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
STARTED_AT = datetime(2026, 3, 1, 12, 0, 3, tzinfo=UTC)
AGENT = "smolt-0123abcd"


def sse(*events: dict[str, Any] | str) -> bytes:
    """An SSE body: dict events become ``event:``/``data:`` pairs, strings are raw lines."""
    out: list[str] = []
    for event in events:
        if isinstance(event, str):
            out.append(event)
            continue
        out.append(f"event: {event.get('type', 'message')}")
        out.append("data: " + msgspec.json.encode(event).decode())
        out.append("")
    return ("\n".join(out) + "\n").encode()


def anthropic_json(*blocks: dict[str, Any], **extra: Any) -> bytes:
    body: dict[str, Any] = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250514",
        "content": list(blocks),
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 42, "output_tokens": 17},
    }
    body.update(extra)
    return msgspec.json.encode(body)


def make_exchange(
    body: bytes = b"",
    *,
    exchange_id: str = "0194f0a0-0000-7000-8000-000000000001",
    status: int = 200,
    method: str = "POST",
    model: str | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    **fields: Any,
) -> ExchangeV1:
    meta = ExchangeMeta(
        exchange_id=exchange_id,
        agent_id=AGENT,
        agent_hash="0123abcd45678901",
        session_id="0123abcd45678901-493000",
        provider=fields.pop("provider", "anthropic"),
        model=model,
        method=method,
        path="/v1/messages",
        status=status,
        started_at=STARTED_AT,
        completed_at=COMPLETED_AT,
        upstream_ms=1800.4,
        total_ms=1812.6,
        usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
        gateway_instance="gw-1",
    )
    return ExchangeV1(event_id=exchange_id, meta=meta, response_body=body, **fields)
