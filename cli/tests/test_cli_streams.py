"""`smoltbot streams` and `smoltbot trim` against the real Redis."""

from __future__ import annotations

import redis
from smoltbot_contracts.streams import ALL_STREAMS

from cli.tests.cli_testkit import beat, consume, json_of, seed, smoltbot

STREAM_KEYS = [
    "stream",
    "length",
    "first_id",
    "last_id",
    "dlq_length",
    "groups",
    "stale_groups",
]
GROUP_KEYS = [
    "group",
    "live",
    "consumers",
    "last_delivered_id",
    "lag",
    "pending",
    "oldest_pending_age_s",
]


def test_streams_shows_every_stream_with_its_groups_and_dead_letters(
    prefix: str, redis_sync: redis.Redis
) -> None:
    key = f"{prefix}verdicts"
    ids = seed(redis_sync, key, 5)
    consume(redis_sync, key, "persister", 3, ack=1)  # 2 pending, 2 unread
    beat(redis_sync, prefix, "verdicts", "persister")
    consume(redis_sync, key, "notifier", 5)  # no heartbeat: stale
    for _ in range(2):
        redis_sync.xadd(f"{prefix}dlq:verdicts", {b"reason": b"[red]not markup"})

    doc = json_of(smoltbot(prefix, "streams", "--json"))
    assert doc["prefix"] == prefix
    assert [s["stream"] for s in doc["streams"]] == list(ALL_STREAMS)
    verdicts = next(s for s in doc["streams"] if s["stream"] == "verdicts")
    assert list(verdicts) == STREAM_KEYS  # stable, documented keys
    assert (verdicts["length"], verdicts["dlq_length"]) == (5, 2)
    assert (verdicts["first_id"], verdicts["last_id"]) == (ids[0], ids[-1])
    assert verdicts["stale_groups"] == ["notifier"]
    persister = next(g for g in verdicts["groups"] if g["group"] == "persister")
    assert list(persister) == GROUP_KEYS
    assert (persister["live"], persister["lag"], persister["pending"]) == (True, 2, 2)
    assert persister["last_delivered_id"] == ids[2]
    assert [(c["name"], c["pending"]) for c in persister["consumers"]] == [("c1", 2)]
    empty = next(s for s in doc["streams"] if s["stream"] == "control")
    assert (empty["length"], empty["groups"], empty["first_id"]) == (0, [], None)

    table = smoltbot(prefix, "streams")
    assert table.exit_code == 0, table.output
    rows = {line.split("│")[4].strip(): line for line in table.stdout.splitlines() if "│" in line}
    assert "STALE" in rows["notifier"]
    assert [c.strip() for c in rows["persister"].split("│")[1:-1]][:8] == [
        "verdicts",
        "5",
        "2",
        "persister",
        "yes",
        "1",
        "2",
        "2",
    ]

    one = json_of(smoltbot(prefix, "streams", "verdicts", "--json"))
    assert [s["stream"] for s in one["streams"]] == ["verdicts"]
    assert smoltbot(prefix, "streams", "nope").exit_code == 2


def test_trim_dry_run_then_trim_never_passes_a_live_groups_floor(
    prefix: str, redis_sync: redis.Redis
) -> None:
    key = f"{prefix}agents"
    ids = [redis_sync.xadd(key, {b"n": b"x"}, id=f"{1000 + i}-0") for i in range(300)]
    consume(redis_sync, key, "slow", 150, ack=120)  # its floor: 1120-0
    beat(redis_sync, prefix, "agents", "slow")
    consume(redis_sync, key, "abandoned", 1)

    dry = json_of(smoltbot(prefix, "trim", "--dry-run", "--json"))
    assert (dry["dry_run"], dry["under_pressure"]) == (True, False)
    by_stream = {s["stream"]: s for s in dry["streams"]}
    assert list(by_stream) == list(ALL_STREAMS)
    assert by_stream["agents"] == {
        "stream": "agents",
        "length": 300,
        "retention_s": 86400,
        "trim_point": "1120-0",
        "held_by": ["slow"],
        "stale_groups": ["abandoned"],
        "removed": 120,
    }
    assert by_stream["exchanges"]["retention_s"] == 900
    assert redis_sync.xlen(key) == 300  # a dry run removes nothing

    done = json_of(smoltbot(prefix, "trim", "agents", "--json"))
    (agents,) = done["streams"]
    assert 0 < agents["removed"] <= 120  # whole nodes, never past the floor
    remaining = [i for i, _ in redis_sync.xrange(key)]
    assert len(remaining) == 300 - agents["removed"]
    assert ids[120] in remaining

    table = smoltbot(prefix, "trim", "agents", "--dry-run", SMOLTBOT_BUS_RETENTION_S="60")
    assert table.exit_code == 0, table.output
    assert "dry run" in table.stdout
    line = next(row for row in table.stdout.splitlines() if "agents" in row)
    for word in ("1m00s", "1120-0", "slow", "abandoned", "up to"):
        assert word in line
