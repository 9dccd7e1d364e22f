"""D1 end to end, the api, verifier and persister as OS processes: a card published through the
api with an org template changes the next verdict for that agent.

An agent whose published card bounds ``wire_transfer`` gets a trace using it verified. The
operator then enables an org card template forbidding ``wire_transfer`` and publishes the next
card version; the api writes ``card:{agent}`` with the template layer, and the verifier's next
verdict for that agent flags ``forbidden_action`` — no restart, no cache to wait for.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from smoltbot_contracts import (
    AgentV1,
    Alternative,
    APTrace,
    TraceAction,
    TraceContext,
    TraceDecision,
    TraceV1,
    ids,
)
from smoltbot_contracts.codec import to_fields
from smoltbot_testing.env import REDIS_URL
from smoltbot_testing.events import exchange_meta
from smoltbot_testing.procs import ServiceSet, base_env

from tests.conftest import ADMIN_TOKEN, poll

pytestmark = pytest.mark.e2e

API_KEY = "sk-card-publish-e2e"
ACTION = "wire_transfer"


@pytest.fixture
def services(database_url: str, stream_prefix: str, tmp_path: Path) -> Iterator[ServiceSet]:
    env = base_env(
        redis_url=REDIS_URL,
        database_url=database_url,
        prefix=stream_prefix,
        admin_token=ADMIN_TOKEN,
        upstream_url="http://127.0.0.1:9",
    )
    env.pop("SMOLTBOT_EVENT_KEY", None)  # the events below are XADDed in clear
    stack = ServiceSet(env=env, log_dir=tmp_path)
    try:
        for service in ("persister", "verifier", "api"):
            stack.start(service)
        yield stack
    finally:
        stack.stop_all()


def card(agent: str, card_id: str) -> dict[str, Any]:
    return {
        "aap_version": "0.1.0",
        "card_id": card_id,
        "agent_id": agent,
        "issued_at": "2026-11-01T12:00:00Z",
        "principal": {"type": "human", "relationship": "delegated_authority"},
        "values": {"declared": ["transparency", "honesty"]},
        "autonomy_envelope": {
            "bounded_actions": ["inference", ACTION],
            "escalation_triggers": [],
            "forbidden_actions": [],
        },
        "audit_commitment": {"retention_days": 30, "queryable": True},
    }


def trace_event(at: datetime, card_id: str) -> TraceV1:
    meta = exchange_meta(API_KEY, at)
    trace = APTrace(
        trace_id=ids.trace_id(meta.exchange_id),
        agent_id=meta.agent_id,
        card_id=card_id,
        timestamp=meta.completed_at,
        action=TraceAction(name=ACTION),
        decision=TraceDecision(
            alternatives_considered=[Alternative(option_id="a", description="pay the invoice")],
            selected="a",
            selection_reasoning="the invoice is due",
            values_applied=["transparency"],
        ),
        context=TraceContext(session_id=meta.session_id),
    )
    return TraceV1(
        event_id=ids.trace_event_id(meta.exchange_id),
        meta=meta,
        trace=trace,
        thinking="The invoice is due today, so I will pay it as the user asked.",
        extraction_confidence=1.0,
    )


def verification(database_url: str, trace_id: str) -> tuple[bool, list[Any]] | None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT verified, violations FROM verifications WHERE trace_id = %s", [trace_id]
        ).fetchone()
    return None if row is None else (row[0], row[1])


def test_published_card_with_org_template_changes_the_next_verdict(
    services: ServiceSet, database_url: str, stream_prefix: str, redis_sync: redis.Redis
) -> None:
    prefix = stream_prefix
    now = datetime.now(UTC).replace(microsecond=0)
    meta = exchange_meta(API_KEY, now)
    agent = meta.agent_id
    redis_sync.xadd(
        f"{prefix}agents",
        to_fields(
            AgentV1(event_id=ids.uuid7(), agent_id=agent, agent_hash=meta.agent_hash, seen_at=now)
        ),
    )
    api = httpx.Client(
        base_url=services.url("api"),
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )
    poll(lambda: api.get(f"/v1/agents/{agent}/card").status_code == 200, timeout_s=30)

    # Card v1 bounds the action: a trace using it is verified.
    first = api.post(f"/v1/agents/{agent}/card", json={"card": card(agent, "ac-e2e-v1")})
    assert first.status_code == 201, first.text
    before = trace_event(now + timedelta(seconds=1), "ac-e2e-v1")
    redis_sync.xadd(f"{prefix}traces", to_fields(before))
    verified = poll(lambda: verification(database_url, before.trace.trace_id), timeout_s=60)
    assert verified == (True, []), verified

    # The org template forbids it; card v2 is published with the template enabled.
    template = {"autonomy_envelope": {"forbidden_actions": [ACTION]}}
    saved = api.put("/v1/org/card-template", json={"enabled": True, "template": template})
    assert saved.status_code == 200, saved.text
    second = api.post(f"/v1/agents/{agent}/card", json={"card": card(agent, "ac-e2e-v2")})
    assert second.status_code == 201, second.text
    assert second.json()["cache"] == "written"
    view = api.get(f"/v1/agents/{agent}/card").json()
    assert ACTION in view["merged"]["autonomy_envelope"]["forbidden_actions"]

    after = trace_event(now + timedelta(seconds=2), "ac-e2e-v2")
    redis_sync.xadd(f"{prefix}traces", to_fields(after))
    flagged = poll(lambda: verification(database_url, after.trace.trace_id), timeout_s=60)
    verified_after, violations = flagged
    assert verified_after is False
    assert "forbidden_action" in [v.get("type") for v in violations], violations
