"""`smoltbot dlq` and `smoltbot replay` against the real Redis."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import redis
from click.testing import CliRunner
from smoltbot_cli.main import cli
from smoltbot_contracts import ExchangeV1
from smoltbot_contracts.codec import decode_fields, to_fields
from smoltbot_testing.dead_letters import observer_dead_letter, sealed_fields
from smoltbot_testing.events import exchange_event
from smoltbot_testing.keys import REDIS_URL

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SECRET = b"the user's private prompt answer"


def exchange() -> ExchangeV1:
    return exchange_event(SECRET)


def run(prefix: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli, list(args), env={"REDIS_URL": REDIS_URL, "SMOLTBOT_STREAM_PREFIX": prefix}
    )
    return result.exit_code, result.output


def dead_letter(client: redis.Redis, prefix: str, event: ExchangeV1) -> str:
    fields = {
        **to_fields(event),
        b"reason": b"invalid: broken",
        b"deliveries": b"3",
        b"source_stream": b"exchanges",
        b"group": b"observer",
    }
    return client.xadd(f"{prefix}dlq:exchanges", fields).decode()


def test_list_and_show_redact_bodies_unless_revealed(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    event = exchange()
    dlq_id = dead_letter(client, prefix, event)

    code, out = run(prefix, "dlq", "list")
    assert code == 0
    assert "invalid: broken" in out
    assert event.event_id in out
    assert "private prompt" not in out

    code, out = run(prefix, "dlq", "list", "--json")
    rows = json.loads(out)
    assert rows[0]["deliveries"] == 3
    assert rows[0]["dlq_id"] == dlq_id

    code, out = run(prefix, "dlq", "show", "exchanges", dlq_id)
    assert code == 0
    assert "redacted" in out
    assert "private prompt" not in out

    code, out = run(prefix, "dlq", "show", "exchanges", dlq_id, "--reveal")
    assert code == 0
    assert json.loads(out)["event"]["event_id"] == event.event_id

    code, out = run(prefix, "dlq", "show", "exchanges", "1-1")
    assert code == 1


def test_redrive_puts_entries_back_and_empties_the_dlq(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    events = [exchange() for _ in range(3)]
    for e in events:
        dead_letter(client, prefix, e)

    code, out = run(prefix, "dlq", "redrive", "exchanges", "--all", "--dry-run")
    assert code == 0
    assert "would re-drive 3" in out
    assert client.xlen(f"{prefix}dlq:exchanges") == 3

    code, out = run(prefix, "dlq", "redrive", "exchanges", "--all")
    assert code == 0
    assert "re-drove 3" in out
    assert client.xlen(f"{prefix}dlq:exchanges") == 0
    back = [decode_fields(f) for _, f in client.xrange(f"{prefix}exchanges")]
    assert back == events
    assert b"reason" not in client.xrange(f"{prefix}exchanges")[0][1]

    code, out = run(prefix, "dlq", "redrive", "exchanges")
    assert code == 2  # neither --id nor --all


def test_replay_rewind_redelivers_acked_entries(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    key = f"{prefix}exchanges"
    ids = [client.xadd(key, to_fields(exchange())) for _ in range(3)]
    client.xgroup_create(key, "observer", id="0")
    client.xreadgroup("observer", "c", {key: ">"})
    client.xack(key, "observer", *ids)
    assert client.xreadgroup("observer", "c", {key: ">"}) == []

    code, out = run(prefix, "replay", "rewind", "exchanges", "observer", "--to", "0")
    assert code == 0, out
    again = client.xreadgroup("observer", "c", {key: ">"})
    assert [i for i, _ in again[0][1]] == ids

    code, out = run(prefix, "replay", "rewind", "exchanges", "observer", "--to", "yesterday")
    assert code == 2
    assert "ISO time" in out
    code, _ = run(prefix, "replay", "rewind", "nope", "observer", "--to", "0")
    assert code == 2


def test_dead_letters_written_by_the_bus_read_through_the_same_struct(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    event = exchange()
    sealed = sealed_fields(event)
    letter = observer_dead_letter(
        sealed,
        reason="exceeded 5 deliveries: RuntimeError: no",
        deliveries=5,
        source_id="1700000000000-0",
    )
    dlq_id = client.xadd(f"{prefix}dlq:exchanges", letter.to_fields()).decode()

    code, out = run(prefix, "dlq", "list", "--stream", "exchanges", "--json")
    assert code == 0
    (row,) = json.loads(out)
    assert row == {
        "stream": "exchanges",
        "dlq_id": dlq_id,
        "type": "exchange.v1",
        "event_id": event.event_id,
        "reason": "exceeded 5 deliveries: RuntimeError: no",
        "deliveries": 5,
        "group": "observer",
        "failed_at": letter.failed_at,
        "source_id": "1700000000000-0",
        "body_bytes": len(sealed[b"b"]),
        "encrypted": True,
    }

    code, out = run(prefix, "dlq", "show", "exchanges", dlq_id, "--reveal")
    assert code == 0  # no key configured: the sealed body cannot be opened, and says so
    shown = json.loads(out)
    assert shown["event"] is None
    assert "unknown event key" in shown["decode_error"]

    code, _ = run(prefix, "dlq", "redrive", "exchanges", "--id", dlq_id)
    assert code == 0
    ((_, back),) = client.xrange(f"{prefix}exchanges")
    assert back == sealed  # exactly the wire fields, still sealed
