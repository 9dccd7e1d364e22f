"""SQL of the owner's read endpoints: every agent's traces, drift alerts, integrity scores, the
unified timeline and usage per model (docs/api.md, "Reading data").

Like :mod:`smoltbot_api.repository`, a list answer reads its page and its total in one
read-only snapshot, newest first with the id as tie-breaker (stable limit/offset pages), and an
agent is 404 only when it is unknown *and* has no rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
from psycopg import AsyncConnection, sql

from smoltbot_api.errors import NotFoundError
from smoltbot_api.repository import (
    _TRACES,
    Repository,
    _fetch_all,
    _fetch_page,
    _Listing,
    _where,
)
from smoltbot_api.schemas import TraceList
from smoltbot_api.schemas_reads import (
    AapIntegrity,
    AgentIntegrity,
    AipIntegrity,
    DriftAlertList,
    TimelineEvent,
    TimelineKind,
    TimelinePage,
    Usage,
)

__all__ = ["TIMELINE_KINDS", "Condition", "ReadRepository", "aware", "time_range"]

Condition = tuple[str, object]

_DRIFT_ALERTS = _Listing(
    sql.SQL(
        "SELECT id, source, agent_id, card_id, session_id, alert_type, severity, description,"
        " streak_start, streak_ids, exchange_id, detected_at, drift_data, created_at"
        " FROM drift_alerts"
    ),
    sql.SQL("detected_at DESC, id DESC"),
    "drift_alerts",
    DriftAlertList,
    "alerts",
)


def time_range(column: str, since: datetime | None, until: datetime | None) -> list[Condition]:
    """``column >= since AND column < until`` (either may be absent; a naive time is UTC)."""
    conditions: list[Condition] = []
    if since is not None:
        conditions.append((f"{column} >=", aware(since)))
    if until is not None:
        conditions.append((f"{column} <", aware(until)))
    return conditions


def aware(moment: datetime) -> datetime:
    """``moment`` with UTC as its zone when it has none."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# One branch per timeline kind: (kind, id, time, session, data) over the agent's rows in the
# range, each branch cut at offset + limit rows so the merge never sorts an agent's whole past.
_TIMELINE_BRANCHES: dict[TimelineKind, tuple[str, str, str]] = {
    "trace": (
        "traces",
        '"timestamp"',
        """SELECT 'trace' AS kind, trace_id AS id, "timestamp" AS ts, session_id,
               jsonb_build_object('action', action, 'verified', verified,
                                  'card_id', card_id, 'exchange_id', exchange_id) AS data
           FROM traces""",
    ),
    "checkpoint": (
        "integrity_checkpoints",
        '"timestamp"',
        """SELECT 'checkpoint' AS kind, checkpoint_id AS id, "timestamp" AS ts, session_id,
               jsonb_build_object('verdict', verdict, 'synthetic', synthetic,
                                  'recommended_action', recommended_action, 'proceed', proceed,
                                  'concerns', jsonb_array_length(concerns),
                                  'reasoning_summary', reasoning_summary,
                                  'linked_trace_id', linked_trace_id, 'model', model) AS data
           FROM integrity_checkpoints""",
    ),
    "drift_alert": (
        "drift_alerts",
        "detected_at",
        """SELECT 'drift_alert' AS kind, id, detected_at AS ts, session_id,
               jsonb_build_object('source', source, 'severity', severity,
                                  'alert_type', alert_type, 'description', description,
                                  'streak_start', streak_start) AS data
           FROM drift_alerts""",
    ),
    "containment": (
        "agent_containment_log",
        "decided_at",
        """SELECT 'containment' AS kind, id, decided_at AS ts, NULL::text AS session_id,
               jsonb_build_object('action', action, 'actor', actor, 'reason', reason,
                                  'new_status', new_status,
                                  'checkpoint_id', checkpoint_id) AS data
           FROM agent_containment_log""",
    ),
}
TIMELINE_KINDS: tuple[TimelineKind, ...] = tuple(_TIMELINE_BRANCHES)


