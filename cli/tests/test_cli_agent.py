"""`smoltbot agent show|pause|resume|kill|reactivate` against a running api process (which
writes PostgreSQL, then cfg:{agent}), their one-line errors, and `smoltbot cache rebuild`
(cfg:{agent} rewritten from PostgreSQL directly)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec
import psycopg
import pytest
import redis
from click.testing import Result
from smoltbot_contracts import AgentConfig
from smoltbot_contracts.streams import cfg_key
from smoltbot_testing.net import free_port

from cli.tests.cli_testkit import json_of, running_api, smoltbot

AGENT = "smolt-0000beef"
TOKEN = "cli-admin-token-0123456789abcdef"


@pytest.fixture(scope="module")
def database_url(migrated_database: Callable[[str], str]) -> str:
    return migrated_database("cli_agent")


@pytest.fixture
def api_url(database_url: str, prefix: str, tmp_path: Path) -> Iterator[str]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE agents, agent_containment_log, api_keys CASCADE")
        now = datetime.now(UTC)
        conn.execute(
            "INSERT INTO agents (id, agent_hash, first_seen_at, last_seen_at)"
            " VALUES (%s, 'beefbeefbeefbeef', %s, %s)",
            [AGENT, now, now],
        )
    with running_api(database_url, prefix, tmp_path, TOKEN) as url:
        yield url


def agent_cmd(prefix: str, api_url: str, *args: str, key: str = TOKEN) -> Result:
    return smoltbot(prefix, "agent", *args, SMOLTBOT_API_URL=api_url, SMOLTBOT_API_KEY=key)


def stored(redis_sync: redis.Redis, prefix: str) -> AgentConfig:
    raw = redis_sync.hget(cfg_key(prefix, AGENT), "b")
    assert isinstance(raw, bytes)
    return msgspec.msgpack.decode(raw, type=AgentConfig)


def test_pause_show_resume_kill_through_the_api(
    prefix: str, api_url: str, redis_sync: redis.Redis
) -> None:
    paused = smoltbot(
        prefix,
        "agent",
        "pause",
        AGENT,
        "--reason",
        "runaway tool use",
        "--api-url",
        api_url,
        "--api-key",
        TOKEN,
    )
    assert paused.exit_code == 0, paused.output
    assert f"{AGENT}: active -> paused (cfg_version 1)" in paused.output
    assert (stored(redis_sync, prefix).containment, stored(redis_sync, prefix).cfg_version) == (
        "paused",
        1,
    )

    shown = agent_cmd(prefix, api_url, "show", AGENT)
    assert shown.exit_code == 0, shown.output
    assert f"{AGENT}: paused, mode observe" in shown.output
    assert "runaway tool use" in shown.output
    as_json = json_of(agent_cmd(prefix, api_url, "show", AGENT, "--json"))
    assert as_json["containment"]["status"] == "paused"
    assert as_json["enforcement"]["cfg_version"] == 1

    resumed = agent_cmd(prefix, api_url, "resume", AGENT)
    assert resumed.exit_code == 0, resumed.output
    assert "paused -> active (cfg_version 2)" in resumed.output
    assert stored(redis_sync, prefix).containment == "active"

    killed = json_of(agent_cmd(prefix, api_url, "kill", AGENT, "--reason", "leak", "--json"))
    assert (killed["containment_status"], killed["containment_reason"]) == ("killed", "leak")
    assert stored(redis_sync, prefix).containment == "killed"

    wrong = agent_cmd(prefix, api_url, "resume", AGENT)
    assert wrong.exit_code == 1
    assert wrong.output.strip().splitlines() == ["smoltbot: 409: agent is killed; use reactivate"]
    back = agent_cmd(prefix, api_url, "reactivate", AGENT)
    assert back.exit_code == 0, back.output
    assert "killed -> active" in back.output


def test_errors_are_one_line(prefix: str, api_url: str) -> None:
    missing = agent_cmd(prefix, api_url, "pause", "smolt-nope")
    assert missing.exit_code == 1
    assert missing.output.strip() == "smoltbot: 404: agent smolt-nope not found"

    bad_key = agent_cmd(prefix, api_url, "pause", AGENT, key="wrong-token-0123456789")
    assert bad_key.exit_code == 1
    assert bad_key.output.strip().startswith("smoltbot: 401: ")
    assert "SMOLTBOT_API_KEY" in bad_key.output
    assert len(bad_key.output.strip().splitlines()) == 1

    created = httpx.post(
        f"{api_url}/v1/api-keys",
        json={"name": "reader", "scope": "read"},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    reader = created.json()["key"]
    assert agent_cmd(prefix, api_url, "show", AGENT, key=reader).exit_code == 0
    forbidden = agent_cmd(prefix, api_url, "pause", AGENT, key=reader)
    assert forbidden.exit_code == 1
    assert forbidden.output.strip().startswith("smoltbot: 403: ")
    assert "scope write" in forbidden.output
    assert len(forbidden.output.strip().splitlines()) == 1

    no_key = smoltbot(prefix, "agent", "show", AGENT, "--api-url", api_url)
    assert no_key.exit_code == 1
    assert "no API key" in no_key.output

    down = f"http://127.0.0.1:{free_port()}"
    refused = agent_cmd(prefix, down, "show", AGENT)
    assert refused.exit_code == 1
    assert refused.output.strip() == (
        f"smoltbot: cannot reach the api at {down} (Connection refused); is it running? "
        "(SMOLTBOT_API_URL)"
    )


def test_cache_rebuild_rewrites_cfg_from_postgresql(
    prefix: str, api_url: str, database_url: str, redis_sync: redis.Redis
) -> None:
    assert agent_cmd(prefix, api_url, "pause", AGENT).exit_code == 0
    redis_sync.delete(cfg_key(prefix, AGENT))
    rebuilt = smoltbot(prefix, "cache", "rebuild", DATABASE_URL=database_url)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "cfg rebuilt: 1 written, 0 already current" in rebuilt.output
    config = stored(redis_sync, prefix)
    assert (config.containment, config.cfg_version) == ("paused", 1)

    again = smoltbot(prefix, "cache", "rebuild", AGENT, "--json", DATABASE_URL=database_url)
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == {"written": [], "unchanged": 1, "unknown": []}
    unknown = smoltbot(prefix, "cache", "rebuild", "smolt-nope", DATABASE_URL=database_url)
    assert unknown.exit_code == 1
    assert "smolt-nope: no such agent in PostgreSQL" in unknown.output
