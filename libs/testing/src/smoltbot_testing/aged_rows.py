"""Rows of a given age in every table the retention job trims (exchanges, traces with their
verifications, integrity checkpoints, drift alerts, nudges), inserted straight into PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from uuid import uuid4

import psycopg
from psycopg.types.json import Jsonb

__all__ = ["RETAINED_TABLES", "seed_aged_rows", "table_counts"]

#: The tables ``smoltbot_db.run_retention`` trims, in its delete order.
RETAINED_TABLES = (
    "verifications",
    "traces",
    "exchanges",
    "integrity_checkpoints",
    "drift_alerts",
    "nudges",
)


def seed_aged_rows(conn: psycopg.Connection, n: int, at: datetime, agent: str = "ag-ret") -> None:
    """``n`` rows of one agent in each retained table, every event time ``at``; committed."""
    empty = Jsonb({})
    with conn.cursor() as cur:
        for _ in range(n):
            ex, tr, cp = str(uuid4()), f"tr-{uuid4().hex}", f"ic-{uuid4().hex}"
            cur.execute(
                "INSERT INTO exchanges (exchange_id, agent_id, session_id, provider, method, path,"
                " status, streamed, started_at, completed_at, upstream_ms, total_ms,"
                " gateway_instance) VALUES (%s, %s, 's', 'anthropic', 'POST', '/v1/messages',"
                " 200, false, %s, %s, 1, 1, 'gw')",
                (ex, agent, at, at),
            )
            cur.execute(
                "INSERT INTO traces (trace_id, exchange_id, agent_id, card_id, session_id,"
                ' "timestamp", action, decision, trace_json)'
                " VALUES (%s, %s, %s, 'card', 's', %s, %s, %s, %s)",
                (tr, ex, agent, at, empty, empty, empty),
            )
            cur.execute(
                "INSERT INTO verifications (trace_id, agent_id, card_id, verified,"
                " similarity_score, violations, warnings, checks_performed, algorithm_version)"
                " VALUES (%s, %s, 'card', true, 1, %s, %s, %s, 'v1')",
                (tr, agent, Jsonb([]), Jsonb([]), Jsonb([])),
            )
            cur.execute(
                "INSERT INTO integrity_checkpoints (checkpoint_id, exchange_id, agent_id, card_id,"
                ' session_id, "timestamp", thinking_block_hash, provider, model, verdict,'
                " concerns, reasoning_summary, conscience_context, window_position,"
                " analysis_metadata, recommended_action, proceed) VALUES (%s, %s, %s, 'card',"
                " 's', %s, 'h', 'anthropic', 'm', 'clear', %s, '', %s, %s, %s, 'continue', true)",
                (cp, ex, agent, at, Jsonb([]), empty, empty, empty),
            )
            cur.execute(
                "INSERT INTO drift_alerts (id, source, agent_id, card_id, alert_type, severity,"
                " description, streak_start, streak_ids, exchange_id, detected_at, drift_data)"
                " VALUES (%s, 'aip', %s, 'card', 't', 'low', '', %s, %s, %s, %s, %s)",
                (f"da-{uuid4().hex}", agent, cp, Jsonb([cp]), ex, at, empty),
            )
            cur.execute(
                "INSERT INTO nudges (id, agent_id, checkpoint_id, created_at, text)"
                " VALUES (%s, %s, %s, %s, 'a notice')",
                (f"nd-{uuid4().hex}", agent, cp, at),
            )
    conn.commit()


def table_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Rows in each retained table."""
    out: dict[str, int] = {}
    for table in RETAINED_TABLES:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608 - fixed names
        out[table] = int(row[0]) if row else 0
    conn.commit()
    return out
