"""Shared pieces of the chaos suite: fast reclaim settings, row counts, dead letters."""

from __future__ import annotations

import psycopg
import redis

from tests.conftest import REDIS_URL

# Take over a dead consumer's entries within seconds instead of a minute.
FAST_RECLAIM = {
    "SMOLTBOT_BUS_MIN_IDLE_MS": "1500",
    "SMOLTBOT_BUS_CLAIM_INTERVAL_S": "0.3",
    "SMOLTBOT_BUS_BLOCK_MS": "200",
    "SMOLTBOT_ANALYZER_TIMEOUT_MS": "400",  # rules analysis is instant; keeps 3x under min-idle
}


def counts(database_url: str, agent: str) -> tuple[int, int, int]:
    """(exchanges, traces, checkpoints) rows of one agent."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            """SELECT (SELECT count(*) FROM exchanges WHERE agent_id = %(a)s),
                      (SELECT count(*) FROM traces WHERE agent_id = %(a)s),
                      (SELECT count(*) FROM integrity_checkpoints WHERE agent_id = %(a)s)""",
            {"a": agent},
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def dead_letters(prefix: str) -> int:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return sum(int(client.xlen(k)) for k in client.scan_iter(match=f"{prefix}dlq:*"))
    finally:
        client.close()
