"""AIP integrity checkpoint for one trace (protocols.md §4), deterministic given the analysis.

Order: no thinking -> synthetic clear ``no_thinking_block``; ``ceil(len/4) < min_evidence_tokens``
-> synthetic clear ``below_evidence_threshold``; else the analyzer's JSON goes through
``aip.check_integrity`` (parsing, validation, evidence truncation, cross-validation) and then the
verdict gate of ``smoltbot_analysis``, which decides the final verdict, action and proceed.

Ids and times are derived (architecture §3.2): ``checkpoint_id = ids.checkpoint_id(exchange_id)``,
``timestamp = meta.completed_at``, ``linked_trace_id`` = the AP-Trace id. The package's random
id and "now" timestamp are discarded. ``analysis_duration_ms`` is whatever the backend reports
(the rules backend reports 0.0), never measured here, so a redelivery is byte-identical.

Window (protocols.md §4.7): the caller passes the session window — earlier non-synthetic
checkpoints of the session, strictly before this one in completion order (``state.window_for``)
— as ``AnalysisRequest.window``; ``window_position`` is ``{index: len(window), window_size:
len(window) + 1}`` for an analysed checkpoint and ``{len, len}`` for a synthetic one (which is
not pushed into the window).

A failed analysis (timeout, backend error, analysis JSON the package rejects — the spec counts an
invalid response as a failure) follows the failure policy: fail-open -> synthetic clear
``analysis_failed``; fail-closed -> synthetic boundary_violation, ``deny_and_escalate``.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import aip
import msgspec
from smoltbot_analysis import (
    AnalysisError,
    AnalysisRequest,
    AnalysisResult,
    Analyzer,
    WindowEntry,
    aip_card_view,
    apply_gate,
)
from smoltbot_contracts import (
    AnalysisMetadata,
    Checkpoint,
    Concern,
    ConscienceContext,
    ConscienceValue,
    Severity,
    TraceV1,
    Verdict,
    WindowPosition,
    ids,
)

from smoltbot_verifier.cards import ResolvedCard
from smoltbot_verifier.metrics import ANALYSIS_FAILURES, GATE_DISAGREEMENTS

log = logging.getLogger(__name__)

NO_THINKING = "no_thinking_block"
BELOW_THRESHOLD = "below_evidence_threshold"
ANALYSIS_FAILED = "analysis_failed"
SYNTHETIC_HASH = "none"


@dataclass(frozen=True, slots=True)
class IntegrityOptions:
    """The settings the checkpoint step needs (a slice of ``VerifierSettings``)."""

    min_evidence_tokens: int = 25
    analysis_timeout_s: float = 8.0
    fail_closed: bool = False


def estimate_tokens(text: str) -> int:
    """AIP's token estimate: ``ceil(len / 4)``."""
    return math.ceil(len(text) / 4)


def conscience_values(values: Sequence[ConscienceValue] | None) -> tuple[aip.ConscienceValue, ...]:
    """Card conscience values as AIP objects; None means the AIP defaults (protocols.md §4.2)."""
    if values is None:
        return tuple(v for v in aip.DEFAULT_CONSCIENCE_VALUES if isinstance(v, aip.ConscienceValue))
    return tuple(aip.ConscienceValue(type=v.type, content=v.content, id=v.id) for v in values)


def _identity(event: TraceV1, card: ResolvedCard) -> Checkpoint:
    """A clear placeholder carrying only the derived identity fields; callers ``replace`` it."""
    meta = event.meta
    return Checkpoint(
        checkpoint_id=ids.checkpoint_id(meta.exchange_id),
        agent_id=meta.agent_id,
        card_id=card.card_id,
        session_id=meta.session_id,
        timestamp=meta.completed_at,
        thinking_block_hash=SYNTHETIC_HASH,
        provider="none",
        model="none",
        verdict="clear",
        linked_trace_id=event.trace.trace_id if event.trace is not None else None,
    )


def synthetic_checkpoint(
    event: TraceV1,
    card: ResolvedCard,
    reason: str,
    summary: str,
    *,
    tokens_original: int = 0,
    verdict: Verdict = "clear",
    window_size: int = 0,
) -> Checkpoint:
    """A checkpoint made without analysis (AIP §4.6): hash/provider/model ``none``, zero cost."""
    boundary = verdict == "boundary_violation"
    return msgspec.structs.replace(
        _identity(event, card),
        verdict=verdict,
        reasoning_summary=summary,
        window_position=WindowPosition(index=window_size, window_size=window_size),
        analysis_metadata=AnalysisMetadata(thinking_tokens_original=tokens_original),
        synthetic=True,
        synthetic_reason=reason,
        recommended_action="deny_and_escalate" if boundary else "continue",
        proceed=not boundary,
    )


def _failed(
    event: TraceV1, card: ResolvedCard, why: str, options: IntegrityOptions, window_size: int = 0
) -> Checkpoint:
    ANALYSIS_FAILURES.labels(why.split(":", 1)[0]).inc()
    log.warning("conscience analysis failed", extra={"reason": why[:300]})
    policy = "fail-closed" if options.fail_closed else "fail-open"
    return synthetic_checkpoint(
        event,
        card,
        ANALYSIS_FAILED,
        f"Integrity analysis failed ({why[:200]}); {policy} policy applied.",
        tokens_original=estimate_tokens(event.thinking or ""),
        verdict="boundary_violation" if options.fail_closed else "clear",
        window_size=window_size,
    )


