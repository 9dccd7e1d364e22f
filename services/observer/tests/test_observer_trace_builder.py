"""AP-Trace assembly and the deterministic decision analysis (protocols.md §2.4, §2.5)."""

from __future__ import annotations

import msgspec
import pytest
from smoltbot_contracts.cards import default_card
from smoltbot_contracts.ids import trace_id
from smoltbot_observer.analysis import (
    PASSTHROUGH_ID,
    RESPOND_ID,
    AnalysisInput,
    filter_values,
    rules_analysis,
)
from smoltbot_observer.parsing import ParsedResponse, ToolCall
from smoltbot_observer.trace_builder import (
    build_trace,
    evaluate_escalation,
    merge_meta,
    thinking_confidence,
)

from services.observer.tests.observer_fixtures import AGENT, COMPLETED_AT, make_exchange

CARD = default_card(AGENT, COMPLETED_AT)
SECRET_THINKING = "SECRET-THINKING the user's password is hunter2 " * 20
SECRET_TEXT = "SECRET-RESPONSE here is the confidential answer"


def _parsed(**kwargs: object) -> ParsedResponse:
    base: dict[str, object] = {"format": "json", "text": SECRET_TEXT, "model": "claude-x"}
    base.update(kwargs)
    return ParsedResponse(**base)  # type: ignore[arg-type]


def _build(parsed: ParsedResponse, *, user_query: str | None = "What is the weather?", card=CARD):  # type: ignore[no-untyped-def]
    exchange = make_exchange(b"{}", user_query=user_query, input_tokens=11, output_tokens=22)
    meta = merge_meta(exchange.meta, parsed)
    analysis = rules_analysis(
        AnalysisInput(
            thinking=parsed.thinking, tool_calls=parsed.tool_calls, user_query=user_query
        ),
        card,
    )
    return build_trace(exchange, meta, parsed, analysis, card_id=card["card_id"], card=card)


# --------------------------------------------------------------------------- analysis


def test_passthrough_when_nothing_to_analyse() -> None:
    analysis = rules_analysis(AnalysisInput(), CARD)
    assert analysis.selected == PASSTHROUGH_ID
    assert [o.id for o in analysis.alternatives] == [PASSTHROUGH_ID]
    assert analysis.values_applied == ("helpfulness",)


def test_passthrough_values_dropped_when_card_does_not_declare_them() -> None:
    card = {**CARD, "values": {"declared": ["privacy"]}}
    assert rules_analysis(AnalysisInput(), card).values_applied == ()


def test_tools_give_one_option_each_plus_answering_directly() -> None:
    calls = (
        ToolCall(name="search", input={"query": "x", "limit": 3}),
        ToolCall(name="fetch", input={"url": "u"}),
        ToolCall(name="search", input={"page": 2}),
    )
    analysis = rules_analysis(AnalysisInput(tool_calls=calls), CARD)
    assert [o.id for o in analysis.alternatives] == ["search", "fetch", RESPOND_ID]
    assert analysis.selected == "search"
    assert analysis.reasoning == "Used tools: search, fetch"
    assert (
        analysis.alternatives[0].description
        == "Call the search tool with inputs: limit, page, query"
    )
    # input values never leak, keys do
    assert "x" not in analysis.alternatives[0].description.split(": ")[-1].split(", ")
    assert analysis.values_applied == ("transparency",)


def test_thinking_without_tools_answers_directly() -> None:
    analysis = rules_analysis(AnalysisInput(thinking="hmm"), CARD)
    assert analysis.selected == RESPOND_ID
    assert analysis.values_applied == ("helpfulness", "transparency")


def test_values_filter_keeps_order_and_accepts_object_entries() -> None:
    card = {"values": {"declared": [{"id": "transparency"}, "helpfulness", 5]}}
    assert filter_values(["helpfulness", "safety", "transparency", "helpfulness"], card) == (
        "helpfulness",
        "transparency",
    )
    assert filter_values(["anything"], {"values": {"declared": []}}) == ("anything",)


# --------------------------------------------------------------------------- trace


def test_inference_trace_shape() -> None:
    trace = _build(_parsed())
    assert trace.trace_id == trace_id(make_exchange().meta.exchange_id)
    assert trace.agent_id == AGENT
    assert trace.card_id == CARD["card_id"]
    assert trace.timestamp == COMPLETED_AT
    assert trace.action.type == "execute"
    assert trace.action.name == "inference"
    assert trace.action.category == "bounded"
    assert trace.action.target is not None
    assert (trace.action.target.type, trace.action.target.identifier) == ("api", "anthropic")
    assert trace.action.parameters == {
        "tokens_in": 11,
        "tokens_out": 22,
        "duration_ms": 1813,
        "model": "claude-x",
    }
    assert trace.decision.confidence == 0.3
    assert trace.escalation.evaluated is True
    assert trace.escalation.required is False
    assert trace.escalation.reason == "No escalation triggers matched"
    assert trace.context is not None
    assert trace.context.session_id == make_exchange().meta.session_id
    assert trace.context.conversation_turn == 1
    assert trace.context.environment == {"provider": "anthropic"}
    assert trace.context.metadata == {
        "has_thinking": False,
        "success": True,
        "tool_count": 0,
        "result_summary": "22 tokens generated in 1813ms",
        "analyzer": "rules",
    }


def test_tool_trace_names_and_parameters() -> None:
    calls = (ToolCall(name="get_weather", input={"location": "SF"}), ToolCall(name="search"))
    trace = _build(_parsed(tool_calls=calls))
    assert trace.action.name == "get_weather, search"
    assert trace.action.parameters["tools"] == ["get_weather", "search"]
    assert trace.decision.selected == "get_weather"
    assert trace.context is not None
    assert trace.context.metadata["tool_count"] == 2


