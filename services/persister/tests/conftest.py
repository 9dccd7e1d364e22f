"""Real PostgreSQL (a migrated database per test session) and real Redis (``prefix`` and
``redis`` come from ``smoltbot_testing.pytest_plugin``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import psycopg
import pytest
from smoltbot_db import Pool, create_pool
from smoltbot_testing.pg import truncate_bus_tables


@pytest.fixture(scope="session")
def database_url(migrated_database: Callable[[str], str]) -> str:
    return migrated_database("persister")


@pytest.fixture
def clean_db(database_url: str) -> str:
    """Empty tables before each test (tests in one session share the migrated database)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        truncate_bus_tables(conn)
    return database_url


@pytest.fixture
async def pool(clean_db: str) -> AsyncIterator[Pool]:
    p = create_pool(clean_db, min_size=1, max_size=2)
    await p.open(wait=True, timeout=10)
    try:
        yield p
    finally:
        await p.close()
