"""Private PostgreSQL databases for tests (created on the shared server, always dropped), and the
one list of the tables the services write."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import uuid4

import psycopg
from psycopg import sql

from smoltbot_testing.env import ADMIN_URL

__all__ = [
    "ADMIN_URL",
    "API_TABLES",
    "BUS_TABLES",
    "temporary_database",
    "truncate_bus_tables",
    "url_for",
]

#: Every table the migrations create for the bus's events (all but the runner's own
#: ``schema_migrations``); a test in ``libs/testing/tests`` keeps this in step with the migrations.
BUS_TABLES = (
    "nudges",
    "drift_alerts",
    "agent_containment_log",
    "verifications",
    "traces",
    "integrity_checkpoints",
    "exchanges",
    "alignment_cards",
    "agents",
)


#: Tables the api writes itself, from operator requests rather than the bus (not emptied by
#: :func:`truncate_bus_tables`; a suite that needs them empty truncates them itself).
API_TABLES = (
    "api_keys",
    "agent_card_settings",
    "org_card_template",
    "org_conscience_values",
    "webhook_endpoints",
    "webhook_deliveries",
    "reverify_runs",
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


def truncate_bus_tables(conn: psycopg.Connection[Any]) -> None:
    """Remove every row the services wrote (``BUS_TABLES``), in one statement."""
    conn.execute(
        sql.SQL("TRUNCATE {} CASCADE").format(sql.SQL(", ").join(map(sql.Identifier, BUS_TABLES)))
    )
