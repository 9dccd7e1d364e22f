"""The operator CLI against a real persister process: a replay writes no duplicate rows, and dead
letters re-driven after the cause is fixed land as rows.

The persister runs as its own OS process (``python -m smoltbot_persister``) on the shared Redis
under a private prefix and a private migrated database; every ``smoltbot`` command runs as its
own process too, talking to Redis directly, as an operator would run it with the api down.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from smoltbot_contracts.codec import to_fields
from smoltbot_contracts.ids import agent_hash, agent_id
from smoltbot_testing.env import REDIS_URL
from smoltbot_testing.procs import ServiceSet, base_env

from services.persister.tests.persister_factories import T0, meta, verdict
from tests.conftest import ADMIN_TOKEN, poll

pytestmark = pytest.mark.e2e

TABLES = (
    "agents",
    "alignment_cards",
    "exchanges",
    "traces",
    "verifications",
    "integrity_checkpoints",
)


@pytest.fixture
def persister(database_url: str, stream_prefix: str, tmp_path: Path) -> Iterator[ServiceSet]:
    """The persister as a process; its reaper passes every 0.5 s (a replay's put-back entries
    are taken over on the next pass)."""
    env = base_env(
        redis_url=REDIS_URL,
        database_url=database_url,
        prefix=stream_prefix,
        admin_token=ADMIN_TOKEN,
        upstream_url="http://127.0.0.1:9",
    )
    env.update(SMOLTBOT_PERSISTER_HOST="127.0.0.1", SMOLTBOT_BUS_CLAIM_INTERVAL_S="0.5")
    services = ServiceSet(env=env, log_dir=tmp_path)
    try:
        services.start("persister")
        yield services
    finally:
        services.stop_all()


def smoltbot(prefix: str, *args: str) -> Any:
    """``smoltbot ARGS`` as its own process; its parsed ``--json`` output (else its stdout)."""
    env = {**os.environ, "REDIS_URL": REDIS_URL, "SMOLTBOT_STREAM_PREFIX": prefix}
    env.pop("DATABASE_URL", None)  # the bus commands need Redis only
    done = subprocess.run(
        [sys.executable, "-m", "smoltbot_cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"smoltbot {' '.join(args)}: {done.stderr}"
    return json.loads(done.stdout) if "--json" in args else done.stdout


def publish_verdicts(client: redis.Redis, prefix: str, keys: list[str]) -> list[str]:
    """One verdict.v1 per agent key in ``keys`` (each its own exchange), in one pipeline."""
    pipe = client.pipeline(transaction=False)
    for i, key in enumerate(keys):
        event = verdict(meta(key, T0 + timedelta(seconds=i)))
        pipe.xadd(f"{prefix}verdicts", to_fields(event))  # type: ignore[arg-type]
    return [entry_id.decode() for entry_id in pipe.execute()]


def caught_up(client: redis.Redis, prefix: str) -> bool:
    """The persister group has read everything on ``verdicts`` and acked it (lag 0, pending 0)."""
    rows: Any = client.xinfo_groups(f"{prefix}verdicts")
    group = next((r for r in rows if r["name"] == b"persister"), None)
    return group is not None and group["lag"] == 0 and group["pending"] == 0


def row_counts(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
            for table in TABLES
        }


def counter(services: ServiceSet, sample: str) -> float:
    """A sample of the persister's /metrics (0 when it has none yet)."""
    text = httpx.get(f"{services.url('persister')}/metrics", timeout=10).text
    found = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    return float(found[1]) if found else 0.0


def handled(services: ServiceSet) -> float:
    """verdict.v1 events the persister committed (replayed ones included)."""
    return counter(services, 'smoltbot_persister_events_total{type="verdict.v1"}')


def written(services: ServiceSet, table: str) -> float:
    """Rows the persister inserted into ``table`` (a replayed upsert inserts none)."""
    return counter(services, f'smoltbot_persister_rows_written_total{{table="{table}"}}')


