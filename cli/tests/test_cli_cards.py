"""`smoltbot card show|publish` against a running api process (real PostgreSQL and Redis)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest
import redis
from smoltbot_contracts import CardRecord
from smoltbot_contracts.streams import card_key
from smoltbot_testing.net import free_port
from smoltbot_testing.pg import temporary_database

from cli.tests.cli_testkit import json_of, running_api, smoltbot

TOKEN = "cli-cards-admin-token-0123456789"
AGENT = "smolt-0000ca7d"


@pytest.fixture
def api_url(prefix: str, tmp_path: Path) -> Iterator[str]:
    with temporary_database("cli", migrate=True) as database_url:
        with psycopg.connect(database_url, autocommit=True) as conn:
            now = datetime.now(UTC)
            conn.execute(
                "INSERT INTO agents (id, agent_hash, first_seen_at, last_seen_at)"
                " VALUES (%s, '0000ca7d00000000', %s, %s)",
                [AGENT, now, now],
            )
        with running_api(database_url, prefix, tmp_path, TOKEN) as url:
            yield url


def card(card_id: str = "ac-0000ca7d-v1") -> dict[str, Any]:
    return {
        "aap_version": "0.1.0",
        "card_id": card_id,
        "agent_id": AGENT,
        "issued_at": "2026-11-01T12:00:00Z",
        "principal": {"type": "human", "relationship": "delegated_authority"},
        "values": {"declared": ["transparency"]},
        "autonomy_envelope": {
            "bounded_actions": ["inference", "search"],
            "escalation_triggers": [],
            "forbidden_actions": ["delete_files"],
        },
        "audit_commitment": {"retention_days": 30},
    }


def run(prefix: str, api_url: str, *args: str, key: str = TOKEN) -> Any:
    return smoltbot(prefix, *args, SMOLTBOT_API_URL=api_url, SMOLTBOT_API_KEY=key)


def test_publish_then_show(
    prefix: str, api_url: str, tmp_path: Path, redis_sync: redis.Redis
) -> None:
    shown = run(prefix, api_url, "card", "show", AGENT)
    assert shown.exit_code == 0, shown.output
    assert f"{AGENT}: card ac-0000ca7d default" in shown.output

    path = tmp_path / "card.json"
    path.write_text(json.dumps(card()))
    published = run(prefix, api_url, "card", "publish", AGENT, str(path))
    assert published.exit_code == 0, published.output
    assert f"{AGENT}: published ac-0000ca7d-v1 as version 1 (card:{{agent}} written)" in (
        published.output
    )
    raw = redis_sync.get(card_key(prefix, AGENT))
    assert raw is not None
    assert msgspec.msgpack.decode(raw, type=CardRecord).card_id == "ac-0000ca7d-v1"

    text = run(prefix, api_url, "card", "show", AGENT)
    assert text.exit_code == 0, text.output
    assert "version 1" in text.output
    assert "inference, search" in text.output
    assert "delete_files" in text.output
    view = json_of(run(prefix, api_url, "card", "show", AGENT, "--json"))
    assert view["card"] == card()
    assert view["version"] == 1

    # The {card, conscience_values} form, and --json.
    path.write_text(
        json.dumps(
            {
                "card": card("ac-0000ca7d-v2"),
                "conscience_values": [{"type": "BOUNDARY", "content": "Never delete files"}],
            }
        )
    )
    second = json_of(run(prefix, api_url, "card", "publish", AGENT, str(path), "--json"))
    assert (second["version"], second["cache"]) == (2, "written")
    view = json_of(run(prefix, api_url, "card", "show", AGENT, "--json"))
    assert [v["content"] for v in view["layers"]["conscience_values"]] == ["Never delete files"]


def test_errors_are_one_line(prefix: str, api_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**card(), "values": {"declared": "transparency"}}))
    invalid = run(prefix, api_url, "card", "publish", AGENT, str(bad))
    assert invalid.exit_code == 1
    assert invalid.output.strip() == ("smoltbot: 422: card.values.declared: must be a list")
    missing = run(prefix, api_url, "card", "show", "smolt-nope0000")
    assert missing.exit_code == 1
    assert missing.output.strip() == "smoltbot: 404: agent 'smolt-nope0000' not found"
    wrong_key = run(prefix, api_url, "card", "show", AGENT, key="not-a-key")
    assert wrong_key.exit_code == 1
    assert "401" in wrong_key.output
    assert len(wrong_key.output.strip().splitlines()) == 1
    not_json = tmp_path / "x.json"
    not_json.write_text("{nope")
    unreadable = run(prefix, api_url, "card", "publish", AGENT, str(not_json))
    assert unreadable.exit_code == 2
    assert unreadable.output.startswith(f"smoltbot: {not_json}: not valid JSON")


def test_unreachable_api_is_one_line(prefix: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run(prefix, url, "card", "show", AGENT)
    assert result.exit_code == 1
    assert result.output.startswith(f"smoltbot: cannot reach the api at {url}")
    assert len(result.output.strip().splitlines()) == 1
