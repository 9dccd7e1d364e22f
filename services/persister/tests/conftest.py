"""Real PostgreSQL (a migrated database per test session) and real Redis (a prefix per test)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest
from psycopg import sql
from redis.asyncio import Redis
from smoltbot_db import Pool, create_pool, run_migrations

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
    name = f"smoltbot_test_persister_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"{ADMIN_URL.rpartition('/')[0]}/{name}"
    try:
        asyncio.run(run_migrations(url))
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


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
    return f"test-{uuid.uuid4().hex[:8]}:"


@pytest.fixture
async def redis(prefix: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL, decode_responses=False)
    try:
        yield client
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
        await client.aclose()
