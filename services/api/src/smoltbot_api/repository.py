"""SQL for the read endpoints; rows come back shaped like the response Structs.

Each list query returns its page and the filtered total in one statement (``count(*) OVER ()``),
so page and total come from the same snapshot. Order is newest first with the id as tie-breaker,
which keeps limit/offset pages stable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import msgspec
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from smoltbot_api.db import Database
from smoltbot_api.errors import NotFoundError
from smoltbot_api.schemas import Agent, Checkpoint, Exchange, Trace

__all__ = ["Repository"]

S = TypeVar("S", bound=msgspec.Struct)
Query = sql.SQL | sql.Composed

_AGENT_COLUMNS = sql.SQL(
    "id, agent_hash, name, first_seen_at, last_seen_at, enforcement_mode, containment_status,"
    " nudge_strategy, auto_containment_threshold, cfg_version, created_at"
)

_TRACE_SELECT = sql.SQL(
    """
    SELECT t.trace_id, t.exchange_id, t.agent_id, t.card_id, t.session_id, t."timestamp",
           t.action, t.decision, t.escalation, t.context, t.created_at,
           CASE WHEN v.trace_id IS NULL THEN NULL ELSE jsonb_build_object(
               'verified', v.verified,
               'similarity_score', v.similarity_score,
               'violations', v.violations,
               'warnings', v.warnings) END AS verification
    FROM traces t LEFT JOIN verifications v ON v.trace_id = t.trace_id
    """
)

_CHECKPOINT_COLUMNS = sql.SQL(
    """checkpoint_id, exchange_id, agent_id, card_id, session_id, "timestamp",
    thinking_block_hash, provider, model, verdict, concerns, reasoning_summary,
    conscience_context, window_position, analysis_metadata, linked_trace_id, synthetic,
    synthetic_reason, recommended_action, proceed, analyzer_verdict, input_commitment,
    chain_hash, prev_chain_hash, merkle_leaf_index, issuer_signature, signing_key_id,
    certificate_id, created_at"""
)

_EXCHANGE_COLUMNS = sql.SQL(
    """exchange_id, agent_id, session_id, provider, model, method, path, status, streamed,
    started_at, completed_at, upstream_ms, total_ms, ttfb_ms, input_tokens, output_tokens,
    gateway_instance, created_at"""
)

_AGENT_SELECT = sql.SQL("SELECT {cols} FROM agents").format(cols=_AGENT_COLUMNS)
_CHECKPOINT_SELECT = sql.SQL("SELECT {cols} FROM integrity_checkpoints").format(
    cols=_CHECKPOINT_COLUMNS
)
_EXCHANGE_SELECT = sql.SQL("SELECT {cols} FROM exchanges").format(cols=_EXCHANGE_COLUMNS)


def _where(conditions: Sequence[tuple[str, object]]) -> tuple[Query, list[object]]:
    """``WHERE a = %s AND b = %s`` over fixed, trusted column names, with the values apart."""
    if not conditions:
        return sql.SQL(""), []
    parts = [sql.SQL("{} = %s").format(sql.SQL(column)) for column, _ in conditions]
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(parts), [value for _, value in conditions]


async def _fetch_all(
    conn: AsyncConnection, query: Query, params: Sequence[object]
) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def _fetch_page(
    conn: AsyncConnection,
    *,
    select: Query,
    order: Query,
    conditions: Sequence[tuple[str, object]],
    limit: int,
    offset: int,
    count_table: str,
) -> tuple[list[dict[str, Any]], int]:
    """One page plus the total, as two queries: a window ``count(*) OVER ()`` would build every
    row of the agent (joins included) before LIMIT, which grows with the agent's history."""
    where, params = _where(conditions)
    query = sql.SQL(
        "SELECT page.* FROM ({select}) AS page{where} ORDER BY {order} LIMIT %s OFFSET %s"
    ).format(select=select, where=where, order=order)
    count = sql.SQL("SELECT count(*) AS n FROM {table}{where}").format(
        table=sql.Identifier(count_table), where=where
    )
    # One snapshot for both, so the page and its total agree.
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        rows = await _fetch_all(conn, query, [*params, limit, offset])
        counted = await _fetch_all(conn, count, params)
    return rows, int(counted[0]["n"])


