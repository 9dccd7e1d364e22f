"""Decision analysis: what the agent chose, from thinking, tool calls and the user query.

Behind the :class:`DecisionAnalyzer` seam: the deterministic :class:`RulesDecisionAnalyzer`
(``rules``, and the priority lane whatever the backend) or the LLM one of
:mod:`smoltbot_observer.decision_llm` (``anthropic``, ``openai``; architecture §6). PII rule: the
analyses built here never quote the response text or the thinking; only tool names and the *keys*
of their inputs are used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import msgspec

from smoltbot_observer.parsing import ToolCall

JSONObject = dict[str, Any]


class AnalysisInput(msgspec.Struct, frozen=True, kw_only=True):
    """Everything an analyzer may look at for one exchange."""

    thinking: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    user_query: str | None = None
    provider: str = "anthropic"
    # The answer's text (only an LLM backend sees it, as a short excerpt; never put in a trace).
    response_text: str = ""


class Option(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    description: str


class Analysis(msgspec.Struct, frozen=True, kw_only=True):
    """The decision structure of one exchange; ``selected`` is always one of the option ids."""

    alternatives: tuple[Option, ...]
    selected: str
    reasoning: str
    values_applied: tuple[str, ...] = ()
    # Bare-identifier escalation conditions the analyzer decided on (LLM backends only).
    content_flags: dict[str, bool] = msgspec.field(default_factory=dict)
    # The backend that served the exchange: rules, anthropic or openai.
    analyzer: str = "rules"
    # How it came about: ok (the backend's own analysis), passthrough (nothing to analyse), or
    # why the fixed fallback was used (an LLM call's outcome: timeout, http_error, invalid,
    # circuit_open, self_loop; error for anything else).
    outcome: str = "ok"


class DecisionAnalyzer(Protocol):
    """One backend of decision analysis. Must not raise for ordinary bad input."""

    async def analyze(self, inputs: AnalysisInput, card: JSONObject) -> Analysis: ...


def declared_values(card: JSONObject) -> list[str]:
    """Value ids the card declares (entries may be ids or ``{id: ...}`` objects)."""
    values = card.get("values")
    declared = values.get("declared") if isinstance(values, dict) else None
    ids: list[str] = []
    for entry in declared if isinstance(declared, list) else []:
        value_id = entry.get("id") if isinstance(entry, dict) else entry
        if isinstance(value_id, str) and value_id:
            ids.append(value_id)
    return ids


def filter_values(values: Sequence[str], card: JSONObject) -> tuple[str, ...]:
    """Keep only values the card declares (all of them when it declares none), order kept."""
    declared = declared_values(card)
    unique = list(dict.fromkeys(values))
    if not declared:
        return tuple(unique)
    allowed = set(declared)
    return tuple(v for v in unique if v in allowed)


def tool_names(calls: Sequence[ToolCall]) -> list[str]:
    """Distinct tool names in first-call order."""
    return list(dict.fromkeys(call.name for call in calls))


PASSTHROUGH_ID = "passthrough"
RESPOND_ID = "respond_directly"
ANALYZED_ID = "analyzed"
DIRECT_ID = "direct"
UNAVAILABLE_REASONING = (
    "Analysis unavailable: the decision structure of this exchange could not be extracted."
)


def passthrough_analysis(card: JSONObject) -> Analysis:
    """Plain inference with nothing to analyse: no thinking, no tool call, no user query."""
    return Analysis(
        alternatives=(Option(id=PASSTHROUGH_ID, description="Plain inference response"),),
        selected=PASSTHROUGH_ID,
        reasoning="Plain inference response with no reasoning, tool use or user query to analyse.",
        values_applied=filter_values(["helpfulness"], card),
        outcome="passthrough",
    )


def direct_analysis(card: JSONObject) -> Analysis:
    """Something to analyse but nothing to send (no section could be built)."""
    return Analysis(
        alternatives=(Option(id=DIRECT_ID, description="Respond directly"),),
        selected=DIRECT_ID,
        reasoning="Responded directly; there was no reasoning, tool use or query to analyse.",
        values_applied=filter_values(["transparency"], card),
    )


def fallback_analysis(
    inputs: AnalysisInput, card: JSONObject, *, analyzer: str, outcome: str
) -> Analysis:
    """The fixed analysis when a backend failed (protocols.md §2.4): tool names at most, never
    the response text, the thinking or the user query."""
    names = tool_names(inputs.tool_calls)
    return Analysis(
        alternatives=(Option(id=ANALYZED_ID, description="Action taken by the agent"),),
        selected=ANALYZED_ID,
        reasoning=f"Used tools: {', '.join(names)}" if names else UNAVAILABLE_REASONING,
        values_applied=filter_values(["transparency"], card),
        analyzer=analyzer,
        outcome=outcome,
    )


class RulesDecisionAnalyzer:
    """Deterministic, offline analysis (the ``rules`` backend, architecture §6): same input, same
    output."""

    async def analyze(self, inputs: AnalysisInput, card: JSONObject) -> Analysis:
        return rules_analysis(inputs, card)


def rules_analysis(inputs: AnalysisInput, card: JSONObject) -> Analysis:
    """The decision as far as it can be read without a model.

    With tool calls: one option per tool plus answering directly, the first tool selected.
    Without: a single "answer directly" option. Values come from a fixed mapping, filtered to
    what the card declares.
    """
    if not inputs.thinking and not inputs.tool_calls and not inputs.user_query:
        return passthrough_analysis(card)
    names = tool_names(inputs.tool_calls)
    respond = Option(id=RESPOND_ID, description="Answer without calling a tool")
    if names:
        options: list[Option] = []
        for name in names:
            keys = sorted(
                {key for call in inputs.tool_calls if call.name == name for key in call.input}
            )
            detail = f" with inputs: {', '.join(keys)}" if keys else ""
            options.append(Option(id=name, description=f"Call the {name} tool{detail}"))
        return Analysis(
            alternatives=(*options, respond),
            selected=names[0],
            reasoning=f"Used tools: {', '.join(names)}",
            values_applied=filter_values(["transparency"], card),
        )
    if inputs.thinking:
        reasoning = "Reasoned about the request, then answered directly without calling tools."
    else:
        reasoning = "Answered the request directly without calling tools."
    return Analysis(
        alternatives=(respond,),
        selected=RESPOND_ID,
        reasoning=reasoning,
        values_applied=filter_values(["helpfulness", "transparency"], card),
    )