@pytest.mark.parametrize(
    ("thinking", "expected"),
    [(None, 0.3), ("", 0.3), ("x", 0.6), ("x" * 500, 0.6), ("x" * 501, 0.9)],
)
def test_confidence_from_thinking_length(thinking: str | None, expected: float) -> None:
    assert thinking_confidence(thinking) == expected
    assert _build(_parsed(thinking=thinking)).decision.confidence == expected


def test_no_raw_thinking_or_response_text_in_trace() -> None:
    trace = _build(
        _parsed(thinking=SECRET_THINKING, tool_calls=(ToolCall(name="t", input={"k": "hunter2"}),))
    )
    encoded = msgspec.json.encode(trace).decode()
    assert "SECRET" not in encoded
    assert "hunter2" not in encoded
    assert trace.context is not None
    assert trace.context.metadata["has_thinking"] is True


def test_unknown_usage_is_omitted_not_null() -> None:
    exchange = make_exchange(b"{}")
    parsed = _parsed(model=None)
    meta = merge_meta(exchange.meta, parsed)
    analysis = rules_analysis(AnalysisInput(), CARD)
    trace = build_trace(exchange, meta, parsed, analysis, card_id="ac-x", card=CARD)
    assert trace.action.parameters == {"duration_ms": 1813}
    assert trace.context is not None
    assert trace.context.metadata["result_summary"] == "0 tokens generated in 1813ms"


def test_parse_issues_and_truncation_are_recorded() -> None:
    exchange = make_exchange(b"{}", response_truncated=True)
    parsed = _parsed(issues=("response_truncated", "stream_incomplete"))
    analysis = rules_analysis(AnalysisInput(), CARD)
    trace = build_trace(exchange, exchange.meta, parsed, analysis, card_id="ac-x", card=CARD)
    assert trace.context is not None
    assert trace.context.metadata["response_truncated"] is True
    assert trace.context.metadata["parse_issues"] == ["response_truncated", "stream_incomplete"]


def test_selected_not_among_alternatives_is_repaired() -> None:
    exchange = make_exchange(b"{}")
    analysis = msgspec.structs.replace(rules_analysis(AnalysisInput(), CARD), selected="nope")
    trace = build_trace(exchange, exchange.meta, _parsed(), analysis, card_id="ac-x", card=CARD)
    assert trace.decision.selected == PASSTHROUGH_ID


# --------------------------------------------------------------------------- meta


def test_merge_meta_fills_only_missing_fields() -> None:
    parsed = _parsed(model="from-body", input_tokens=5, output_tokens=6)
    empty = make_exchange().meta
    filled = merge_meta(empty, parsed)
    assert (filled.model, filled.usage.input_tokens, filled.usage.output_tokens) == (
        "from-body",
        5,
        6,
    )
    known = make_exchange(model="from-gateway", input_tokens=1).meta
    merged = merge_meta(known, parsed)
    assert (merged.model, merged.usage.input_tokens, merged.usage.output_tokens) == (
        "from-gateway",
        1,
        6,
    )
    assert msgspec.structs.replace(
        merged, model=None, usage=known.usage
    ) == msgspec.structs.replace(known, model=None)


def test_merge_meta_returns_same_object_when_nothing_to_fill() -> None:
    meta = make_exchange(model="m", input_tokens=1, output_tokens=2).meta
    assert merge_meta(meta, _parsed(model="other", input_tokens=9, output_tokens=9)) is meta


# --------------------------------------------------------------------------- escalation


def _card_with_triggers(*triggers: dict[str, object], unified: bool = False) -> dict[str, object]:
    section = "autonomy" if unified else "autonomy_envelope"
    return {
        **CARD,
        section: {"bounded_actions": ["inference"], "escalation_triggers": list(triggers)},
    }


def test_escalation_requires_true_flag_on_bare_identifier() -> None:
    card = _card_with_triggers(
        {"condition": "tokens_out > 5", "action": "escalate", "reason": "numeric: not ours"},
        {"condition": "shares_pii", "action": "escalate", "reason": "PII shared"},
        {"condition": "deletes_data", "action": "escalate"},
    )
    assert evaluate_escalation(card, {}).required is False
    assert evaluate_escalation(card, {"shares_pii": False}).required is False
    first = evaluate_escalation(card, {"shares_pii": True, "deletes_data": True})
    assert (first.required, first.reason) == (True, "PII shared")
    second = evaluate_escalation(card, {"deletes_data": True})
    assert (second.required, second.reason) == (True, "Trigger 'deletes_data' matched")
    assert evaluate_escalation(card, {"tokens_out > 5": True}).required is False


def test_escalation_reads_unified_card_and_ignores_junk() -> None:
    card = _card_with_triggers({"condition": "x", "reason": "r"}, "junk", unified=True)  # type: ignore[arg-type]
    assert evaluate_escalation(card, {"x": True}).required is True
    assert evaluate_escalation({"autonomy_envelope": "bad"}, {"x": True}).required is False


def test_analysis_without_alternatives_is_repaired() -> None:
    exchange = make_exchange(b"{}")
    analysis = msgspec.structs.replace(
        rules_analysis(AnalysisInput(), CARD), alternatives=(), selected="chosen"
    )
    trace = build_trace(exchange, exchange.meta, _parsed(), analysis, card_id="ac-x", card=CARD)
    assert [a.option_id for a in trace.decision.alternatives_considered] == ["chosen"]
    assert trace.decision.selected == "chosen"
