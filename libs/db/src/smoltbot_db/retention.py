"""Row retention (architecture §7): delete event rows older than the configured number of days.

The persister runs :func:`run_retention` on a timer and ``smoltbot retention run`` runs it by
hand. Deletes go in bounded batches (one short transaction per ``DELETE ... LIMIT``) with a pause
between batches, so the job never holds many row locks or a long transaction. A session-level
advisory lock (:data:`RETENTION_LOCK_KEY`) makes sure only one run works at a time across every
replica and the CLI; a run that does not get it returns at once (``ran=False``). A connection
lost mid-run releases the lock on the server side; the rows deleted so far stay deleted and the
next run carries on.

Only the tables that grow with traffic are trimmed, by their event time (:data:`RETAINED`):
agents, cards, card settings, api keys and the containment log are kept forever.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

__all__ = [
    "RETAINED",
    "RETENTION_LOCK_KEY",
    "RetainedTable",
    "RetentionReport",
    "run_retention",
]

#: ``pg_try_advisory_lock`` key of the retention job ("smoltret" as 8 ASCII bytes; distinct from
#: the migration runner's key).
RETENTION_LOCK_KEY = int.from_bytes(b"smoltret", "big") & 0x7FFF_FFFF_FFFF_FFFF


@dataclass(frozen=True, slots=True)
class RetainedTable:
    """One trimmed table: its name, its event-time column (for the docs) and the SQL that
    deletes (``delete``) or counts (``count``) its expired rows; ``%(cutoff)s`` and ``%(n)s``."""

    table: str
    column: str
    delete: str
    count: str


def _plain(table: str, key: str, column: str) -> RetainedTable:
    where = f"{column} < %(cutoff)s"
    return RetainedTable(
        table=table,
        column=column,
        delete=(
            f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE {where}"  # noqa: S608 - fixed names
            " LIMIT %(n)s FOR UPDATE SKIP LOCKED)"
        ),
        count=f"SELECT count(*) FROM {table} WHERE {where}",  # noqa: S608 - fixed names
    )


#: In delete order: a verification references its trace, so it goes first (it has no event
#: time of its own and expires with its trace); a trace whose verification appeared meanwhile
#: waits for the next run instead of failing the foreign key.
RETAINED: tuple[RetainedTable, ...] = (
    RetainedTable(
        table="verifications",
        column='traces."timestamp"',
        delete=(
            "DELETE FROM verifications WHERE trace_id IN (SELECT v.trace_id FROM verifications v"
            ' JOIN traces t USING (trace_id) WHERE t."timestamp" < %(cutoff)s'
            " LIMIT %(n)s FOR UPDATE OF v SKIP LOCKED)"
        ),
        count=(
            "SELECT count(*) FROM verifications v JOIN traces t USING (trace_id)"
            ' WHERE t."timestamp" < %(cutoff)s'
        ),
    ),
    RetainedTable(
        table="traces",
        column='"timestamp"',
        delete=(
            "DELETE FROM traces WHERE trace_id IN (SELECT t.trace_id FROM traces t"
            ' WHERE t."timestamp" < %(cutoff)s AND NOT EXISTS'
            " (SELECT 1 FROM verifications v WHERE v.trace_id = t.trace_id)"
            " LIMIT %(n)s FOR UPDATE OF t SKIP LOCKED)"
        ),
        count='SELECT count(*) FROM traces WHERE "timestamp" < %(cutoff)s',
    ),
    _plain("exchanges", "exchange_id", "completed_at"),
    _plain("integrity_checkpoints", "checkpoint_id", '"timestamp"'),
    _plain("drift_alerts", "id", "detected_at"),
    # A nudge known only from its delivery has no creation time yet.
    _plain("nudges", "id", "COALESCE(created_at, delivered_at)"),
)


@dataclass(slots=True)
class RetentionReport:
    """What one run did. ``ran`` is False when another run held the lock (nothing was done).
    ``rows`` is per table: deleted, or (``dry_run``) that would be deleted."""

    cutoff: datetime
    dry_run: bool
    ran: bool = True
    rows: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.rows.values())


async def run_retention(
    conn: psycopg.AsyncConnection[Any],
    *,
    days: int,
    batch: int = 5000,
    pause_s: float = 0.05,
    dry_run: bool = False,
    now: datetime | None = None,
    on_batch: Callable[[str, int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> RetentionReport:
    """Delete (or with ``dry_run`` count) rows older than ``days`` days, ``batch`` rows per
    statement, ``pause_s`` between statements. ``on_batch(table, deleted)`` is called after each
    committed batch (metrics). ``stop`` ends the run between two batches. Raises on database
    errors (the caller retries at its next interval); ``days`` must be > 0."""
    if days <= 0:
        raise ValueError("retention days must be > 0 (0 means keep forever: do not run)")
    if batch <= 0:
        raise ValueError("retention batch must be > 0")
    started = time.perf_counter()
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    report = RetentionReport(cutoff=cutoff, dry_run=dry_run)
    params: dict[str, Any] = {"cutoff": cutoff, "n": batch}
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        await conn.rollback()
    if dry_run:
        for spec in RETAINED:
            cur = await conn.execute(spec.count, params)
            row = await cur.fetchone()
            report.rows[spec.table] = int(row[0]) if row else 0
        await conn.rollback()
        report.seconds = time.perf_counter() - started
        return report

    cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (RETENTION_LOCK_KEY,))
    row = await cur.fetchone()
    await conn.commit()
    if not (row and row[0]):
        report.ran = False
        report.seconds = time.perf_counter() - started
        return report
    try:
        for spec in RETAINED:
            report.rows[spec.table] = 0
            while not (stop is not None and stop.is_set()):
                cur = await conn.execute(spec.delete, params)
                deleted = cur.rowcount
                await conn.commit()
                report.batches += 1
                report.rows[spec.table] += deleted
                if on_batch is not None and deleted:
                    on_batch(spec.table, deleted)
                if deleted < batch:
                    break
                if pause_s > 0:
                    await asyncio.sleep(pause_s)
    finally:
        if not conn.closed and not conn.broken:
            await conn.rollback()
            await conn.execute("SELECT pg_advisory_unlock(%s)", (RETENTION_LOCK_KEY,))
            await conn.commit()
    report.seconds = time.perf_counter() - started
    return report
