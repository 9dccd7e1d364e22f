"""The persister's retention task: off at 0 days, metrics per run, and a run that fails on a cut
database connection is retried at the next interval without stopping the task."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import psycopg
import pytest
from smoltbot_config import load_settings
from smoltbot_persister import retention
from smoltbot_persister.metrics import RETENTION_DELETED, RETENTION_LAST_RUN, RETENTION_RUNS
from smoltbot_persister.settings import PersisterSettings
from smoltbot_testing.aged_rows import RETAINED_TABLES, seed_aged_rows, table_counts
from smoltbot_testing.faults import FaultProxy

OLD = datetime.now(UTC) - timedelta(days=40)


def settings(url: str, **env: str) -> PersisterSettings:
    return load_settings(PersisterSettings, {"DATABASE_URL": url, **env})


@pytest.fixture
def aged(clean_db: str) -> str:
    with psycopg.connect(clean_db) as conn:
        seed_aged_rows(conn, 4, OLD)
        seed_aged_rows(conn, 1, datetime.now(UTC))
    return clean_db


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return table_counts(conn)


def test_defaults() -> None:
    s = settings("postgresql://u@localhost/db")
    assert (s.retention_days, s.retention_interval_s, s.retention_batch) == (90, 3600.0, 5000)


async def test_zero_days_keeps_everything(aged: str) -> None:
    s = settings(aged, SMOLTBOT_RETENTION_DAYS="0", SMOLTBOT_RETENTION_INTERVAL_S="1")
    assert await retention.retention_once(s) is None
    await asyncio.wait_for(retention.retention_loop(s, asyncio.Event()), 1)  # returns at once
    assert counts(aged) == dict.fromkeys(RETAINED_TABLES, 5)


async def test_one_run_deletes_and_counts(aged: str) -> None:
    before = RETENTION_DELETED.labels(table="traces")._value.get()
    s = settings(aged, SMOLTBOT_RETENTION_DAYS="30", SMOLTBOT_RETENTION_BATCH="3")
    report = await retention.retention_once(s)
    assert report is not None
    assert report.rows == dict.fromkeys(RETAINED_TABLES, 4)
    assert counts(aged) == dict.fromkeys(RETAINED_TABLES, 1)
    assert RETENTION_DELETED.labels(table="traces")._value.get() - before == 4
    assert RETENTION_LAST_RUN._value.get() > 0


async def test_a_failed_run_is_retried_next_interval(
    aged: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "FIRST_RUN_MAX_DELAY_S", 0.1)
    failed = RETENTION_RUNS.labels(result="failed")
    failed_before = failed._value.get()
    parts = urlsplit(aged)
    with FaultProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        proxied = parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl()
        s = settings(proxied, SMOLTBOT_RETENTION_DAYS="30", SMOLTBOT_RETENTION_INTERVAL_S="1")
        proxy.set_mode("cut")
        stop = asyncio.Event()
        task = asyncio.create_task(retention.retention_loop(s, stop))
        try:
            for _ in range(100):
                if failed._value.get() > failed_before:
                    break
                await asyncio.sleep(0.05)
            assert failed._value.get() > failed_before
            assert not task.done()  # the failure did not end the task
            assert counts(aged) == dict.fromkeys(RETAINED_TABLES, 5)
            proxy.set_mode("pass")
            for _ in range(60):
                if counts(aged)["drift_alerts"] == 1:
                    break
                await asyncio.sleep(0.1)
            assert counts(aged) == dict.fromkeys(RETAINED_TABLES, 1)
            assert not task.done()
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)