def test_replaying_1000_verdicts_to_the_persister_writes_no_duplicate_rows(
    persister: ServiceSet, database_url: str, stream_prefix: str, redis_sync: redis.Redis
) -> None:
    prefix = stream_prefix
    ids = publish_verdicts(redis_sync, prefix, [f"sk-replay-{i % 7}" for i in range(1000)])
    poll(lambda: caught_up(redis_sync, prefix), timeout_s=30)
    rows = row_counts(database_url)
    assert (rows["exchanges"], rows["traces"], rows["integrity_checkpoints"]) == (1000,) * 3
    assert rows["agents"] == 7
    assert handled(persister) == 1000

    # The whole stream again: the group is rewound (the range reaches its position).
    replay = ["replay", "verdicts", "--group", "persister", "--json"]
    dry = smoltbot(prefix, *replay, "--from", "0", "--dry-run")
    assert (dry["method"], dry["redeliver"], dry["undelivered"]) == ("rewind", 1000, 0)
    done = smoltbot(prefix, *replay, "--from", ids[0])
    assert (done["method"], done["replayed"], done["live"]) == ("rewind", 1000, True)
    poll(lambda: caught_up(redis_sync, prefix), timeout_s=30)
    poll(lambda: handled(persister) == 2000, timeout_s=10)
    assert row_counts(database_url) == rows  # handled twice, written once
    assert written(persister, "exchanges") == 1000  # the replayed upserts wrote nothing

    # A bounded range in the past: back into the group's pending list, taken over by its reaper.
    bounded = smoltbot(prefix, *replay, "--from", ids[100], "--to", ids[299])
    assert (bounded["method"], bounded["replayed"]) == ("pending", 200)
    poll(lambda: handled(persister) == 2200, timeout_s=20)
    poll(lambda: caught_up(redis_sync, prefix), timeout_s=10)
    assert row_counts(database_url) == rows

    status = smoltbot(prefix, "streams", "verdicts", "--json")["streams"][0]
    group = next(g for g in status["groups"] if g["group"] == "persister")
    assert (group["live"], group["lag"], group["pending"]) == (True, 0, 0)
    assert (status["length"], status["dlq_length"]) == (1000, 0)


def test_dead_letters_redriven_after_the_fix_land_as_rows(
    persister: ServiceSet, database_url: str, stream_prefix: str, redis_sync: redis.Redis
) -> None:
    prefix = stream_prefix
    # Another key hash already holds this agent id: the persister refuses the collision.
    colliding = agent_id(agent_hash("sk-collide"))
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO agents (id, agent_hash, first_seen_at, last_seen_at) "
            "VALUES (%s, %s, %s, %s)",
            (colliding, "0" * 64, T0, T0),
        )
    publish_verdicts(redis_sync, prefix, ["sk-collide"] * 20 + ["sk-fine"] * 5)
    poll(lambda: redis_sync.xlen(f"{prefix}dlq:verdicts") == 20, timeout_s=30)
    poll(lambda: caught_up(redis_sync, prefix), timeout_s=10)
    assert row_counts(database_url)["exchanges"] == 5

    letters = smoltbot(prefix, "dlq", "list", "--stream", "verdicts", "--limit", "100", "--json")
    assert len(letters) == 20
    assert all("collision" in letter["reason"] for letter in letters)
    assert {letter["group"] for letter in letters} == {"persister"}

    with psycopg.connect(database_url) as conn:  # the fix: drop the impostor's row
        conn.execute("DELETE FROM agents WHERE id = %s", (colliding,))
    redrive = smoltbot(prefix, "dlq", "redrive", "verdicts", "--all", "--json")
    assert redrive["count"] == 20

    poll(lambda: row_counts(database_url)["exchanges"] == 25, timeout_s=30)
    poll(lambda: caught_up(redis_sync, prefix), timeout_s=10)
    assert redis_sync.xlen(f"{prefix}dlq:verdicts") == 0
    with psycopg.connect(database_url) as conn:
        owner = conn.execute("SELECT agent_hash FROM agents WHERE id = %s", (colliding,))
        assert owner.fetchone() == (agent_hash("sk-collide"),)
        rows = conn.execute("SELECT count(*) FROM exchanges WHERE agent_id = %s", (colliding,))
        assert rows.fetchone() == (20,)
