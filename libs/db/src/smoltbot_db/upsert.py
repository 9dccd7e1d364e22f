"""Idempotent batched writes: ``INSERT … ON CONFLICT`` for rows derived from bus events.

Two paths, chosen by batch size (style-and-libs §B4):

* fewer than ``copy_threshold`` rows: ``executemany`` of one ``INSERT … ON CONFLICT``. psycopg
  pipelines it (one round trip per batch), it needs no staging table and no exact COPY types;
  for the persister's batches (≤ a few hundred rows per table) it is as fast as COPY.
* larger batches: text ``COPY`` into a per-session temp staging table (``ON COMMIT DELETE ROWS``,
  created once per connection) and one ``INSERT … SELECT … ON CONFLICT``. COPY cannot do
  ``ON CONFLICT`` itself and at-least-once delivery guarantees duplicates, hence the staging step.

Both run inside the caller's transaction (one transaction per batch is the caller's job). Rows
are de-duplicated by conflict key (last wins) and sorted by it, so one statement never touches a
row twice and concurrent writers lock rows in the same order (no deadlocks between persisters).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

__all__ = ["DEFAULT_COPY_THRESHOLD", "UpsertSpec", "upsert"]

DEFAULT_COPY_THRESHOLD = 256

Conn = psycopg.AsyncConnection[TupleRow]


@dataclass(frozen=True, kw_only=True)
class UpsertSpec:
    """How rows of one table are written.

    ``action`` is the SQL after ``ON CONFLICT (<key>)``: ``DO NOTHING`` for immutable facts, or a
    ``DO UPDATE SET …`` that is monotonic (``GREATEST``/``LEAST``), so replays never regress a row.
    ``key`` empty means ``ON CONFLICT DO NOTHING`` on any unique constraint.
    """

    table: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    action: str = "DO NOTHING"

    def __post_init__(self) -> None:
        missing = [k for k in self.key if k not in self.columns]
        if missing:
            raise ValueError(f"{self.table}: conflict key column(s) {missing} not in columns")
        if not self.key and self.action.strip().upper() != "DO NOTHING":
            raise ValueError(f"{self.table}: DO UPDATE needs a conflict key")


def _dedupe(spec: UpsertSpec, rows: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
    if not spec.key:
        return list(rows)
    idx = [spec.columns.index(k) for k in spec.key]
    by_key: dict[tuple[Any, ...], Sequence[Any]] = {}
    for row in rows:
        if len(row) != len(spec.columns):
            raise ValueError(
                f"{spec.table}: row has {len(row)} values, expected {len(spec.columns)}"
            )
        by_key[tuple(row[i] for i in idx)] = row
    return [by_key[k] for k in sorted(by_key, key=lambda k: tuple(str(v) for v in k))]


def _conflict(spec: UpsertSpec) -> sql.Composable:
    if not spec.key:
        return sql.SQL("ON CONFLICT DO NOTHING")
    return sql.SQL("ON CONFLICT ({}) {}").format(
        sql.SQL(", ").join(map(sql.Identifier, spec.key)),
        sql.SQL(spec.action),  # static SQL from code, never user data
    )


async def upsert(
    conn: Conn,
    spec: UpsertSpec,
    rows: Sequence[Sequence[Any]],
    *,
    copy_threshold: int = DEFAULT_COPY_THRESHOLD,
) -> int:
    """Write ``rows`` (values in ``spec.columns`` order); returns the rows inserted or updated."""
    unique = _dedupe(spec, rows)
    if not unique:
        return 0
    table = sql.Identifier(spec.table)
    cols = sql.SQL(", ").join(map(sql.Identifier, spec.columns))
    if len(unique) < copy_threshold:
        query = sql.SQL("INSERT INTO {} ({}) VALUES ({}) {}").format(
            table, cols, sql.SQL(", ").join(sql.Placeholder() * len(spec.columns)), _conflict(spec)
        )
        async with conn.cursor() as cur:
            await cur.executemany(query, unique)
            return max(cur.rowcount, 0)

    staging = sql.Identifier(f"_stg_{spec.table}")
    async with conn.cursor() as cur:
        # Column types come from the target table itself, so staging never drifts from it.
        await cur.execute(
            sql.SQL(
                "CREATE TEMP TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS AS "
                "SELECT {} FROM {} WITH NO DATA"
            ).format(staging, cols, table)
        )
        await cur.execute(sql.SQL("TRUNCATE {}").format(staging))
        async with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(staging, cols)) as copy:
            for row in unique:
                await copy.write_row(row)
        await cur.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} {}").format(
                table, cols, cols, staging, _conflict(spec)
            )
        )
        return max(cur.rowcount, 0)
