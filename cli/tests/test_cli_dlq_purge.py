"""`smoltbot dlq purge` (and `dlq redrive --json`) against the real Redis."""

from __future__ import annotations

import redis

from cli.tests.cli_testkit import json_of, smoltbot


def dead_letters(client: redis.Redis, prefix: str, stream: str, ids: list[str]) -> str:
    key = f"{prefix}dlq:{stream}"
    for entry_id in ids:
        client.xadd(key, {b"t": b"verdict.v1", b"id": b"e", b"reason": b"invalid: x"}, id=entry_id)
    return key


def test_purge_before_a_time_asks_first_and_touches_nothing_else(
    prefix: str, redis_sync: redis.Redis
) -> None:
    key = dead_letters(redis_sync, prefix, "verdicts", ["1000-0", "2000-0", "3000-0"])
    redis_sync.xadd(key, {b"reason": b"fresh"})
    other = dead_letters(redis_sync, prefix, "agents", ["1000-0"])

    purge = ["dlq", "purge", "verdicts", "--before", "2500", "--json"]
    dry = json_of(smoltbot(prefix, *purge, "--dry-run"))
    assert dry == {"stream": "verdicts", "before": "2500-0", "dry_run": True, "count": 2}
    assert redis_sync.xlen(key) == 4

    before = ["dlq", "purge", "verdicts", "--before", "1970-01-01T00:00:02.500Z"]
    declined = smoltbot(prefix, *before, stdin="n\n")
    assert declined.exit_code == 1
    assert "Purge 2 dead letters of verdicts written before 2500-0 for good?" in declined.output
    assert redis_sync.xlen(key) == 4

    accepted = smoltbot(prefix, *before, stdin="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert "purged 2 dead letters of verdicts before 2500-0" in accepted.stdout
    assert [i for i, _ in redis_sync.xrange(key)][0] == b"3000-0"
    assert redis_sync.xlen(other) == 1


def test_purge_all_needs_yes_or_a_confirmation(prefix: str, redis_sync: redis.Redis) -> None:
    key = dead_letters(redis_sync, prefix, "exchanges", ["1-0", "2-0"])
    assert (
        smoltbot(prefix, "dlq", "purge", "exchanges").exit_code == 2
    )  # neither --all nor --before
    both = smoltbot(prefix, "dlq", "purge", "exchanges", "--all", "--before", "1")
    assert both.exit_code == 2
    assert "--before ID|TIME or --all" in both.stderr

    done = json_of(smoltbot(prefix, "dlq", "purge", "exchanges", "--all", "--yes", "--json"))
    assert done == {"stream": "exchanges", "before": None, "dry_run": False, "count": 2}
    assert redis_sync.xlen(key) == 0
    empty = smoltbot(prefix, "dlq", "purge", "exchanges", "--all")  # nothing to ask about
    assert empty.exit_code == 0
    assert "purged 0 dead letters of exchanges" in empty.stdout


def test_redrive_reports_json(prefix: str, redis_sync: redis.Redis) -> None:
    dead_letters(redis_sync, prefix, "verdicts", ["1-0", "2-0"])
    doc = json_of(smoltbot(prefix, "dlq", "redrive", "verdicts", "--all", "--json"))
    assert doc == {"stream": "verdicts", "dry_run": False, "count": 2, "dlq_ids": ["1-0", "2-0"]}
    assert [f[b"id"] for _, f in redis_sync.xrange(f"{prefix}verdicts")] == [b"e", b"e"]
    assert b"reason" not in redis_sync.xrange(f"{prefix}verdicts")[0][1]


def test_help_says_what_is_safe(prefix: str) -> None:
    text = smoltbot(prefix, "dlq", "purge", "--help").stdout
    for words in ("Irreversible", "--yes", "--dry-run", "--before", "--all", "Examples"):
        assert words in text
