"""`smoltbot replay STREAM --group G --from X [--to Y]` against the real Redis."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import redis

from cli.tests.cli_testkit import beat, consume, group_row, json_of, seed, smoltbot

PLAN_KEYS = [
    "stream",
    "group",
    "start",
    "end",
    "position",
    "method",
    "redeliver",
    "undelivered",
    "already_pending",
    "live",
    "rewind_to",
    "entries_read",
    "dry_run",
    "replayed",
]


def two_groups_done(client: redis.Redis, prefix: str, n: int) -> tuple[str, list[str]]:
    """``verdicts`` with ``n`` entries, one a second, handled and acked by the persister (live)
    and the notifier."""
    key = f"{prefix}verdicts"
    ids = seed(client, key, n, first_ms=int(time.time() * 1000) - 60_000)
    for group in ("persister", "notifier"):
        consume(client, key, group, n)
        beat(client, prefix, "verdicts", group)
    return key, ids


def test_without_to_the_group_is_rewound_and_no_other_group_moves(
    prefix: str, redis_sync: redis.Redis
) -> None:
    key, ids = two_groups_done(redis_sync, prefix, 10)
    notifier = group_row(redis_sync, key, "notifier")

    replay = ["replay", "verdicts", "--group", "persister", "--from", "0", "--json"]
    dry = json_of(smoltbot(prefix, *replay, "--dry-run"))
    assert list(dry) == PLAN_KEYS  # stable, documented keys
    assert (dry["method"], dry["redeliver"], dry["dry_run"], dry["replayed"]) == (
        "rewind",
        10,
        True,
        0,
    )
    assert group_row(redis_sync, key, "persister")["lag"] == 0  # a dry run changes nothing

    done = json_of(smoltbot(prefix, *replay))
    assert (done["replayed"], done["rewind_to"], done["position"]) == (10, "0-0", ids[-1])
    assert group_row(redis_sync, key, "persister")["lag"] == 10
    assert group_row(redis_sync, key, "notifier") == notifier
    again = redis_sync.xreadgroup("persister", "c1", {key: ">"})
    assert [i.decode() for i, _ in again[0][1]] == ids


def test_a_time_range_before_the_position_goes_back_to_the_pending_list(
    prefix: str, redis_sync: redis.Redis
) -> None:
    key, ids = two_groups_done(redis_sync, prefix, 10)
    ms = [int(i.split("-")[0]) for i in ids]
    start = datetime.fromtimestamp(ms[2] / 1000, UTC).isoformat()  # with its zone
    end = datetime.fromtimestamp(ms[4] / 1000, UTC).replace(tzinfo=None).isoformat()  # UTC

    replay = ["replay", "verdicts", "--group", "persister", "--from", start, "--to", end]
    result = smoltbot(prefix, *replay, TTY_COMPATIBLE="1")
    assert result.exit_code == 0, result.output
    assert "put 3 entries back into the pending list of persister on verdicts" in result.stdout
    assert "replaying verdicts to persister" in result.stderr  # the progress bar, on a terminal

    rows = redis_sync.xpending_range(key, "persister", min="-", max="+", count=10)
    assert [(r["message_id"].decode(), r["consumer"]) for r in rows] == [
        (i, b"smoltbot-replay") for i in ids[2:5]
    ]
    assert group_row(redis_sync, key, "persister")["last-delivered-id"].decode() == ids[-1]
    assert redis_sync.xpending(key, "notifier")["pending"] == 0

    # A second time: they are pending already, so they are left as they are.
    replay = ["replay", "verdicts", "-g", "persister", "--from", ids[2], "--to", ids[4]]
    again = json_of(smoltbot(prefix, *replay, "--json"))
    assert (again["method"], again["already_pending"], again["replayed"]) == ("none", 3, 0)


def test_shorthand_and_range_command_are_one_and_rewind_stays(
    prefix: str, redis_sync: redis.Redis
) -> None:
    two_groups_done(redis_sync, prefix, 3)
    args = ["verdicts", "-g", "persister", "--from", "0", "--dry-run", "--json"]
    assert json_of(smoltbot(prefix, "replay", *args)) == json_of(
        smoltbot(prefix, "replay", "range", *args)
    )
    text = smoltbot(prefix, "replay", "verdicts", "-g", "persister", "--from", "0", "--dry-run")
    assert "would rewind persister on verdicts to 0-0" in text.stdout
    rewind = smoltbot(prefix, "replay", "rewind", "verdicts", "persister", "--to", "0")
    assert rewind.exit_code == 0, rewind.output
    assert "now re-reads entries after 0-0" in rewind.stdout


def test_mistakes_are_named(prefix: str, redis_sync: redis.Redis) -> None:
    two_groups_done(redis_sync, prefix, 3)
    unknown = smoltbot(prefix, "replay", "verdicts", "-g", "nope", "--from", "0")
    assert unknown.exit_code == 1
    assert "no group 'nope' on verdicts (its groups: notifier, persister)" in unknown.stderr
    missing = smoltbot(prefix, "replay", "agents", "-g", "persister", "--from", "0")
    assert missing.exit_code == 1
    assert "stream agents does not exist" in missing.stderr
    backwards = smoltbot(
        prefix, "replay", "verdicts", "-g", "persister", "--from", "5-0", "--to", "4"
    )
    assert backwards.exit_code == 2
    assert "--to is before --from" in backwards.stderr
    garbage = smoltbot(prefix, "replay", "verdicts", "-g", "persister", "--from", "yesterday")
    assert garbage.exit_code == 2
    assert "ISO time" in garbage.stderr
    assert smoltbot(prefix, "replay", "nope", "-g", "persister", "--from", "0").exit_code == 2
    assert smoltbot(prefix, "replay", "verdicts", "--from", "0").exit_code == 2  # no --group


def test_help_explains_the_design_to_an_operator(prefix: str) -> None:
    group = smoltbot(prefix, "replay", "--help").stdout
    for words in ("ONE consumer group", "replay range", "rewind", "Examples"):
        assert words in group
    command = smoltbot(prefix, "replay", "verdicts", "--help").stdout
    for words in ("--group", "--from", "--dry-run", "XGROUP SETID", "pending list", "Safe"):
        assert words in command
    assert "STREAM is a logical stream name: exchanges" in command