def _summary(kind: str, data: dict[str, Any]) -> str:
    """One readable line per event (what ``smoltbot logs`` prints)."""
    if kind == "trace":
        action = data.get("action") or {}
        verified = data.get("verified")
        state = "pending" if verified is None else ("verified" if verified else "violation")
        return f"{action.get('type', '?')} {action.get('name', '?')} ({state})"
    if kind == "checkpoint":
        synthetic = " synthetic" if data.get("synthetic") else ""
        return f"{data.get('verdict')}{synthetic}, {data.get('concerns', 0)} concern(s)"
    if kind == "drift_alert":
        return f"{data.get('source')} drift ({data.get('severity')}): {data.get('description')}"
    return (
        f"{data.get('action')} -> {data.get('new_status')} by {data.get('actor')}:"
        f" {data.get('reason')}"
    )


async def _read_only_snapshot(conn: AsyncConnection) -> None:
    await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")


class ReadRepository:
    """The owner's read queries, over the same pool as :class:`Repository`."""

    def __init__(self, repo: Repository) -> None:
        self._repo = repo

    async def _missing(self, conn: AsyncConnection, agent_id: str) -> bool:
        rows = await _fetch_all(
            conn, sql.SQL("SELECT 1 AS one FROM agents WHERE id = %s"), [agent_id]
        )
        return not rows

    async def list_traces(
        self, conditions: Sequence[Condition], limit: int, offset: int
    ) -> TraceList:
        """Every agent's traces (optionally one agent's): an empty page, never a 404."""
        async with self._repo.database.connection() as conn:
            return await _fetch_page(conn, _TRACES, conditions, limit, offset)

    async def list_drift_alerts(
        self, agent_id: str, conditions: Sequence[Condition], limit: int, offset: int
    ) -> DriftAlertList:
        async with self._repo.database.connection() as conn:
            page = await _fetch_page(
                conn, _DRIFT_ALERTS, [("agent_id", agent_id), *conditions], limit, offset
            )
            if page.total == 0 and await self._missing(conn, agent_id):
                raise NotFoundError(f"agent {agent_id!r} not found")
        return page

    async def integrity(self, agent_id: str) -> AgentIntegrity:
        aap_query = sql.SQL(
            """SELECT count(*) AS total_traces,
                      count(v.trace_id) AS checked_traces,
                      count(*) FILTER (WHERE v.verified) AS verified_traces
               FROM traces t LEFT JOIN verifications v ON v.trace_id = t.trace_id
               WHERE t.agent_id = %s"""
        )
        aip_query = sql.SQL(
            """SELECT count(*) AS total_checks,
                      count(*) FILTER (WHERE NOT synthetic) AS analyzed_checks,
                      count(*) FILTER (WHERE NOT synthetic AND verdict = 'clear') AS clear_count,
                      count(*) FILTER (WHERE NOT synthetic AND verdict = 'review_needed')
                          AS review_count,
                      count(*) FILTER (WHERE NOT synthetic AND verdict = 'boundary_violation')
                          AS violation_count
               FROM integrity_checkpoints WHERE agent_id = %s"""
        )
        latest_query = sql.SQL(
            """SELECT verdict, "timestamp" FROM integrity_checkpoints WHERE agent_id = %s
               ORDER BY "timestamp" DESC, checkpoint_id DESC LIMIT 1"""
        )
        async with self._repo.database.connection() as conn, conn.transaction():
            await _read_only_snapshot(conn)
            aap = (await _fetch_all(conn, aap_query, [agent_id]))[0]
            aip = (await _fetch_all(conn, aip_query, [agent_id]))[0]
            latest = await _fetch_all(conn, latest_query, [agent_id])
            nothing = aap["total_traces"] == 0 and aip["total_checks"] == 0
            if nothing and await self._missing(conn, agent_id):
                raise NotFoundError(f"agent {agent_id!r} not found")
        checked, verified = int(aap["checked_traces"]), int(aap["verified_traces"])
        total, analyzed = int(aip["total_checks"]), int(aip["analyzed_checks"])
        return AgentIntegrity(
            agent_id=agent_id,
            aap=AapIntegrity(
                agent_id=agent_id,
                total_traces=int(aap["total_traces"]),
                checked_traces=checked,
                verified_traces=verified,
                violation_count=checked - verified,
                integrity_score=verified / checked if checked else None,
            ),
            aip=AipIntegrity(
                agent_id=agent_id,
                total_checks=total,
                analyzed_checks=analyzed,
                synthetic_checks=total - analyzed,
                clear_count=int(aip["clear_count"]),
                review_count=int(aip["review_count"]),
                violation_count=int(aip["violation_count"]),
                integrity_ratio=int(aip["clear_count"]) / analyzed if analyzed else None,
                coverage=analyzed / total if total else None,
                latest_verdict=latest[0]["verdict"] if latest else None,
                latest_checkpoint_at=latest[0]["timestamp"] if latest else None,
            ),
        )

    async def timeline(
        self,
        agent_id: str,
        *,
        kinds: Sequence[TimelineKind],
        since: datetime | None,
        until: datetime | None,
        limit: int,
        offset: int,
    ) -> TimelinePage:
        branches: list[sql.Composable] = []
        counts: list[sql.Composable] = []
        params: list[object] = []
        count_params: list[object] = []
        for kind in kinds:
            table, column, select = _TIMELINE_BRANCHES[kind]
            conditions = [("agent_id", agent_id), *time_range(column, since, until)]
            where, values = _where(conditions)
            branches.append(
                sql.SQL("({select}{where} ORDER BY ts DESC, id DESC LIMIT %s)").format(
                    select=sql.SQL(select), where=where
                )
            )
            params += [*values, offset + limit]
            counts.append(
                sql.SQL("(SELECT count(*) FROM {table}{where})").format(
                    table=sql.Identifier(table), where=where
                )
            )
            count_params += values
        query = sql.SQL(
            "SELECT * FROM ({union}) AS e ORDER BY ts DESC, kind, id DESC LIMIT %s OFFSET %s"
        ).format(union=sql.SQL(" UNION ALL ").join(branches))
        count = sql.SQL("SELECT {sum} AS n").format(sum=sql.SQL(" + ").join(counts))
        async with self._repo.database.connection() as conn, conn.transaction():
            await _read_only_snapshot(conn)
            rows = await _fetch_all(conn, query, [*params, limit, offset]) if branches else []
            total = int((await _fetch_all(conn, count, count_params))[0]["n"]) if counts else 0
            if total == 0 and await self._missing(conn, agent_id):
                raise NotFoundError(f"agent {agent_id!r} not found")
        events = [
            TimelineEvent(
                kind=row["kind"],
                id=row["id"],
                timestamp=row["ts"],
                session_id=row["session_id"],
                summary=_summary(row["kind"], row["data"]),
                data=row["data"],
            )
            for row in rows
        ]
        return TimelinePage(
            agent_id=agent_id, events=events, total=total, limit=limit, offset=offset
        )

    async def usage(self, agent_id: str, since: datetime | None, until: datetime | None) -> Usage:
        conditions = [("agent_id", agent_id), *time_range("completed_at", since, until)]
        where, values = _where(conditions)
        query = sql.SQL(
            """SELECT provider, model, count(*) AS exchanges,
                      coalesce(sum(input_tokens), 0)::bigint AS input_tokens,
                      coalesce(sum(output_tokens), 0)::bigint AS output_tokens,
                      count(*) FILTER (WHERE status >= 400) AS errors,
                      min(completed_at) AS first_at, max(completed_at) AS last_at
               FROM exchanges{where}
               GROUP BY provider, model
               ORDER BY exchanges DESC, provider, model NULLS LAST"""
        ).format(where=where)
        async with self._repo.database.connection() as conn:
            rows = await _fetch_all(conn, query, values)
            if not rows and await self._missing(conn, agent_id):
                raise NotFoundError(f"agent {agent_id!r} not found")
        usage: dict[str, Any] = {
            "agent_id": agent_id,
            "since": since,
            "until": until,
            "exchanges": sum(int(r["exchanges"]) for r in rows),
            "input_tokens": sum(int(r["input_tokens"]) for r in rows),
            "output_tokens": sum(int(r["output_tokens"]) for r in rows),
            "models": rows,
        }
        return msgspec.convert(usage, Usage)