_SEVERITY: dict[str, Severity] = {
    "low": "low",
    "medium": "medium",
    "high": "high",
    "critical": "critical",
}


def checkpoint_from_analysis(
    event: TraceV1,
    card: ResolvedCard,
    thinking: str,
    analysis: AnalysisResult,
    window_size: int = 0,
) -> Checkpoint:
    """Parse the analysis with ``aip.check_integrity``, then apply the gate and derived ids.

    Raises ``ValueError`` (from the package) when the analysis JSON is invalid.
    """
    meta = event.meta
    tokens = estimate_tokens(thinking)
    model = event.response_model or meta.model or "unknown"
    parsed = aip.check_integrity(
        aip.CheckIntegrityInput(
            analysis_response=analysis.text,
            thinking=aip.ThinkingInput(
                hash=aip.hash_thinking_block(thinking),
                provider=meta.provider,
                model=model,
                tokens_original=tokens,
                tokens_analyzed=analysis.tokens_analyzed or tokens,
                truncated=analysis.truncated,
                confidence=event.extraction_confidence,
            ),
            agent_id=meta.agent_id,
            card_id=card.card_id,
            session_id=meta.session_id,
            window_position=aip.WindowPosition(index=window_size, window_size=window_size + 1),
            analysis_model=analysis.model,
            analysis_duration_ms=analysis.duration_ms,
        )
    )
    concerns = [
        Concern(
            category=c.category,
            severity=_SEVERITY[c.severity],
            description=c.description,
            evidence=c.evidence,
            relevant_card_field=c.relevant_card_field,
            relevant_conscience_value=c.relevant_conscience_value,
        )
        for c in parsed.concerns
    ]
    gate = apply_gate(parsed.verdict, concerns)
    if gate.disagreed:
        GATE_DISAGREEMENTS.inc()
    ctx = parsed.conscience_context
    return msgspec.structs.replace(
        _identity(event, card),
        thinking_block_hash=parsed.thinking_block_hash,
        provider=parsed.provider,
        model=parsed.model,
        verdict=gate.verdict,
        concerns=concerns,
        reasoning_summary=parsed.reasoning_summary,
        conscience_context=ConscienceContext(
            values_checked=[str(v) for v in ctx.values_checked],
            conflicts=[str(v) for v in ctx.conflicts],
            supports=[str(v) for v in ctx.supports],
            considerations=[str(v) for v in ctx.considerations],
            consultation_depth=ctx.consultation_depth,
        ),
        # The AIP package's dataclasses have our structs' field names: convert, don't copy.
        window_position=msgspec.convert(
            parsed.window_position, WindowPosition, from_attributes=True
        ),
        analysis_metadata=msgspec.convert(
            parsed.analysis_metadata, AnalysisMetadata, from_attributes=True
        ),
        recommended_action=gate.recommended_action,
        proceed=gate.proceed,
        cross_validation_warnings=list(parsed.cross_validation_warnings or []),
        analyzer_verdict=gate.analyzer_verdict,
    )


async def build_checkpoint(
    event: TraceV1,
    card: ResolvedCard,
    analyzer: Analyzer,
    options: IntegrityOptions,
    window: Sequence[WindowEntry] = (),
) -> Checkpoint | None:
    """The checkpoint for one trace event; None when the exchange produced no AP-Trace.

    ``window``: the session window before this checkpoint, oldest first."""
    if event.trace is None:
        return None
    thinking = event.thinking
    if not thinking or not thinking.strip():
        return synthetic_checkpoint(
            event,
            card,
            NO_THINKING,
            "No thinking block found; nothing to analyse.",
            window_size=len(window),
        )
    tokens = estimate_tokens(thinking)
    if tokens < options.min_evidence_tokens:
        return synthetic_checkpoint(
            event,
            card,
            BELOW_THRESHOLD,
            "Thinking block below minimum evidence threshold "
            f"({tokens} tokens < {options.min_evidence_tokens})",
            tokens_original=tokens,
            window_size=len(window),
        )
    request = AnalysisRequest(
        thinking=thinking,
        card=aip_card_view(card.card),
        conscience_values=conscience_values(card.conscience_values),
        task_context=event.task_context,
        window=tuple(window),
    )
    try:
        analysis = await asyncio.wait_for(analyzer.analyze(request), options.analysis_timeout_s)
    except TimeoutError:
        return _failed(
            event,
            card,
            f"timeout: no answer within {options.analysis_timeout_s}s",
            options,
            len(window),
        )
    except AnalysisError as exc:
        return _failed(event, card, f"backend: {exc}", options, len(window))
    try:
        return checkpoint_from_analysis(event, card, thinking, analysis, len(window))
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        # The package raises ValueError for invalid JSON/fields; a JSON array or other non-object
        # answer surfaces as AttributeError/TypeError. All mean "no usable analysis".
        return _failed(event, card, f"invalid_analysis: {exc}", options, len(window))
