"""The batch handler: deliveries in, one TraceV1 per exchange out, deterministic."""

from __future__ import annotations

import msgspec
import pytest
from smoltbot_bus import Delivery, InvalidEvent
from smoltbot_contracts import AgentV1, CardRecord, TraceV1
from smoltbot_contracts.codec import encode_body
from smoltbot_contracts.ids import trace_event_id
from smoltbot_observer.cards import CardCache
from smoltbot_observer.handlers import ObserverHandler

from services.observer.tests.observer_fixtures import (
    AGENT,
    COMPLETED_AT,
    anthropic_json,
    make_exchange,
    sse,
)

STORED_CARD = CardRecord(
    card_id="ac-custom",
    card={
        "card_id": "ac-custom",
        "values": {"declared": ["privacy"]},
        "autonomy_envelope": {"bounded_actions": ["get_weather"], "escalation_triggers": []},
    },
    version=3,
)


class FakeCards:
    """In-memory stand-in for ``card:{agent}``, counting reads."""

    def __init__(self, stored: dict[str, bytes] | None = None) -> None:
        self.stored = stored or {}
        self.fetches = 0

    async def fetch(self, agent_id: str) -> bytes | None:
        self.fetches += 1
        return self.stored.get(agent_id)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _handler(stored: dict[str, bytes] | None = None) -> tuple[ObserverHandler, FakeCards]:
    cards = FakeCards(stored)
    return ObserverHandler(CardCache(cards)), cards


def _delivery(event: object, stream: str = "exchanges", entry: str = "1-0") -> Delivery:
    return Delivery(stream=stream, entry_id=entry, event=event)  # type: ignore[arg-type]


THINKING_BODY = anthropic_json(
    {"type": "thinking", "thinking": "Check the forecast first."},
    {"type": "text", "text": "It is sunny."},
    {"type": "tool_use", "id": "t", "name": "get_weather", "input": {"location": "SF"}},
)


async def test_batch_yields_one_trace_per_exchange_in_order() -> None:
    handler, _ = _handler()
    first = make_exchange(THINKING_BODY, exchange_id="ex-1", user_query="Weather in SF?")
    second = make_exchange(b"", exchange_id="ex-2", status=502)
    third = make_exchange(THINKING_BODY, exchange_id="ex-3", reply_to="replies:gw-1")
    outputs = await handler(
        [_delivery(first), _delivery(second, entry="2-0"), _delivery(third, "exchanges:priority")]
    )
    assert [o.stream for o in outputs] == ["traces", "traces", "traces:priority"]
    events = [o.event for o in outputs]
    assert all(isinstance(e, TraceV1) for e in events)
    assert [e.event_id for e in events] == [trace_event_id(f"ex-{i}") for i in (1, 2, 3)]  # type: ignore[union-attr]
    assert [e.reply_to for e in events] == [None, None, "replies:gw-1"]  # type: ignore[union-attr]


async def test_the_nudges_a_call_carried_go_onto_its_trace() -> None:
    handler, _ = _handler()
    carried = make_exchange(THINKING_BODY, exchange_id="ex-n1", nudge_ids=["nudge-a", "nudge-b"])
    failed = make_exchange(b"", exchange_id="ex-n2", status=502, nudge_ids=["nudge-c"])
    plain = make_exchange(THINKING_BODY, exchange_id="ex-n3")
    outputs = await handler(
        [_delivery(carried), _delivery(failed, entry="2-0"), _delivery(plain, entry="3-0")]
    )
    events = [o.event for o in outputs]
    assert [e.nudge_ids for e in events] == [["nudge-a", "nudge-b"], ["nudge-c"], []]  # type: ignore[union-attr]


async def test_trace_content_for_a_thinking_tool_call() -> None:
    handler, _ = _handler()
    exchange = make_exchange(THINKING_BODY, user_query="  What's the weather in SF? " + "x" * 300)
    trace_event = await handler.observe(exchange)
    assert trace_event.trace is not None
    assert trace_event.trace.action.name == "get_weather"
    assert trace_event.trace.card_id == "ac-0123abcd"  # default card: none stored
    assert trace_event.trace.timestamp == COMPLETED_AT
    assert trace_event.thinking == "Check the forecast first."
    assert trace_event.extraction_confidence == 1.0
    assert trace_event.task_context is not None
    assert trace_event.task_context.startswith("What's the weather in SF?")
    assert len(trace_event.task_context) == 200
    assert trace_event.response_model == "claude-sonnet-4-5-20250514"
    # meta filled from the body because the gateway did not know model/usage
    assert trace_event.meta.model == "claude-sonnet-4-5-20250514"
    assert (trace_event.meta.usage.input_tokens, trace_event.meta.usage.output_tokens) == (42, 17)
    assert trace_event.meta.exchange_id == exchange.meta.exchange_id
    assert trace_event.meta.completed_at == exchange.meta.completed_at


async def test_meta_from_the_gateway_is_kept() -> None:
    handler, _ = _handler()
    exchange = make_exchange(THINKING_BODY, model="gw-model", input_tokens=1, output_tokens=2)
    trace_event = await handler.observe(exchange)
    assert trace_event.meta == exchange.meta
    assert trace_event.response_model == "claude-sonnet-4-5-20250514"


