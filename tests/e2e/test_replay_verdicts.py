"""Replaying the same 1,000 verdict events twice leaves exactly the rows of one pass: a real
persister process consumes 1,000 varied ``verdict.v1`` events (traces, checkpoints, drift
alerts, containments, nudges made and delivered, deliveries before creations), then the same
1,000 again; every table's row count and content checksum is unchanged by the second pass."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from smoltbot_contracts.codec import to_fields
from smoltbot_testing.env import REDIS_URL
from smoltbot_testing.procs import ServiceSet, base_env
from smoltbot_testing.verdicts import varied_verdicts

from tests.conftest import ADMIN_TOKEN, poll

pytestmark = pytest.mark.e2e

N = 1000


@pytest.fixture
def persister(database_url: str, stream_prefix: str, tmp_path: Path) -> Iterator[ServiceSet]:
    env = base_env(
        redis_url=REDIS_URL,
        database_url=database_url,
        prefix=stream_prefix,
        admin_token=ADMIN_TOKEN,
        upstream_url="http://127.0.0.1:9",
    )
    stack = ServiceSet(env=env, log_dir=tmp_path)
    try:
        stack.start("persister")
        yield stack
    finally:
        stack.stop_all()


def snapshot(database_url: str) -> dict[str, tuple[int, str | None]]:
    """Every table but the migration runner's: its row count and an md5 of all its rows."""
    with psycopg.connect(database_url) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
                " AND table_name <> 'schema_migrations' ORDER BY 1"
            ).fetchall()
        ]
        out: dict[str, tuple[int, str | None]] = {}
        for table in tables:
            row = conn.execute(
                f"SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t"  # noqa: S608 - names from the catalogue
            ).fetchone()
            assert row is not None
            out[table] = (row[0], row[1])
    return out


def consumed(r: redis.Redis, stream: str) -> bool:
    group = r.xinfo_groups(stream)[0]
    return group["pending"] == 0 and group["lag"] == 0


def test_replaying_1000_verdicts_twice_leaves_the_rows_of_one_pass(
    persister: ServiceSet, database_url: str, stream_prefix: str, redis_sync: redis.Redis
) -> None:
    started = time.monotonic()
    events = varied_verdicts(N)
    fields = [to_fields(e) for e in events]
    stream = f"{stream_prefix}verdicts"

    def xadd_all() -> None:
        pipe = redis_sync.pipeline(transaction=False)
        for f in fields:
            pipe.xadd(stream, f)
        pipe.execute()

    xadd_all()
    poll(lambda: redis_sync.xlen(stream) == N and consumed(redis_sync, stream), timeout_s=30)
    first = snapshot(database_url)
    # One pass wrote rows everywhere the events reach (the api's own tables stay empty).
    expected = {
        "exchanges": N,
        "traces": sum(e.trace is not None for e in events),
        "verifications": sum(e.verification is not None for e in events),
        "integrity_checkpoints": sum(e.checkpoint is not None for e in events),
        "drift_alerts": sum(type(f).__name__ == "DriftAlert" for e in events for f in e.facts),
        "agent_containment_log": sum(
            type(f).__name__ == "Containment" for e in events for f in e.facts
        ),
        "nudges": sum(type(f).__name__ == "NudgeCreated" for e in events for f in e.facts),
        "agents": len({e.meta.agent_id for e in events}),
    }
    assert {t: first[t][0] for t in expected} == expected
    with psycopg.connect(database_url) as conn:
        statuses = dict(
            conn.execute("SELECT status, count(*) FROM nudges GROUP BY status").fetchall()
        )
        incomplete = conn.execute("SELECT count(*) FROM nudges WHERE text IS NULL").fetchone()
    assert statuses.get("delivered", 0) > 50
    assert statuses.get("pending", 0) > 0
    assert incomplete == (0,)  # deliveries that came first were completed by their creation

    xadd_all()
    poll(lambda: redis_sync.xlen(stream) == 2 * N and consumed(redis_sync, stream), timeout_s=30)
    assert snapshot(database_url) == first
    assert not list(redis_sync.scan_iter(match=f"{stream_prefix}dlq:*"))
    assert time.monotonic() - started < 60