class Repository:
    """Read queries over the tables the persister writes; one pooled connection per call."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def _agent_exists(self, conn: AsyncConnection, agent_id: str) -> bool:
        rows = await _fetch_all(
            conn, sql.SQL("SELECT 1 AS one FROM agents WHERE id = %s"), [agent_id]
        )
        return bool(rows)

    async def _agent_page(
        self,
        agent_id: str,
        *,
        select: Query,
        order: Query,
        conditions: Sequence[tuple[str, object]],
        limit: int,
        offset: int,
        count_table: str,
        item_type: type[S],
    ) -> tuple[list[S], int]:
        """A page of one agent's rows; 404 only when the agent is unknown *and* has no rows.

        Rows of an agent whose ``agents`` row is not persisted yet (the two arrive on different
        streams) are still served rather than hidden behind a 404.
        """
        async with self._db.connection() as conn:
            rows, total = await _fetch_page(
                conn,
                select=select,
                order=order,
                conditions=[("agent_id", agent_id), *conditions],
                limit=limit,
                offset=offset,
                count_table=count_table,
            )
            if total == 0 and not await self._agent_exists(conn, agent_id):
                raise NotFoundError(f"agent {agent_id!r} not found")
        return [msgspec.convert(row, item_type) for row in rows], total

    async def list_agents(self, limit: int, offset: int) -> tuple[list[Agent], int]:
        async with self._db.connection() as conn:
            rows, total = await _fetch_page(
                conn,
                select=_AGENT_SELECT,
                order=sql.SQL("last_seen_at DESC, id"),
                conditions=[],
                limit=limit,
                offset=offset,
                count_table="agents",
            )
        return msgspec.convert(rows, list[Agent]), total

    async def get_agent(self, agent_id: str) -> Agent:
        query = _AGENT_SELECT + sql.SQL(" WHERE id = %s")
        async with self._db.connection() as conn:
            rows = await _fetch_all(conn, query, [agent_id])
        if not rows:
            raise NotFoundError(f"agent {agent_id!r} not found")
        return msgspec.convert(rows[0], Agent)

    async def list_traces(self, agent_id: str, limit: int, offset: int) -> tuple[list[Trace], int]:
        return await self._agent_page(
            agent_id,
            select=_TRACE_SELECT,
            order=sql.SQL('"timestamp" DESC, trace_id DESC'),
            conditions=[],
            limit=limit,
            offset=offset,
            count_table="traces",
            item_type=Trace,
        )

    async def get_trace(self, trace_id: str) -> Trace:
        query = _TRACE_SELECT + sql.SQL(" WHERE t.trace_id = %s")
        async with self._db.connection() as conn:
            rows = await _fetch_all(conn, query, [trace_id])
        if not rows:
            raise NotFoundError(f"trace {trace_id!r} not found")
        return msgspec.convert(rows[0], Trace)

    async def list_checkpoints(
        self,
        agent_id: str,
        limit: int,
        offset: int,
        verdict: str | None = None,
        session_id: str | None = None,
    ) -> tuple[list[Checkpoint], int]:
        conditions: list[tuple[str, object]] = []
        if verdict is not None:
            conditions.append(("verdict", verdict))
        if session_id is not None:
            conditions.append(("session_id", session_id))
        return await self._agent_page(
            agent_id,
            select=_CHECKPOINT_SELECT,
            order=sql.SQL('"timestamp" DESC, checkpoint_id DESC'),
            conditions=conditions,
            limit=limit,
            offset=offset,
            count_table="integrity_checkpoints",
            item_type=Checkpoint,
        )

    async def get_checkpoint(self, agent_id: str, checkpoint_id: str) -> Checkpoint:
        query = _CHECKPOINT_SELECT + sql.SQL(" WHERE agent_id = %s AND checkpoint_id = %s")
        async with self._db.connection() as conn:
            rows = await _fetch_all(conn, query, [agent_id, checkpoint_id])
        if not rows:
            raise NotFoundError(f"checkpoint {checkpoint_id!r} not found for agent {agent_id!r}")
        return msgspec.convert(rows[0], Checkpoint)

    async def list_exchanges(
        self, agent_id: str, limit: int, offset: int
    ) -> tuple[list[Exchange], int]:
        return await self._agent_page(
            agent_id,
            select=_EXCHANGE_SELECT,
            order=sql.SQL("completed_at DESC, exchange_id DESC"),
            conditions=[],
            limit=limit,
            offset=offset,
            count_table="exchanges",
            item_type=Exchange,
        )
