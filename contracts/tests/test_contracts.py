"""Wire-format tests: golden bytes, round trips, schema drift, id derivation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from smoltbot_contracts import AgentV1, ExchangeV1, Usage, ids
from smoltbot_contracts.codec import DecodeError, decode_fields, to_fields
from smoltbot_contracts.schemas import render_all
from smoltbot_testing.events import exchange_meta, messages_exchange

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"
WHEN = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)


def _exchange() -> ExchangeV1:
    meta = exchange_meta(
        "test-api-key",  # agent smolt-4c806362, session 4c806362b613f749-473698
        WHEN,
        exchange_id="0190a000-0000-7000-8000-000000000001",
        model="claude-x",
        usage=Usage(input_tokens=3, output_tokens=5),
    )
    return messages_exchange(meta, b"{}", user_query="hi")


GOLDEN_AGENT = (
    "86a474797065a86167656e742e7631a86576656e745f6964a165a86167656e745f6964ae736d6f6c742d3463"
    "383036333632aa6167656e745f68617368b034633830363336326236313366373439a46e616d65c0a77365656e"
    "5f6174d6ff65a50928"
)


def test_agent_event_golden_bytes() -> None:
    event = AgentV1(
        event_id="e", agent_id="smolt-4c806362", agent_hash="4c806362b613f749", seen_at=WHEN
    )
    body = to_fields(event)[b"b"]
    # Pins field order, tag placement, map (not array) encoding and the timestamp extension.
    assert body.hex() == GOLDEN_AGENT
    assert msgspec.msgpack.decode(body)["type"] == "agent.v1"


def test_round_trip_every_field() -> None:
    event = _exchange()
    fields = to_fields(event)
    assert fields[b"t"] == b"exchange.v1"
    assert fields[b"id"] == event.event_id.encode()
    assert decode_fields(fields) == event


def test_unknown_fields_are_ignored_by_old_readers() -> None:
    raw = msgspec.msgpack.decode(to_fields(_exchange())[b"b"])
    raw["some_future_field"] = {"x": 1}
    fields = {
        b"t": b"exchange.v1",
        b"id": raw["event_id"].encode(),
        b"b": msgspec.msgpack.encode(raw),
    }
    assert decode_fields(fields) == _exchange()


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({b"id": b"x", b"b": b""}, "missing field 't'"),
        ({b"t": b"nope.v9", b"id": b"x", b"b": b"\x80"}, "unknown event type"),
        ({b"t": b"agent.v1", b"id": b"x", b"b": b"\xc1"}, "agent.v1"),
        (
            {b"t": b"agent.v1", b"id": b"x", b"b": msgspec.msgpack.encode({"type": "agent.v1"})},
            "missing required field",
        ),
    ],
)
def test_malformed_entries_raise_decode_error(fields: dict[bytes, bytes], reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode_fields(fields)


def test_entry_id_must_match_body() -> None:
    fields = to_fields(_exchange())
    fields[b"id"] = b"other"
    with pytest.raises(DecodeError, match="does not match"):
        decode_fields(fields)


def test_checked_in_schemas_match_structs() -> None:
    rendered = render_all()
    on_disk = {p.name: p.read_bytes() for p in SCHEMA_DIR.glob("*.json")}
    assert set(on_disk) == set(rendered), "run `make schemas`"
    for name, data in rendered.items():
        assert on_disk[name] == data, f"{name} drifted from the structs: run `make schemas`"


def test_identity_vectors() -> None:
    assert ids.agent_hash("test") == "9f86d081884c7d65"
    assert ids.agent_hash("test-api-key") == "4c806362b613f749"
    assert ids.agent_id("4c806362b613f749") == "smolt-4c806362"
    assert ids.card_id("smolt-4c806362") == "ac-4c806362"
    assert ids.session_id("test", WHEN) == "test-473698"
    assert ids.session_id("test", datetime.fromtimestamp(3600, UTC)) == "test-1"
    assert ids.agent_hash("k", "bot") != ids.agent_hash("k")


def test_derived_ids_are_stable_and_distinct() -> None:
    eid = ids.uuid7()
    assert ids.checkpoint_id(eid) == ids.checkpoint_id(eid)
    assert ids.checkpoint_id(eid).startswith("ic-")
    assert ids.trace_id(eid) == f"tr-{eid}"
    assert ids.trace_event_id(eid) != ids.verdict_event_id(eid)
    assert ids.checkpoint_id(eid) != ids.checkpoint_id(ids.uuid7())


def test_uuid7_is_time_ordered_and_versioned() -> None:
    a, b = ids.uuid7(1_000), ids.uuid7(2_000)
    assert a < b
    assert a[14] == "7"
    assert a[19] in "89ab"


@pytest.mark.parametrize("event_id", ["01a233d5-3d00-74f2-8cb6-f5e93152f7bc", "x", "", "é"])
def test_checkpoint_id_is_uuid5_of_the_event_id(event_id: str) -> None:
    """The hand-rolled uuid5 (hot path) equals the standard library's, so ids never change."""
    assert ids.checkpoint_id(event_id) == f"ic-{uuid.uuid5(ids.ID_NAMESPACE, event_id)}"


def test_uuid7_is_a_version_7_uuid_in_canonical_form() -> None:
    for _ in range(200):
        value = ids.uuid7()
        parsed = uuid.UUID(value)
        assert str(parsed) == value
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