@pytest.mark.parametrize(
    ("kwargs", "body"),
    [
        ({"status": 500}, THINKING_BODY),
        ({"status": 429}, b'{"type":"error","error":{"message":"rate"}}'),
        ({"method": "GET"}, b'{"data": []}'),
        ({}, b""),
        ({}, b'{"type":"error","error":{"type":"api_error","message":"boom"}}'),
    ],
    ids=["5xx", "4xx", "get", "empty", "error-body-200"],
)
async def test_calls_without_an_ap_trace_still_get_one_trace_event(
    kwargs: dict[str, object], body: bytes
) -> None:
    handler, cards = _handler()
    exchange = make_exchange(body, user_query="hi", **kwargs)  # type: ignore[arg-type]
    trace_event = await handler.observe(exchange)
    assert trace_event.trace is None
    assert trace_event.thinking is None
    assert trace_event.extraction_confidence == 0.0
    assert trace_event.event_id == trace_event_id(exchange.meta.exchange_id)
    assert trace_event.meta.exchange_id == exchange.meta.exchange_id
    assert cards.fetches == 0  # no card needed when there is nothing to analyse


async def test_unparsable_success_still_traces_as_inference() -> None:
    handler, _ = _handler()
    trace_event = await handler.observe(make_exchange(b"<html>oops</html>"))
    assert trace_event.trace is not None
    assert trace_event.trace.action.name == "inference"
    assert trace_event.trace.context is not None
    assert trace_event.trace.context.metadata["parse_issues"] == ["unparsable_body"]


async def test_truncated_stream_still_traced() -> None:
    handler, _ = _handler()
    body = sse(
        {"type": "message_start", "message": {"model": "m", "usage": {"input_tokens": 3}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking"}},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "partial thought"},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": " cut by the capture cap"},
        },
    )
    exchange = make_exchange(
        body[:-20], response_truncated=True, content_type="text/event-stream", user_query="q"
    )
    trace_event = await handler.observe(exchange)
    assert trace_event.thinking == "partial thought"
    assert trace_event.trace is not None
    assert trace_event.trace.context is not None
    assert trace_event.trace.context.metadata["response_truncated"] is True


async def test_same_exchange_twice_gives_identical_bytes() -> None:
    exchange = make_exchange(THINKING_BODY, user_query="Weather?")
    first_handler, _ = _handler()
    second_handler, _ = _handler()
    first = await first_handler([_delivery(exchange)])
    again = await first_handler([_delivery(exchange, entry="9-0")])
    other_process = await second_handler([_delivery(exchange)])
    assert encode_body(first[0].event) == encode_body(again[0].event)
    assert encode_body(first[0].event) == encode_body(other_process[0].event)


async def test_stored_card_is_used_and_values_filtered() -> None:
    handler, _ = _handler({AGENT: msgspec.msgpack.encode(STORED_CARD)})
    trace_event = await handler.observe(make_exchange(THINKING_BODY, user_query="q"))
    assert trace_event.trace is not None
    assert trace_event.trace.card_id == "ac-custom"
    assert trace_event.trace.decision.values_applied == []  # "transparency" is not declared


async def test_corrupt_stored_card_falls_back_to_default() -> None:
    handler, _ = _handler({AGENT: b"\xc1not msgpack"})
    trace_event = await handler.observe(make_exchange(THINKING_BODY, user_query="q"))
    assert trace_event.trace is not None
    assert trace_event.trace.card_id == "ac-0123abcd"


async def test_card_cache_expires_after_ttl() -> None:
    source = FakeCards()
    clock = Clock()
    cache = CardCache(source, ttl_s=5.0, clock=clock)
    assert (await cache.resolve(AGENT, COMPLETED_AT)).is_default
    source.stored[AGENT] = msgspec.msgpack.encode(STORED_CARD)
    clock.now += 4.9
    assert (await cache.resolve(AGENT, COMPLETED_AT)).is_default  # cached absence
    clock.now += 0.2
    resolved = await cache.resolve(AGENT, COMPLETED_AT)
    assert (resolved.is_default, resolved.card_id) == (False, "ac-custom")
    assert source.fetches == 2


async def test_card_cache_is_bounded() -> None:
    source = FakeCards()
    cache = CardCache(source, max_entries=2)
    for agent in ("a", "b", "c", "a"):
        await cache.record(agent)
    assert source.fetches == 4  # "a" was evicted by "c"


async def test_wrong_event_type_is_invalid() -> None:
    handler, _ = _handler()
    agent = AgentV1(event_id="e", agent_id=AGENT, agent_hash="h", seen_at=COMPLETED_AT)
    with pytest.raises(InvalidEvent, match="exchange.v1"):
        await handler([_delivery(agent)])


async def test_card_source_errors_propagate_for_retry() -> None:
    class Down:
        async def fetch(self, agent_id: str) -> bytes | None:
            raise ConnectionError("redis down")

    handler = ObserverHandler(CardCache(Down()))
    with pytest.raises(ConnectionError):
        await handler([_delivery(make_exchange(THINKING_BODY))])


async def test_the_org_template_is_merged_into_the_card_the_observer_uses() -> None:
    """The decision analysis sees the org's bounded actions too (protocols.md §1.3)."""
    record = msgspec.structs.replace(
        STORED_CARD,
        org_template={"autonomy_envelope": {"bounded_actions": ["search_docs"]}},
    )
    cache = CardCache(FakeCards({AGENT: msgspec.msgpack.encode(record)}))
    resolved = await cache.resolve(AGENT, COMPLETED_AT)
    assert resolved.card_id == "ac-custom"
    assert resolved.card["autonomy_envelope"]["bounded_actions"] == ["search_docs", "get_weather"]
    assert STORED_CARD.card["autonomy_envelope"]["bounded_actions"] == ["get_weather"]
