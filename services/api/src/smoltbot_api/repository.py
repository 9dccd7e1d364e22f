"""SQL for the read endpoints; rows come back shaped like the response Structs.

Each list answer's page and filtered total are read in one read-only snapshot, so they always
agree. Order is newest first with the id as tie-breaker,
which keeps limit/offset pages stable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from smoltbot_api.db import Database
from smoltbot_api.errors import NotFoundError
from smoltbot_api.schemas import (
    Agent,
    AgentList,
    Checkpoint,
    CheckpointList,
    ExchangeList,
    Page,
    Trace,
    TraceList,
)

__all__ = ["Repository"]

S = TypeVar("S", bound=msgspec.Struct)
P = TypeVar("P", bound=Page)
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


@dataclass(frozen=True, slots=True)
class _Listing(Generic[P]):
    """How one list endpoint reads: its rows, their order, the table its total counts, and the
    page it answers with (``rows`` names the page's field that holds them)."""

    select: Query
    order: Query
    count_table: str
    page: type[P]
    rows: str


_AGENTS = _Listing(_AGENT_SELECT, sql.SQL("last_seen_at DESC, id"), "agents", AgentList, "agents")
_TRACES = _Listing(
    _TRACE_SELECT, sql.SQL('"timestamp" DESC, trace_id DESC'), "traces", TraceList, "traces"
)
_CHECKPOINTS = _Listing(
    _CHECKPOINT_SELECT,
    sql.SQL('"timestamp" DESC, checkpoint_id DESC'),
    "integrity_checkpoints",
    CheckpointList,
    "checkpoints",
)
_EXCHANGES = _Listing(
    _EXCHANGE_SELECT,
    sql.SQL("completed_at DESC, exchange_id DESC"),
    "exchanges",
    ExchangeList,
    "exchanges",
)


_OPERATORS = frozenset({"=", "<", "<=", ">", ">="})


def _where(conditions: Sequence[tuple[str, object]]) -> tuple[Query, list[object]]:
    """``WHERE a = %s AND b >= %s`` over fixed, trusted column names, with the values apart.

    A condition's column may end with its operator (``'"timestamp" >='``); the default is ``=``.
    """
    if not conditions:
        return sql.SQL(""), []
    parts = [
        sql.SQL(column if column.rpartition(" ")[2] in _OPERATORS else f"{column} =")
        + sql.SQL(" %s")
        for column, _ in conditions
    ]
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(parts), [value for _, value in conditions]


async def _fetch_all(
    conn: AsyncConnection, query: Query, params: Sequence[object]
) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def _fetch_page(
    conn: AsyncConnection,
    listing: _Listing[P],
    conditions: Sequence[tuple[str, object]],
    limit: int,
    offset: int,
) -> P:
    """One page plus the total, as two queries: a window ``count(*) OVER ()`` would build every
    row of the agent (joins included) before LIMIT, which grows with the agent's history."""
    where, params = _where(conditions)
    query = sql.SQL(
        "SELECT page.* FROM ({select}) AS page{where} ORDER BY {order} LIMIT %s OFFSET %s"
    ).format(select=listing.select, where=where, order=listing.order)
    count = sql.SQL("SELECT count(*) AS n FROM {table}{where}").format(
        table=sql.Identifier(listing.count_table), where=where
    )
    # One snapshot for both, so the page and its total agree.
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        rows = await _fetch_all(conn, query, [*params, limit, offset])
        counted = await _fetch_all(conn, count, params)
    page = {listing.rows: rows, "total": int(counted[0]["n"]), "limit": limit, "offset": offset}
    return msgspec.convert(page, listing.page)


class Repository:
    """Read queries over the tables the persister writes; one pooled connection per call."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @property
    def database(self) -> Database:
        """The pool, for the read modules of other areas (``repo_<area>.py``)."""
        return self._db

    async def _agent_exists(self, conn: AsyncConnection, agent_id: str) -> bool:
        rows = await _fetch_all(
            conn, sql.SQL("SELECT 1 AS one FROM agents WHERE id = %s"), [agent_id]
        )
        return bool(rows)

    async def _agent_page(
        self,
        listing: _Listing[P],
        agent_id: str,
        limit: int,
        offset: int,
        conditions: Sequence[tuple[str, object]] = (),
    ) -> P:
        """A page of one agent's rows; 404 only when the agent is unknown *and* has no rows.

        Rows of an agent whose ``agents`` row is not persisted yet (the two arrive on different
        streams) are still served rather than hidden behind a 404.
        """
        async with self._db.connection() as conn:
            page = await _fetch_page(
                conn, listing, [("agent_id", agent_id), *conditions], limit, offset
            )
            if page.total == 0 and not await self._agent_exists(conn, agent_id):
                raise NotFoundError(f"agent {agent_id!r} not found")
        return page

    async def _one(self, query: Query, params: Sequence[object], item: type[S], missing: str) -> S:
        """The first row of ``query`` as ``item``; 404 with ``missing`` when there is none."""
        async with self._db.connection() as conn:
            rows = await _fetch_all(conn, query, params)
        if not rows:
            raise NotFoundError(missing)
        return msgspec.convert(rows[0], item)

    async def list_agents(self, limit: int, offset: int) -> AgentList:
        async with self._db.connection() as conn:
            return await _fetch_page(conn, _AGENTS, (), limit, offset)

    async def get_agent(self, agent_id: str) -> Agent:
        query = _AGENT_SELECT + sql.SQL(" WHERE id = %s")
        return await self._one(query, [agent_id], Agent, f"agent {agent_id!r} not found")

    async def list_traces(
        self,
        agent_id: str,
        limit: int,
        offset: int,
        conditions: Sequence[tuple[str, object]] = (),
    ) -> TraceList:
        return await self._agent_page(_TRACES, agent_id, limit, offset, conditions)

    async def get_trace(self, trace_id: str) -> Trace:
        query = _TRACE_SELECT + sql.SQL(" WHERE t.trace_id = %s")
        return await self._one(query, [trace_id], Trace, f"trace {trace_id!r} not found")

    async def list_checkpoints(
        self,
        agent_id: str,
        limit: int,
        offset: int,
        *,
        verdict: str | None = None,
        session_id: str | None = None,
        time_conditions: Sequence[tuple[str, object]] = (),
    ) -> CheckpointList:
        filters = {"verdict": verdict, "session_id": session_id}
        conditions: list[tuple[str, object]] = [
            (column, value) for column, value in filters.items() if value is not None
        ]
        conditions += time_conditions
        return await self._agent_page(_CHECKPOINTS, agent_id, limit, offset, conditions)

    async def get_checkpoint(self, agent_id: str, checkpoint_id: str) -> Checkpoint:
        query = _CHECKPOINT_SELECT + sql.SQL(" WHERE agent_id = %s AND checkpoint_id = %s")
        missing = f"checkpoint {checkpoint_id!r} not found for agent {agent_id!r}"
        return await self._one(query, [agent_id, checkpoint_id], Checkpoint, missing)

    async def list_exchanges(self, agent_id: str, limit: int, offset: int) -> ExchangeList:
        return await self._agent_page(_EXCHANGES, agent_id, limit, offset)
