"""`smoltbot status | integrity | logs` against a running api process on a seeded database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import psycopg
import pytest
from smoltbot_testing.env import REDIS_URL
from smoltbot_testing.keys import delete_prefix_sync, unique_prefix
from smoltbot_testing.net import free_port
from smoltbot_testing.pg import temporary_database

from cli.tests.cli_testkit import json_of, running_api, smoltbot

TOKEN = "cli-owner-admin-token-0123456789"
AGENT = "smolt-0000aaa1"
OTHER = "smolt-0000bbb2"
BASE = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
J = msgspec.json.encode


def _trace(conn: psycopg.Connection[Any], agent: str, trace_id: str, at: datetime) -> None:
    conn.execute(
        'INSERT INTO traces (trace_id, exchange_id, agent_id, card_id, session_id, "timestamp",'
        " action, decision, verified, trace_json)"
        " VALUES (%s, %s, %s, 'ac-1', 'sess-1', %s, %s, '{}', NULL, '{}')",
        [
            trace_id,
            uuid.uuid4(),
            agent,
            at,
            J({"type": "execute", "name": f"act-{trace_id}", "category": "bounded"}).decode(),
        ],
    )


def _checkpoint(
    conn: psycopg.Connection[Any], agent: str, checkpoint_id: str, at: datetime, verdict: str
) -> None:
    conn.execute(
        "INSERT INTO integrity_checkpoints (checkpoint_id, exchange_id, agent_id, card_id,"
        ' session_id, "timestamp", thinking_block_hash, provider, model, verdict, concerns,'
        " reasoning_summary, conscience_context, window_position, analysis_metadata,"
        " recommended_action, proceed)"
        " VALUES (%s, %s, %s, 'ac-1', 'sess-1', %s, 'abc', 'anthropic', 'claude-x', %s, '[]',"
        " 'summary', '{}', '{}', '{}', 'continue', true)",
        [checkpoint_id, uuid.uuid4(), agent, at, verdict],
    )


def _seed(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "INSERT INTO agents (id, agent_hash, name, first_seen_at, last_seen_at, enforcement_mode,"
        " containment_status) VALUES"
        " (%s, '0000aaa100000000', 'billing-bot', %s, %s, 'nudge', 'paused'),"
        " (%s, '0000bbb200000000', NULL, %s, %s, 'observe', 'active')",
        [AGENT, BASE, BASE + timedelta(hours=1), OTHER, BASE, BASE],
    )
    _trace(conn, AGENT, "tr-1", BASE)
    _checkpoint(conn, AGENT, "ic-1", BASE + timedelta(seconds=1), "clear")
    _checkpoint(conn, AGENT, "ic-2", BASE + timedelta(seconds=2), "clear")
    _checkpoint(conn, AGENT, "ic-3", BASE + timedelta(seconds=3), "boundary_violation")
    conn.execute(
        "INSERT INTO agent_containment_log (id, agent_id, action, actor, reason, new_status,"
        " decided_at) VALUES ('acl-1', %s, 'auto_pause', 'system', 'streak', 'paused', %s)",
        [AGENT, BASE + timedelta(seconds=4)],
    )
    _trace(conn, OTHER, "tr-other", BASE + timedelta(seconds=2, milliseconds=500))


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """(api url, database url, key prefix) of one api process for the module."""
    prefix = unique_prefix()
    with temporary_database("cli", migrate=True) as database_url:
        with psycopg.connect(database_url, autocommit=True) as conn:
            _seed(conn)
        try:
            with running_api(database_url, prefix, tmp_path_factory.mktemp("api"), TOKEN) as url:
                yield url, database_url, prefix
        finally:
            delete_prefix_sync(prefix, REDIS_URL)


def run(api: tuple[str, str, str], *args: str, key: str = TOKEN) -> Any:
    url, _, prefix = api
    return smoltbot(prefix, *args, SMOLTBOT_API_URL=url, SMOLTBOT_API_KEY=key)


def test_status_table_and_json(api: tuple[str, str, str]) -> None:
    result = run(api, "status")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "2 agent(s)" in lines[0]
    row = next(line for line in lines if AGENT in line)
    for cell in ("billing-bot", "nudge", "paused", "boundary_violation", "66.7%"):
        assert cell in row, row
    other = next(line for line in lines if OTHER in line)
    assert "observe" in other
    assert "active" in other
    # Most recently seen first.
    assert lines.index(row) < lines.index(other)

    body = json_of(run(api, "status", "--json"))
    assert [a["agent_id"] for a in body["agents"]] == [AGENT, OTHER]
    first = body["agents"][0]
    assert first["enforcement_mode"] == "nudge"
    assert first["containment_status"] == "paused"
    assert first["latest_verdict"] == "boundary_violation"
    assert body["agents"][1]["latest_verdict"] is None


def test_integrity_table_and_json(api: tuple[str, str, str]) -> None:
    result = run(api, "integrity", AGENT)
    assert result.exit_code == 0, result.output
    assert f"{AGENT}: latest verdict boundary_violation" in result.stdout
    aip = next(line for line in result.stdout.splitlines() if "AIP" in line)
    assert "66.7%" in aip
    assert "0 synthetic" in aip
    aap = next(line for line in result.stdout.splitlines() if "AAP" in line)
    assert "1 not verified yet" in aap

    body = json_of(run(api, "integrity", AGENT, "--json"))
    assert body["aip"]["analyzed_checks"] == 3
    assert body["aip"]["violation_count"] == 1
    assert body["aap"]["total_traces"] == 1
    assert body["aap"]["integrity_score"] is None


def test_logs_of_one_agent_oldest_first(api: tuple[str, str, str]) -> None:
    result = run(api, "logs", "-n", "3", AGENT)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert [line.split()[3] for line in lines] == ["ic-2", "ic-3", "acl-1"]
    assert lines[0].startswith("2026-11-01T12:00:02Z  smolt-0000aaa1  checkpoint")
    assert "auto_pause -> paused by system: streak" in lines[2]

    events = [json.loads(line) for line in run(api, "logs", AGENT, "--json").stdout.splitlines()]
    assert [e["id"] for e in events] == ["tr-1", "ic-1", "ic-2", "ic-3", "acl-1"]
    assert events[0]["agent_id"] == AGENT
    assert events[0]["kind"] == "trace"


def test_logs_of_every_agent_are_merged_by_time(api: tuple[str, str, str]) -> None:
    result = run(api, "logs", "-n", "3")
    assert result.exit_code == 0, result.output
    ids = [line.split()[3] for line in result.stdout.splitlines()]
    assert ids == ["tr-other", "ic-3", "acl-1"]


def test_logs_follow_prints_new_events(api: tuple[str, str, str]) -> None:
    url, database_url, prefix = api
    env = {
        **os.environ,
        "SMOLTBOT_API_URL": url,
        "SMOLTBOT_API_KEY": TOKEN,
        "REDIS_URL": REDIS_URL,
        "SMOLTBOT_STREAM_PREFIX": prefix,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "smoltbot_cli", "logs", "-n", "1", "--follow", "--interval", "0.2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().split()[3] == "acl-1"
        with psycopg.connect(database_url, autocommit=True) as conn:
            _trace(conn, OTHER, "tr-new", BASE + timedelta(minutes=5))
        deadline = time.monotonic() + 20
        line = proc.stdout.readline()
        assert time.monotonic() < deadline
        assert line.split()[1:4] == [OTHER, "trace", "tr-new"], line
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("DELETE FROM traces WHERE trace_id = 'tr-new'")


def test_unknown_agent_is_one_line(api: tuple[str, str, str]) -> None:
    for args in (("integrity", "smolt-nope0000"), ("logs", "smolt-nope0000")):
        result = run(api, *args)
        assert result.exit_code == 1
        assert result.stderr == "smoltbot: 404: agent 'smolt-nope0000' not found\n"


def test_wrong_key_and_no_api_are_one_line(api: tuple[str, str, str]) -> None:
    result = run(api, "status", key="not-the-token-at-all")
    assert result.exit_code == 1
    assert result.stderr.startswith("smoltbot: 401: ")
    assert len(result.stderr.splitlines()) == 1

    _, _, prefix = api
    down = f"http://127.0.0.1:{free_port()}"
    result = smoltbot(prefix, "status", SMOLTBOT_API_URL=down, SMOLTBOT_API_KEY=TOKEN)
    assert result.exit_code == 1
    assert result.stderr == (
        f"smoltbot: cannot reach the api at {down} (Connection refused); is it running?"
        " (SMOLTBOT_API_URL)\n"
    )
