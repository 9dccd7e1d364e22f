"""Real PostgreSQL (a migrated database per test session) and real Redis (a prefix per test)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest
from psycopg import sql
from redis.asyncio import Redis
from smoltbot_db import Pool, create_pool
from smoltbot_testing.keys import delete_prefix, unique_prefix
from smoltbot_testing.pg import temporary_database

ADMIN_URL = os.environ.get(
    "SMOLTBOT_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("SMOLTBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TABLES = (
    "verifications",
    "traces",
    "integrity_checkpoints",
    "exchanges",
    "alignment_cards",
    "agents",
)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with temporary_database("persister", migrate=True) as url:
        yield url


@pytest.fixture
def clean_db(database_url: str) -> str:
    """Empty tables before each test (tests in one session share the migrated database)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, TABLES))))
    return database_url


@pytest.fixture
async def pool(clean_db: str) -> AsyncIterator[Pool]:
    p = create_pool(clean_db, min_size=1, max_size=2)
    await p.open(wait=True, timeout=10)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
def prefix() -> str:
    return unique_prefix()


@pytest.fixture
async def redis(prefix: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL, decode_responses=False)
    try:
        yield client
    finally:
        await delete_prefix(client, prefix)
        await client.aclose()
