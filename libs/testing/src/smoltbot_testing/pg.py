"""Private PostgreSQL databases for tests (created on the shared server, always dropped)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import uuid4

import psycopg
from psycopg import sql

ADMIN_URL = os.environ.get(
    "SMOLTBOT_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def url_for(dbname: str) -> str:
    return f"{ADMIN_URL.rpartition('/')[0]}/{dbname}"


@contextmanager
def temporary_database(label: str = "test", *, migrate: bool = False) -> Iterator[str]:
    """A uniquely named database (migrated with ``smoltbot_db`` when asked), dropped after."""
    name = f"smoltbot_{label}_{uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = url_for(name)
    try:
        if migrate:
            from smoltbot_db import run_migrations  # noqa: PLC0415 - only tests that migrate need it

            asyncio.run(run_migrations(url))
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
