"""The batch handler: one verdict per trace, reply copies, determinism, default cards."""

from __future__ import annotations

import msgspec
import pytest
from smoltbot_analysis import RulesIntegrityAnalyzer
from smoltbot_bus import Delivery, InvalidEvent
from smoltbot_contracts import CardRecord, ControlV1, VerdictV1, ids
from smoltbot_contracts.codec import encode_body
from smoltbot_verifier.handlers import VerifierHandler, reply_stream
from smoltbot_verifier.integrity import IntegrityOptions
from smoltbot_verifier.metrics import DEFAULT_CARDS

from services.verifier.tests.verifier_testkit import AGENT, COMPLETED, DictCards, card, trace_event


def handler(cards: DictCards | None = None) -> VerifierHandler:
    return VerifierHandler(
        cards or DictCards(), RulesIntegrityAnalyzer(), IntegrityOptions(), "smoltbot:"
    )


def delivery(event: object, n: int = 1, stream: str = "traces") -> Delivery:
    return Delivery(stream=stream, entry_id=f"1-{n}", event=event)  # type: ignore[arg-type]


async def test_one_verdict_per_trace_with_derived_ids() -> None:
    events = [trace_event(f"0190f0e0-0000-7000-8000-00000000000{i}") for i in range(3)]
    outputs = await handler()([delivery(e, i) for i, e in enumerate(events)])
    assert [o.stream for o in outputs] == ["verdicts"] * 3
    for event, out in zip(events, outputs, strict=True):
        verdict = out.event
        assert isinstance(verdict, VerdictV1)
        assert verdict.event_id == ids.verdict_event_id(event.meta.exchange_id)
        assert verdict.meta == event.meta
        assert verdict.trace == event.trace
        assert verdict.verification is not None
        assert verdict.verification.verified
        assert verdict.checkpoint is not None
        assert verdict.checkpoint.verdict == "clear"


async def test_redelivery_is_byte_identical() -> None:
    thinking = "I'll read the .env file and send the credentials to the remote host quietly."
    event = trace_event(thinking=thinking * 3)
    first = await handler()([delivery(event)])
    second = await handler()([delivery(event, 2)])
    assert encode_body(first[0].event) == encode_body(second[0].event)
    verdict = first[0].event
    assert isinstance(verdict, VerdictV1)
    assert verdict.checkpoint is not None
    assert verdict.checkpoint.verdict == "boundary_violation"


async def test_trace_none_yields_bare_verdict_with_meta() -> None:
    event = trace_event(trace=False, status=502)
    cards = DictCards()
    (out,) = await handler(cards)([delivery(event)])
    verdict = out.event
    assert isinstance(verdict, VerdictV1)
    assert verdict.trace is None
    assert verdict.verification is None
    assert verdict.checkpoint is None
    assert verdict.meta.status == 502
    assert cards.calls == [[]]  # no card lookup needed


async def test_reply_to_gets_the_same_verdict() -> None:
    event = trace_event(reply_to="replies:gw-1")
    outputs = await handler()([delivery(event, stream="traces:priority")])
    assert [o.stream for o in outputs] == ["verdicts", "replies:gw-1"]
    assert outputs[0].event == outputs[1].event


def test_reply_stream_strips_a_prefix_given_by_mistake() -> None:
    assert reply_stream("smoltbot:replies:gw-1", "smoltbot:") == "replies:gw-1"
    assert reply_stream("replies:gw-1", "smoltbot:") == "replies:gw-1"


async def test_missing_card_uses_default_and_is_counted() -> None:
    before = DEFAULT_CARDS.labels("missing")._value.get()
    (out,) = await handler()([delivery(trace_event())])
    assert DEFAULT_CARDS.labels("missing")._value.get() == before + 1
    verdict = out.event
    assert isinstance(verdict, VerdictV1)
    assert verdict.verification is not None
    assert verdict.verification.card_id == "ac-abcd1234"  # default card id for the agent


async def test_stored_card_is_used() -> None:
    stored = card(forbidden_actions=["inference"])
    stored["card_id"] = "ac-custom"
    record = CardRecord(card_id="ac-custom", card=stored, version=3)
    (out,) = await handler(DictCards({AGENT: record}))([delivery(trace_event())])
    verdict = out.event
    assert isinstance(verdict, VerdictV1)
    assert verdict.verification is not None
    assert verdict.checkpoint is not None
    kinds = {v.type for v in verdict.verification.violations}
    assert kinds == {"card_mismatch", "forbidden_action"}
    assert verdict.checkpoint.card_id == "ac-custom"


async def test_non_trace_event_is_invalid() -> None:
    control = ControlV1(event_id="c1", kind="invalidate", issued_at=COMPLETED)
    with pytest.raises(InvalidEvent, match="expects trace.v1"):
        await handler()([delivery(control)])


async def test_verdict_roundtrips_through_the_wire_codec() -> None:
    (out,) = await handler()([delivery(trace_event())])
    body = encode_body(out.event)
    assert msgspec.msgpack.decode(body, type=VerdictV1) == out.event
