"""A1: the same exchange.v1 delivered three times yields one exchange, one trace and one
checkpoint row — through the real observer, verifier and persister processes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import redis
from smoltbot_contracts import AgentV1
from smoltbot_contracts.codec import to_fields
from smoltbot_contracts.ids import checkpoint_id, uuid7
from smoltbot_testing.env import REDIS_URL
from smoltbot_testing.events import exchange_meta, messages_exchange
from smoltbot_testing.procs import ServiceSet, base_env

from tests.conftest import ADMIN_TOKEN, poll

pytestmark = pytest.mark.e2e


@pytest.fixture
def workers(database_url: str, stream_prefix: str, tmp_path: Path) -> Iterator[ServiceSet]:
    env = base_env(
        redis_url=REDIS_URL,
        database_url=database_url,
        prefix=stream_prefix,
        admin_token=ADMIN_TOKEN,
        upstream_url="http://127.0.0.1:9",
    )
    stack = ServiceSet(env=env, log_dir=tmp_path)
    try:
        for service in ("persister", "verifier", "observer"):
            stack.start(service)
        yield stack
    finally:
        stack.stop_all()


def anthropic_body() -> bytes:
    return json.dumps(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-test",
            "content": [
                {
                    "type": "thinking",
                    "thinking": "The user wants a summary. " * 20,
                    "signature": "s",
                },
                {"type": "text", "text": "Here is the summary."},
            ],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 12, "output_tokens": 40},
        }
    ).encode()


def test_three_deliveries_of_one_exchange_make_one_row_each(
    workers: ServiceSet, database_url: str, stream_prefix: str, redis_sync: redis.Redis
) -> None:
    now = datetime.now(UTC)
    meta = exchange_meta("sk-idempotent", now)
    eid = meta.exchange_id
    exchange = messages_exchange(meta, anthropic_body(), user_query="Summarise this")
    agent = AgentV1(
        event_id=uuid7(), agent_id=meta.agent_id, agent_hash=meta.agent_hash, seen_at=now
    )
    redis_sync.xadd(f"{stream_prefix}agents", to_fields(agent))
    for _ in range(3):
        redis_sync.xadd(f"{stream_prefix}exchanges", to_fields(exchange))

    # All three deliveries made it through every stage...
    poll(lambda: redis_sync.xlen(f"{stream_prefix}verdicts") == 3, timeout_s=60)
    poll(
        lambda: (
            redis_sync.xpending(f"{stream_prefix}verdicts", "persister")["pending"] == 0
            and redis_sync.xinfo_groups(f"{stream_prefix}verdicts")[0]["lag"] == 0
        ),
        timeout_s=60,
    )
    # ...and left exactly one row of each.
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            """SELECT (SELECT count(*) FROM exchanges WHERE exchange_id = %(e)s),
                      (SELECT count(*) FROM traces WHERE exchange_id = %(e)s),
                      (SELECT count(*) FROM integrity_checkpoints WHERE exchange_id = %(e)s),
                      (SELECT checkpoint_id FROM integrity_checkpoints WHERE exchange_id = %(e)s),
                      (SELECT "timestamp" FROM integrity_checkpoints WHERE exchange_id = %(e)s)""",
            {"e": eid},
        ).fetchone()
    assert row is not None
    assert row[:3] == (1, 1, 1)
    assert row[3] == checkpoint_id(eid)  # derived from the event id, not random
    assert row[4] == now  # the exchange's completion time, not "now" at the verifier
    assert sum(redis_sync.xlen(k) for k in redis_sync.scan_iter(match=f"{stream_prefix}dlq:*")) == 0
