"""AP-Trace assembly (protocols.md §2.5): deterministic given the exchange, parse and analysis.

Nothing here reads a clock or a random source: the timestamp is the exchange's completion time
and the id derives from the exchange id, so a redelivered exchange yields the identical trace.
Raw thinking and response text never enter the trace.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from smoltbot_contracts import (
    Alternative,
    APTrace,
    ExchangeMeta,
    ExchangeV1,
    TraceAction,
    TraceContext,
    TraceDecision,
    TraceEscalation,
    TraceTarget,
    Usage,
)
from smoltbot_contracts.ids import trace_id

from smoltbot_observer.analysis import Analysis, tool_names
from smoltbot_observer.parsing import ParsedResponse

JSONObject = dict[str, Any]

_BARE_IDENTIFIER = re.compile(r"^\w+$")
NO_TRIGGER_REASON = "No escalation triggers matched"
LONG_THINKING_CHARS = 500


def no_trace_reason(exchange: ExchangeV1, parsed: ParsedResponse) -> str | None:
    """Why this exchange yields no AP-Trace (it still yields a TraceV1), or None if it does."""
    meta = exchange.meta
    if meta.method.upper() != "POST":
        return f"method {meta.method.upper()}"
    if meta.status >= 400:
        return f"upstream status {meta.status}"
    if parsed.error is not None:
        return "provider error"
    if parsed.format == "empty":
        return "empty body"
    return None


def merge_meta(meta: ExchangeMeta, parsed: ParsedResponse) -> ExchangeMeta:
    """Fill model and token counts the gateway did not know from the parsed response."""
    usage = Usage(
        input_tokens=meta.usage.input_tokens
        if meta.usage.input_tokens is not None
        else parsed.input_tokens,
        output_tokens=meta.usage.output_tokens
        if meta.usage.output_tokens is not None
        else parsed.output_tokens,
    )
    model = meta.model or parsed.model
    if usage == meta.usage and model == meta.model:
        return meta
    return msgspec.structs.replace(meta, model=model, usage=usage)


def thinking_confidence(thinking: str | None) -> float:
    """Decision confidence from how much reasoning is visible (never from an LLM)."""
    if not thinking:
        return 0.3
    return 0.9 if len(thinking) > LONG_THINKING_CHARS else 0.6


def escalation_triggers(card: JSONObject) -> list[JSONObject]:
    """Triggers from the legacy ``autonomy_envelope`` or the unified ``autonomy`` section."""
    for section in ("autonomy", "autonomy_envelope"):
        envelope = card.get(section)
        if isinstance(envelope, dict):
            triggers = envelope.get("escalation_triggers")
            if isinstance(triggers, list):
                return [t for t in triggers if isinstance(t, dict)]
    return []


def flag_conditions(card: JSONObject) -> list[str]:
    """The card's trigger conditions that are bare identifiers (``^\\w+$``), in order, each once:
    the content flags a decision analysis is asked to set."""
    found: list[str] = []
    for trigger in escalation_triggers(card):
        condition = trigger.get("condition")
        if isinstance(condition, str) and _BARE_IDENTIFIER.match(condition.strip()):
            found.append(condition.strip())
    return list(dict.fromkeys(found))


def evaluate_escalation(card: JSONObject, content_flags: dict[str, bool]) -> TraceEscalation:
    """The first bare-identifier trigger whose content flag is true requires escalation.

    Evaluated here, before verification, so the verifier does not report a missed escalation.
    """
    for trigger in escalation_triggers(card):
        condition = trigger.get("condition")
        if not isinstance(condition, str) or not _BARE_IDENTIFIER.match(condition.strip()):
            continue
        if content_flags.get(condition.strip()) is True:
            reason = trigger.get("reason")
            return TraceEscalation(
                evaluated=True,
                required=True,
                reason=reason
                if isinstance(reason, str) and reason
                else f"Trigger '{condition}' matched",
            )
    return TraceEscalation(evaluated=True, required=False, reason=NO_TRIGGER_REASON)


def build_trace(
    exchange: ExchangeV1,
    meta: ExchangeMeta,
    parsed: ParsedResponse,
    analysis: Analysis,
    *,
    card_id: str,
    card: JSONObject,
) -> APTrace:
    """The AP-Trace of one exchange. ``meta`` is the exchange meta after :func:`merge_meta`."""
    names = tool_names(parsed.tool_calls)
    duration_ms = round(meta.total_ms or meta.upstream_ms)
    tokens_out = meta.usage.output_tokens
    parameters: JSONObject = {
        "tokens_in": meta.usage.input_tokens,
        "tokens_out": tokens_out,
        "duration_ms": duration_ms,
        "model": meta.model,
    }
    # Unknown values are left out rather than sent as null: numeric triggers treat missing as false.
    parameters = {key: value for key, value in parameters.items() if value is not None}
    if names:
        parameters["tools"] = names
    action = TraceAction(
        type="execute",
        name=", ".join(names) if names else "inference",
        category="bounded",
        target=TraceTarget(type="api", identifier=meta.provider),
        parameters=parameters,
    )
    # AAP needs >= 1 alternative and a selected one among them: repair a faulty analyzer's
    # output here rather than emit a trace the verifier would reject.
    alternatives = [
        Alternative(option_id=o.id, description=o.description) for o in analysis.alternatives
    ] or [Alternative(option_id=analysis.selected or "inference", description="Selected action")]
    option_ids = [alternative.option_id for alternative in alternatives]
    selected = analysis.selected if analysis.selected in option_ids else option_ids[0]
    decision = TraceDecision(
        alternatives_considered=alternatives,
        selected=selected,
        selection_reasoning=analysis.reasoning,
        values_applied=list(analysis.values_applied),
        confidence=thinking_confidence(parsed.thinking),
    )
    metadata: JSONObject = {
        "has_thinking": bool(parsed.thinking),
        "success": meta.status < 400,
        "tool_count": len(parsed.tool_calls),
        "result_summary": f"{tokens_out if tokens_out is not None else 0} tokens generated "
        f"in {duration_ms}ms",
        "analyzer": analysis.analyzer,
    }
    if analysis.outcome not in ("ok", "passthrough"):
        # The backend failed and the fixed fallback analysis stands in: say why.
        metadata["analysis_fallback"] = analysis.outcome
    if exchange.response_truncated:
        metadata["response_truncated"] = True
    if parsed.issues:
        metadata["parse_issues"] = list(parsed.issues)
    for flag, value in analysis.content_flags.items():
        metadata.setdefault(flag, value)
    return APTrace(
        trace_id=trace_id(meta.exchange_id),
        agent_id=meta.agent_id,
        card_id=card_id,
        timestamp=meta.completed_at,
        action=action,
        decision=decision,
        escalation=evaluate_escalation(card, analysis.content_flags),
        context=TraceContext(
            session_id=meta.session_id,
            conversation_turn=1,
            environment={"provider": meta.provider},
            metadata=metadata,
        ),
    )
