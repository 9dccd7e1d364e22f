"""``smoltbot retention run`` (cli/src/smoltbot_cli/retention.py) against real PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from click.testing import CliRunner, Result
from smoltbot_cli.main import cli
from smoltbot_db import RETENTION_LOCK_KEY
from smoltbot_testing.aged_rows import RETAINED_TABLES, seed_aged_rows, table_counts
from smoltbot_testing.pg import truncate_bus_tables


@pytest.fixture(scope="module")
def migrated_url(migrated_database: Callable[[str], str]) -> str:
    return migrated_database("cli_retention")


@pytest.fixture
def db(migrated_url: str) -> str:
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        truncate_bus_tables(conn)
    with psycopg.connect(migrated_url) as conn:
        seed_aged_rows(conn, 3, datetime.now(UTC) - timedelta(days=120))
        seed_aged_rows(conn, 2, datetime.now(UTC) - timedelta(days=1))
    return migrated_url


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["retention", "run", *args], env={"DATABASE_URL": url, "SMOLTBOT_RETENTION_DAYS": None}
    )


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return table_counts(conn)


def test_dry_run_prints_per_table_counts_and_deletes_nothing(db: str) -> None:
    result = run(db, "--dry-run")
    assert result.exit_code == 0, result.output
    for table in RETAINED_TABLES:
        assert table in result.output
    assert f"would delete {3 * len(RETAINED_TABLES)} rows" in result.output
    assert counts(db) == dict.fromkeys(RETAINED_TABLES, 5)


def test_run_json_deletes_old_rows(db: str) -> None:
    result = run(db, "--json", "--batch", "2")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["ran"] is True
    assert payload["tables"] == dict.fromkeys(RETAINED_TABLES, 3)
    assert payload["total"] == 3 * len(RETAINED_TABLES)
    assert counts(db) == dict.fromkeys(RETAINED_TABLES, 2)


def test_zero_days_is_disabled(db: str) -> None:
    result = run(db, "--days", "0", "--json")
    assert result.exit_code == 0
    assert json.loads(result.output)["disabled"] is True
    assert counts(db) == dict.fromkeys(RETAINED_TABLES, 5)


def test_a_held_lock_does_nothing(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (RETENTION_LOCK_KEY,))
        result = run(db)
    assert result.exit_code == 0
    assert "holds the lock" in result.output
    assert counts(db) == dict.fromkeys(RETAINED_TABLES, 5)


def test_unreachable_database_exits_1() -> None:
    result = run("postgresql://nobody@127.0.0.1:1/none", "--dry-run")
    assert result.exit_code == 1
    assert "cannot reach PostgreSQL" in result.stderr
