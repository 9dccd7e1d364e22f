"""Fixtures: a throwaway PostgreSQL database per test session, migrated, and an app client.

Tests talk to a real PostgreSQL (see ``smoltbot_testing.pytest_plugin`` for the server and its
override). The database gets a unique name and is dropped at the end.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import psycopg
import pytest
from litestar.testing import AsyncTestClient
from smoltbot_api import ApiSettings, create_app
from smoltbot_testing.pg import truncate_bus_tables

TOKEN = "test-admin-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BASE_TIME = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def database_url(migrated_database: Callable[[str], str]) -> str:
    return migrated_database("api")


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A clean database (all rows removed) and a sync connection for inserting fixtures."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        truncate_bus_tables(conn)
        yield conn


def api_settings(database_url: str, **overrides: Any) -> ApiSettings:
    values: dict[str, Any] = {"database_url": database_url, "admin_token": TOKEN, **overrides}
    return ApiSettings(**values)


async def wait_started(client: AsyncTestClient[Any], timeout_s: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        response = await client.get("/health/startup")
        if response.status_code == 200:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"api did not start: {response.status_code} {response.text}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def client(database_url: str, db: psycopg.Connection[Any]) -> AsyncIterator[Any]:
    app = create_app(api_settings(database_url))
    async with AsyncTestClient(app=app) as test_client:
        await wait_started(test_client)
        yield test_client


# ---------------------------------------------------------------------------------------------
# Row builders: insert with SQL what the persister would write.

J = msgspec.json.encode


class Rows:
    """Inserts with SQL what the persister would write (the api only reads these tables)."""

    base = BASE_TIME

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def agent(self, agent_id: str, **kw: Any) -> None:
        seen = kw.pop("last_seen_at", BASE_TIME)
        self.conn.execute(
            "INSERT INTO agents (id, agent_hash, name, first_seen_at, last_seen_at,"
            " enforcement_mode)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            [
                agent_id,
                kw.get("agent_hash", uuid.uuid4().hex[:16]),
                kw.get("name"),
                kw.get("first_seen_at", BASE_TIME - timedelta(days=1)),
                seen,
                kw.get("enforcement_mode", "observe"),
            ],
        )

    def trace(
        self,
        agent_id: str,
        trace_id: str,
        ts: datetime,
        *,
        verification: dict[str, Any] | None = None,
        session_id: str = "sess-1",
    ) -> None:
        exchange_id = uuid.uuid4()
        action = {"type": "execute", "name": f"act-{trace_id}", "category": "bounded"}
        decision = {"selected": "a", "selection_reasoning": "because", "values_applied": []}
        self.conn.execute(
            'INSERT INTO traces (trace_id, exchange_id, agent_id, card_id, session_id, "timestamp",'
            " action, decision, escalation, context, verified, trace_json)"
            " VALUES (%s, %s, %s, 'ac-1', %s, %s, %s, %s, NULL, %s, %s, %s)",
            [
                trace_id,
                exchange_id,
                agent_id,
                session_id,
                ts,
                J(action).decode(),
                J(decision).decode(),
                J({"session_id": session_id}).decode(),
                None if verification is None else verification["verified"],
                J({"trace_id": trace_id}).decode(),
            ],
        )
        if verification is not None:
            self.conn.execute(
                "INSERT INTO verifications (trace_id, agent_id, card_id, verified,"
                " similarity_score, violations, warnings, checks_performed, algorithm_version)"
                " VALUES (%s, %s, 'ac-1', %s, %s, %s, %s, '[]', 'v1')",
                [
                    trace_id,
                    agent_id,
                    verification["verified"],
                    verification.get("similarity_score", 0.5),
                    J(verification.get("violations", [])).decode(),
                    J(verification.get("warnings", [])).decode(),
                ],
            )

    def checkpoint(
        self,
        agent_id: str,
        checkpoint_id: str,
        ts: datetime,
        *,
        verdict: str = "clear",
        session_id: str = "sess-1",
    ) -> None:
        self.conn.execute(
            "INSERT INTO integrity_checkpoints (checkpoint_id, exchange_id, agent_id, card_id,"
            ' session_id, "timestamp", thinking_block_hash, provider, model, verdict, concerns,'
            " reasoning_summary, conscience_context, window_position, analysis_metadata,"
            " recommended_action, proceed)"
            " VALUES (%s, %s, %s, 'ac-1', %s, %s, 'abc123', 'anthropic', 'claude-x', %s, %s,"
            " 'summary', '{}', %s, '{}', 'continue', true)",
            [
                checkpoint_id,
                uuid.uuid4(),
                agent_id,
                session_id,
                ts,
                verdict,
                J(
                    []
                    if verdict == "clear"
                    else [
                        {"category": "x", "severity": "high", "description": "d", "evidence": "e"}
                    ]
                ).decode(),
                J({"index": 0, "window_size": 1}).decode(),
            ],
        )

    def exchange(self, agent_id: str, completed_at: datetime, **kw: Any) -> uuid.UUID:
        exchange_id = uuid.uuid4()
        self.conn.execute(
            "INSERT INTO exchanges (exchange_id, agent_id, session_id, provider, model, method,"
            " path, status, streamed, started_at, completed_at, upstream_ms, total_ms, ttfb_ms,"
            " input_tokens, output_tokens, gateway_instance)"
            " VALUES (%s, %s, 'sess-1', 'anthropic', 'claude-x', 'POST', '/v1/messages', 200,"
            " false, %s, %s, 100.0, 101.5, NULL, %s, %s, 'gw-1')",
            [
                exchange_id,
                agent_id,
                completed_at - timedelta(seconds=1),
                completed_at,
                kw.get("input_tokens", 10),
                kw.get("output_tokens", 20),
            ],
        )
        return exchange_id


@pytest.fixture
def rows(db: psycopg.Connection[Any]) -> Rows:
    return Rows(db)


@pytest.fixture
def auth() -> dict[str, str]:
    return dict(AUTH)
