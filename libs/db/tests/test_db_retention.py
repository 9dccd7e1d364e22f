"""Row retention (``smoltbot_db.run_retention``) on a real, migrated PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import psycopg
import pytest
from smoltbot_db import RETAINED, RETENTION_LOCK_KEY, run_retention
from smoltbot_testing.aged_rows import RETAINED_TABLES, seed_aged_rows, table_counts
from smoltbot_testing.faults import FaultProxy
from smoltbot_testing.pg import truncate_bus_tables

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=100)
RECENT = NOW - timedelta(days=10)


@pytest.fixture(scope="session")
def migrated_url(migrated_database: Callable[[str], str]) -> str:
    return migrated_database("retention")


@pytest.fixture
def db(migrated_url: str) -> str:
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        truncate_bus_tables(conn)
    with psycopg.connect(migrated_url) as conn:
        seed_aged_rows(conn, 7, OLD)
        seed_aged_rows(conn, 2, RECENT)
    return migrated_url


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return table_counts(conn)


def test_the_retained_tables_are_the_documented_ones() -> None:
    assert tuple(t.table for t in RETAINED) == RETAINED_TABLES


async def test_old_rows_go_in_batches_and_recent_rows_stay(db: str) -> None:
    seen: list[tuple[str, int]] = []
    async with await psycopg.AsyncConnection.connect(db) as conn:
        report = await run_retention(
            conn, days=90, batch=3, pause_s=0, on_batch=lambda t, n: seen.append((t, n))
        )
    assert report.ran
    assert report.rows == dict.fromkeys(RETAINED_TABLES, 7)
    assert report.total == 7 * len(RETAINED_TABLES)
    # 7 rows, 3 per statement: 3 + 3 + 1 in each table.
    assert report.batches == 3 * len(RETAINED_TABLES)
    assert all(n <= 3 for _, n in seen)
    assert [t for t, _ in seen] == [t for t in RETAINED_TABLES for _ in range(3)]
    assert counts(db) == dict.fromkeys(RETAINED_TABLES, 2)
    # Nothing left to do: a second run deletes nothing.
    async with await psycopg.AsyncConnection.connect(db) as conn:
        again = await run_retention(conn, days=90, batch=3, pause_s=0)
    assert again.total == 0


async def test_dry_run_counts_and_changes_nothing(db: str) -> None:
    async with await psycopg.AsyncConnection.connect(db) as conn:
        report = await run_retention(conn, days=90, dry_run=True)
        assert report.dry_run
        assert report.rows == dict.fromkeys(RETAINED_TABLES, 7)
        wider = await run_retention(conn, days=5, dry_run=True)
        assert wider.rows == dict.fromkeys(RETAINED_TABLES, 9)
    assert counts(db) == dict.fromkeys(RETAINED_TABLES, 9)


async def test_zero_days_is_refused(db: str) -> None:
    async with await psycopg.AsyncConnection.connect(db) as conn:
        with pytest.raises(ValueError, match="keep forever"):
            await run_retention(conn, days=0)
    assert counts(db) == dict.fromkeys(RETAINED_TABLES, 9)


async def test_a_held_lock_skips_the_run(db: str) -> None:
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as holder:
        await holder.execute("SELECT pg_advisory_lock(%s)", (RETENTION_LOCK_KEY,))
        async with await psycopg.AsyncConnection.connect(db) as conn:
            report = await run_retention(conn, days=90)
        assert not report.ran
        assert report.total == 0
    assert counts(db) == dict.fromkeys(RETAINED_TABLES, 9)


async def test_two_concurrent_runs_one_does_the_work(db: str) -> None:
    async def one() -> tuple[bool, int]:
        async with await psycopg.AsyncConnection.connect(db) as conn:
            r = await run_retention(conn, days=90, batch=1, pause_s=0.05)
        return r.ran, r.total

    results = await asyncio.gather(one(), one())
    assert sorted(results) == [(False, 0), (True, 7 * len(RETAINED_TABLES))]
    assert counts(db) == dict.fromkeys(RETAINED_TABLES, 2)
    # The lock was released: the next run gets it.
    async with await psycopg.AsyncConnection.connect(db) as conn:
        assert (await run_retention(conn, days=90)).ran


async def test_a_cut_connection_fails_the_run_and_the_next_one_finishes(db: str) -> None:
    parts = urlsplit(db)
    with FaultProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        proxied = parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl()

        def cut_after_first(table: str, n: int) -> None:
            proxy.set_mode("cut")

        async with await psycopg.AsyncConnection.connect(proxied) as conn:
            with pytest.raises(psycopg.OperationalError):
                await run_retention(conn, days=90, batch=2, pause_s=0, on_batch=cut_after_first)
        partial = counts(db)
        assert partial["verifications"] == 9 - 2  # the first batch was committed
        proxy.set_mode("pass")
        # The server dropped the dead session's advisory lock: the next run gets it.
        for _ in range(50):  # until the server has noticed the dead session
            async with await psycopg.AsyncConnection.connect(proxied) as conn:
                report = await run_retention(conn, days=90, batch=2, pause_s=0)
            if report.ran:
                break
            await asyncio.sleep(0.1)
        assert report.ran
        assert report.rows["verifications"] == 5
    assert counts(db) == dict.fromkeys(RETAINED_TABLES, 2)
