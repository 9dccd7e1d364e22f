"""Property-based run of schemathesis over the WHOLE api, from its own OpenAPI document.

Every operation the app serves when this runs (routes added later are covered without editing
this file) gets ~20 generated requests — positive and negative — with the admin token, against
the app in-process (ASGI, lifespan included) on a fresh, migrated database seeded with rows and
a private Redis prefix. Checks: no 5xx, each documented response matches its schema, and the
content type is the documented one. Generation is derandomized and the database is new per run,
so mutating routes (pause, kill, cards, api keys ...) cannot make it flaky between runs.

Path parameters named like an id are sometimes swapped for a seeded row's id, so the handlers'
success paths are exercised too, not only their 404s.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import hypothesis
import msgspec
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)
from smoltbot_api import ApiSettings, create_app
from smoltbot_testing.env import REDIS_URL
from smoltbot_testing.keys import delete_prefix_sync, unique_prefix

TOKEN = "schemathesis-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES_PER_MODE = 10  # positive + negative: ~20 requests per operation
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
BASE = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
AGENT = "smolt-5eed0001"
SEEDED = {
    "agent_id": AGENT,
    "trace_id": "tr-seed-1",
    "checkpoint_id": "ic-seed-1",
}
J = msgspec.json.encode


def _seed(conn: psycopg.Connection[Any]) -> None:
    """A little of everything the persister writes, for one agent and a second one."""
    for i, agent in enumerate((AGENT, "smolt-5eed0002")):
        conn.execute(
            "INSERT INTO agents (id, agent_hash, name, first_seen_at, last_seen_at)"
            " VALUES (%s, %s, %s, %s, %s)",
            [agent, f"{i:016x}", f"bot-{i}", BASE - timedelta(days=1), BASE],
        )
    for i in range(3):
        trace_id = f"tr-seed-{i}"
        conn.execute(
            "INSERT INTO traces (trace_id, exchange_id, agent_id, card_id, session_id,"
            ' "timestamp", action, decision, context, verified, trace_json)'
            " VALUES (%s, %s, %s, 'ac-1', 'sess-1', %s, %s, %s, '{}', %s, '{}')",
            [
                trace_id,
                uuid.uuid4(),
                AGENT,
                BASE + timedelta(seconds=i),
                J({"type": "execute", "name": f"act-{i}", "category": "bounded"}).decode(),
                J({"selected": "a", "selection_reasoning": "r", "values_applied": []}).decode(),
                i != 1,
            ],
        )
        conn.execute(
            "INSERT INTO verifications (trace_id, agent_id, card_id, verified, similarity_score,"
            " violations, warnings, checks_performed, algorithm_version)"
            " VALUES (%s, %s, 'ac-1', %s, 0.5, '[]', '[]', '[]', 'v1')",
            [trace_id, AGENT, i != 1],
        )
        conn.execute(
            "INSERT INTO integrity_checkpoints (checkpoint_id, exchange_id, agent_id, card_id,"
            ' session_id, "timestamp", thinking_block_hash, provider, model, verdict, concerns,'
            " reasoning_summary, conscience_context, window_position, analysis_metadata,"
            " recommended_action, proceed, synthetic)"
            " VALUES (%s, %s, %s, 'ac-1', 'sess-1', %s, 'abc', 'anthropic', 'claude-x', %s, '[]',"
            " 'summary', '{}', '{\"index\": 0, \"window_size\": 1}', '{}', 'continue', true, %s)",
            [
                f"ic-seed-{i}",
                uuid.uuid4(),
                AGENT,
                BASE + timedelta(seconds=i),
                ["clear", "review_needed", "boundary_violation"][i],
                i == 0,
            ],
        )
        conn.execute(
            "INSERT INTO exchanges (exchange_id, agent_id, session_id, provider, model, method,"
            " path, status, streamed, started_at, completed_at, upstream_ms, total_ms,"
            " input_tokens, output_tokens, gateway_instance)"
            " VALUES (%s, %s, 'sess-1', 'anthropic', 'claude-x', 'POST', '/v1/messages', 200,"
            " false, %s, %s, 100.0, 101.0, 10, 20, 'gw-1')",
            [uuid.uuid4(), AGENT, BASE, BASE + timedelta(seconds=i)],
        )
    conn.execute(
        "INSERT INTO drift_alerts (id, source, agent_id, card_id, session_id, alert_type,"
        " severity, description, streak_start, streak_ids, exchange_id, detected_at, drift_data)"
        " VALUES ('ida-seed-1', 'aip', %s, 'ac-1', 'sess-1', 'aip:informative', 'high', 'd',"
        " 'ic-seed-0', '[]', %s, %s, '{}')",
        [AGENT, uuid.uuid4(), BASE],
    )
    conn.execute(
        "INSERT INTO agent_containment_log (id, agent_id, action, actor, reason, new_status,"
        " decided_at) VALUES ('acl-seed-1', %s, 'auto_pause', 'system', 'streak', 'paused', %s)",
        [AGENT, BASE],
    )


def _wait_started(app: Any, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    with asgi.get_client(app) as client:
        while client.get("/health/startup").status_code != 200:
            assert time.monotonic() < deadline, "api did not start"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def api_schema(migrated_database: Callable[[str], str]) -> Iterator[schemathesis.BaseSchema]:
    database_url = migrated_database("api_schemathesis")  # fresh per run
    with psycopg.connect(database_url, autocommit=True) as conn:
        _seed(conn)
    prefix = unique_prefix()
    app = create_app(
        ApiSettings(
            database_url=database_url,
            admin_token=TOKEN,
            redis_url=REDIS_URL,
            stream_prefix=prefix,
        )
    )
    schema = schemathesis.openapi.from_asgi("/v1/openapi.json", app)

    @schema.hook
    def map_path_parameters(
        context: schemathesis.HookContext, path_parameters: dict[str, Any]
    ) -> dict[str, Any]:
        # Deterministic: about half of the generated ids become a seeded row's id.
        if not path_parameters:
            return path_parameters
        for name, value in list(path_parameters.items()):
            if name in SEEDED and len(str(value)) % 2 == 0:
                path_parameters[name] = SEEDED[name]
        return path_parameters

    _wait_started(app)
    try:
        yield schema
    finally:
        asgi.shutdown_lifespans()  # closes the pool before the database is dropped
        delete_prefix_sync(prefix, REDIS_URL)


def _run_operation(operation: schemathesis.APIOperation) -> list[str]:
    """Up to EXAMPLES_PER_MODE cases per generation mode; the first failure of each mode."""
    failures: list[str] = []
    for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

        @hypothesis.settings(
            max_examples=EXAMPLES_PER_MODE,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
        def check(case: schemathesis.Case) -> None:
            # The generator makes up bearer tokens from the security scheme: use the real one.
            case.headers = {**(case.headers or {}), **AUTH}
            case.call_and_validate(checks=CHECKS)

        try:
            check()
        except Exception as exc:
            failures.append(f"{operation.label} [{mode.value}]: {type(exc).__name__}: {exc}")
    return failures


def test_whole_api_against_its_openapi_document(api_schema: schemathesis.BaseSchema):
    started = time.monotonic()
    operations = [result.ok() for result in api_schema.get_all_operations()]
    labels = {op.label for op in operations}
    # The read surface is there (and whatever other routes exist when this runs).
    assert {
        "GET /v1/agents",
        "GET /v1/traces",
        "GET /v1/agents/{agent_id}/timeline",
        "GET /v1/agents/{agent_id}/integrity",
    } <= labels
    failures = [failure for op in operations for failure in _run_operation(op)]
    assert not failures, "\n\n".join(failures)
    assert time.monotonic() - started < 240, "keep the run well under 5 minutes"
