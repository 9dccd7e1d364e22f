"""The shared fixtures (``smoltbot_testing.pytest_plugin``): prefix cleanup, private databases,
and the one table list checked against what the migrations create."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from redis.asyncio import Redis
from smoltbot_testing.env import REDIS_URL
from smoltbot_testing.keys import unique_prefix
from smoltbot_testing.pg import API_TABLES, BUS_TABLES, truncate_bus_tables
from smoltbot_testing.pytest_plugin import suite_label


def _existing(keys: list[str]) -> list[str]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return [key for key in keys if client.exists(key)]
    finally:
        client.close()


@pytest.fixture
def written() -> Iterator[list[str]]:
    """Keys a test writes under its ``prefix``. Requested before ``prefix``, so this runs its
    check after the plugin's cleanup: none of the keys may be left."""
    keys: list[str] = []
    yield keys
    assert keys, "the test wrote nothing to check"
    assert _existing(keys) == []


@pytest.fixture
def bystander() -> Iterator[str]:
    """A key outside the test's prefix: the cleanup must leave it alone."""
    key = f"{unique_prefix()}bystander"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.set(key, b"1")
        yield key
        assert _existing([key]) == [key]
    finally:
        client.delete(key)
        client.close()


def test_prefix_keys_are_deleted_afterwards_and_only_those(
    bystander: str, written: list[str], prefix: str, redis_sync: redis.Redis
) -> None:
    assert prefix.startswith("test-")
    assert prefix.endswith(":")
    assert not bystander.startswith(prefix)
    for name in ("plain", "stream", "nested:key"):
        key = f"{prefix}{name}"
        if name == "stream":
            redis_sync.xadd(key, {b"f": b"v"})
        else:
            redis_sync.set(key, b"v")
        written.append(key)
    assert _existing(written) == written


async def test_async_client_writes_under_the_cleaned_prefix(
    written: list[str], prefix: str, redis: Redis
) -> None:
    key = f"{prefix}async"
    await redis.set(key, b"v")
    written.append(key)
    assert await redis.get(key) == b"v"  # bytes replies, as the bus's clients have


def _public_tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        ).fetchall()
    return {row[0] for row in rows}


def test_bus_tables_are_exactly_the_tables_the_migrations_create(
    migrated_database: Callable[[str], str],
) -> None:
    url = migrated_database("testing")
    assert len(set(BUS_TABLES)) == len(BUS_TABLES)
    assert _public_tables(url) - {"schema_migrations"} == set(BUS_TABLES) | set(API_TABLES)


def test_truncate_bus_tables_empties_them(migrated_database: Callable[[str], str]) -> None:
    url = migrated_database("testing")
    now = datetime.now(UTC)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO agents (id, agent_hash, first_seen_at, last_seen_at)"
            " VALUES ('smolt-1', 'h1', %s, %s)",
            [now, now],
        )
        conn.execute(
            "INSERT INTO alignment_cards (id, agent_id, card_json, issued_at)"
            " VALUES ('ac-1', 'smolt-1', '{}', %s)",
            [now],
        )
        truncate_bus_tables(conn)
        counts: dict[str, Any] = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
            for table in BUS_TABLES
        }
    assert counts == dict.fromkeys(BUS_TABLES, (0,))


def test_fresh_db_url_is_private_empty_and_named_after_the_suite(fresh_db_url: str) -> None:
    with psycopg.connect(fresh_db_url) as conn:
        row = conn.execute("SELECT current_database()").fetchone()
    assert row is not None
    assert row[0].startswith("smoltbot_testing_")
    assert _public_tables(fresh_db_url) == set()


@pytest.mark.parametrize(
    ("relative", "label"),
    [
        ("libs/db/tests/test_db_migrate.py", "db"),
        ("services/api/tests/test_api_endpoints.py", "api"),
        ("cli/tests/test_cli_migrate.py", "cli"),
        ("contracts/tests/test_contracts.py", "contracts"),
        ("tests/e2e/test_walking_skeleton.py", "e2e"),
        ("tests/test_metrics_catalogue.py", "test"),
        ("elsewhere/test_x.py", "test"),
    ],
)
def test_suite_label(relative: str, label: str) -> None:
    root = Path("/repo")
    assert suite_label(root / relative, root) == label
