"""The persister's retention task (architecture §7): every ``SMOLTBOT_RETENTION_INTERVAL_S``
delete event rows older than ``SMOLTBOT_RETENTION_DAYS`` (``smoltbot_db.run_retention``).

It runs beside the consumer, on a connection of its own (never one of the consumer's pool), and
only in the replica that wins the advisory lock. A failed run (database gone, connection cut) is
logged, counted and retried at the next interval: it never stops the persister.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import psycopg
from smoltbot_db import RetentionReport, run_retention

from smoltbot_persister.metrics import (
    RETENTION_DELETED,
    RETENTION_LAST_DURATION,
    RETENTION_LAST_RUN,
    RETENTION_RUNS,
)
from smoltbot_persister.settings import PersisterSettings

__all__ = ["FIRST_RUN_MAX_DELAY_S", "retention_loop", "retention_once"]

log = logging.getLogger(__name__)

#: The first run comes one interval after start, but never later than this: a replica that is
#: restarted more often than the interval still trims.
FIRST_RUN_MAX_DELAY_S = 300.0
#: Pause between two delete statements, so that concurrent writers are never held up for long.
BATCH_PAUSE_S = 0.05


def _deleted(table: str, n: int) -> None:
    RETENTION_DELETED.labels(table=table).inc(n)


async def retention_once(
    settings: PersisterSettings, stop: asyncio.Event | None = None
) -> RetentionReport | None:
    """One run on a fresh connection; None when retention is off. Raises on database errors."""
    if settings.retention_days == 0:
        return None
    conn = await psycopg.AsyncConnection.connect(
        settings.database_url,
        application_name="smoltbot-persister-retention",
        connect_timeout=10,
    )
    try:
        report = await run_retention(
            conn,
            days=settings.retention_days,
            batch=settings.retention_batch,
            pause_s=BATCH_PAUSE_S,
            on_batch=_deleted,
            stop=stop,
        )
    finally:
        with contextlib.suppress(Exception):
            await conn.close()
    if report.ran:
        RETENTION_RUNS.labels(result="done").inc()
        RETENTION_LAST_RUN.set(time.time())
        RETENTION_LAST_DURATION.set(report.seconds)
        log.info(
            "retention run done",
            extra={
                "deleted": report.rows,
                "cutoff": report.cutoff.isoformat(),
                "seconds": round(report.seconds, 3),
            },
        )
    else:
        RETENTION_RUNS.labels(result="skipped").inc()
        log.info("retention run skipped: another replica holds the lock")
    return report


async def retention_loop(settings: PersisterSettings, stop: asyncio.Event) -> None:
    """Run until ``stop``; every failure waits for the next interval."""
    if settings.retention_days == 0:
        log.info("retention disabled (SMOLTBOT_RETENTION_DAYS=0): rows are kept forever")
        return
    delay = min(settings.retention_interval_s, FIRST_RUN_MAX_DELAY_S)
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        if stop.is_set():
            return
        delay = settings.retention_interval_s
        try:
            await retention_once(settings, stop)
        except Exception as exc:  # noqa: BLE001 - any failure waits for the next interval
            RETENTION_RUNS.labels(result="failed").inc()
            log.warning(
                "retention run failed; retrying at the next interval",
                extra={"error": f"{type(exc).__name__}: {exc}", "retry_in_s": delay},
            )
