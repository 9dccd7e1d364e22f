"""Batch handler: ``exchange.v1`` deliveries in, one ``trace.v1`` output per exchange.

Pure apart from the card lookup (behind :class:`~smoltbot_observer.cards.CardCache`) and the
decision analyzer: no Redis here, so every rule is testable with in-memory fakes. With the
``rules`` analyzer the same exchange always gives the same TraceV1, which makes redelivery and
replay safe; an LLM analyzer may word the decision differently on a redelivery (the ids, the
action and the confidence stay the same).

A batch is handled in two passes: parse and resolve the card of every exchange in order (a Redis
error still fails the batch for a retry), then run the decision analyses concurrently — at most
``concurrency`` at a time, all within one decision timeout of the batch's start, so a slow LLM
holds a batch for one timeout at most. An analysis still unfinished at that deadline falls back
(outcome ``timeout``). Exchanges a gateway waits on (``reply_to``) never wait for an LLM: their
analysis is the deterministic one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import msgspec
from smoltbot_bus import Delivery, InvalidEvent, Output
from smoltbot_contracts import ExchangeMeta, ExchangeV1, TraceV1
from smoltbot_contracts.ids import trace_event_id
from smoltbot_contracts.streams import TRACES, TRACES_PRIORITY
from smoltbot_logging import bind_event

from smoltbot_observer import metrics
from smoltbot_observer.analysis import (
    Analysis,
    AnalysisInput,
    DecisionAnalyzer,
    RulesDecisionAnalyzer,
    fallback_analysis,
)
from smoltbot_observer.cards import CardCache, ResolvedCard
from smoltbot_observer.parsing import ParsedResponse, parse_response
from smoltbot_observer.trace_builder import build_trace, merge_meta, no_trace_reason

log = logging.getLogger(__name__)

TASK_CONTEXT_CHARS = 200
DEFAULT_DECISION_TIMEOUT_S = 15.0
DEFAULT_CONCURRENCY = 8


def task_context(user_query: str | None) -> str | None:
    """What the user asked, shortened for the verifier's prompt (None when unknown)."""
    if not user_query or not user_query.strip():
        return None
    return user_query.strip()[:TASK_CONTEXT_CHARS]


def output_stream(exchange: ExchangeV1) -> str:
    """A caller waits on exchanges carrying ``reply_to``: their trace takes the priority lane."""
    return TRACES_PRIORITY if exchange.reply_to else TRACES


class _Pending(msgspec.Struct, frozen=True, kw_only=True):
    """An exchange between the two passes: parsed, card resolved, waiting for its analysis."""

    exchange: ExchangeV1
    empty: TraceV1
    parsed: ParsedResponse
    merged: ExchangeMeta
    card: ResolvedCard | None = None  # None: the exchange yields no AP-Trace


class ObserverHandler:
    """Turns exchanges into traces.

    ``analyzer`` serves the normal lane; ``fast_analyzer`` (deterministic by default) serves
    exchanges a gateway is waiting on, which must never wait for a decision-LLM call (§3.3).
    ``decision_timeout_s`` bounds the analyses of one batch, ``concurrency`` how many run at once.
    """

    def __init__(
        self,
        cards: CardCache,
        analyzer: DecisionAnalyzer | None = None,
        fast_analyzer: DecisionAnalyzer | None = None,
        *,
        decision_timeout_s: float = DEFAULT_DECISION_TIMEOUT_S,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        if decision_timeout_s <= 0 or concurrency < 1:
            raise ValueError("decision_timeout_s must be positive and concurrency at least 1")
        self._cards = cards
        self._analyzer = analyzer or RulesDecisionAnalyzer()
        self._fast_analyzer = fast_analyzer or RulesDecisionAnalyzer()
        self._backend = str(getattr(self._analyzer, "backend", "rules"))
        self._decision_timeout_s = decision_timeout_s
        self._concurrency = concurrency

    async def __call__(self, batch: Sequence[Delivery]) -> list[Output]:
        pending: list[_Pending] = []
        for delivery in batch:
            exchange = delivery.event
            if not isinstance(exchange, ExchangeV1):
                # Wrong event type on an exchanges stream: retrying can never help.
                raise InvalidEvent(f"observer expects exchange.v1, got {type(exchange).__name__}")
            with bind_event(exchange.event_id):
                pending.append(await self._prepare(exchange))
        gate = asyncio.Semaphore(self._concurrency)
        deadline = asyncio.get_running_loop().time() + self._decision_timeout_s
        analyses = await asyncio.gather(*(self._analyze(p, gate, deadline) for p in pending))
        return [
            Output(output_stream(p.exchange), self._finish(p, analysis))
            for p, analysis in zip(pending, analyses, strict=True)
        ]

    async def observe(self, exchange: ExchangeV1) -> TraceV1:
        """The one TraceV1 of an exchange (``trace`` None when the call yields no AP-Trace)."""
        pending = await self._prepare(exchange)
        deadline = asyncio.get_running_loop().time() + self._decision_timeout_s
        analysis = await self._analyze(pending, asyncio.Semaphore(1), deadline)
        return self._finish(pending, analysis)

    async def _prepare(self, exchange: ExchangeV1) -> _Pending:
        """Parse the response and resolve the card (Redis errors propagate: the batch retries)."""
        meta = exchange.meta
        parsed = parse_response(
            meta.provider,
            exchange.response_body,
            content_encoding=exchange.content_encoding,
            content_type=exchange.content_type,
            truncated=exchange.response_truncated,
        )
        for issue in parsed.issues:
            # The part after ":" is free text (an encoding name): keep labels bounded.
            metrics.PARSE_ISSUES.labels(issue.split(":", 1)[0]).inc()
        if parsed.issues:
            log.info("response parsed with issues", extra={"issues": list(parsed.issues)})
        merged = merge_meta(meta, parsed)
        empty = TraceV1(
            event_id=trace_event_id(meta.exchange_id),
            meta=merged,
            task_context=task_context(exchange.user_query),
            response_model=parsed.model,
            reply_to=exchange.reply_to,
            nudge_ids=list(exchange.nudge_ids),
        )
        reason = no_trace_reason(exchange, parsed)
        if reason is not None:
            log.debug("no AP-Trace for this exchange", extra={"reason": reason})
            return _Pending(exchange=exchange, empty=empty, parsed=parsed, merged=merged)
        resolved = await self._cards.resolve(meta.agent_id, meta.completed_at)
        return _Pending(exchange=exchange, empty=empty, parsed=parsed, merged=merged, card=resolved)

    async def _analyze(
        self, pending: _Pending, gate: asyncio.Semaphore, deadline: float
    ) -> Analysis | None:
        """The decision analysis (None when there is no AP-Trace to build)."""
        if pending.card is None:
            return None
        exchange, parsed = pending.exchange, pending.parsed
        inputs = AnalysisInput(
            thinking=parsed.thinking,
            tool_calls=parsed.tool_calls,
            user_query=exchange.user_query,
            provider=exchange.meta.provider,
            response_text=parsed.text,
        )
        card = pending.card.card
        with bind_event(exchange.event_id):
            if exchange.reply_to:
                analysis = await self._fast_analyzer.analyze(inputs, card)
            else:
                try:
                    async with asyncio.timeout_at(deadline):
                        async with gate:
                            analysis = await self._analyzer.analyze(inputs, card)
                except TimeoutError:
                    log.info("decision analysis not done within the batch's decision timeout")
                    analysis = fallback_analysis(
                        inputs, card, analyzer=self._backend, outcome="timeout"
                    )
        metrics.DECISION_ANALYSES.labels(analysis.analyzer, analysis.outcome).inc()
        return analysis

    def _finish(self, pending: _Pending, analysis: Analysis | None) -> TraceV1:
        if pending.card is None or analysis is None:
            metrics.EXCHANGES.labels("no_trace").inc()
            return pending.empty
        parsed = pending.parsed
        trace = build_trace(
            pending.exchange,
            pending.merged,
            parsed,
            analysis,
            card_id=pending.card.card_id,
            card=pending.card.card,
        )
        metrics.EXCHANGES.labels("trace").inc()
        return msgspec.structs.replace(
            pending.empty,
            trace=trace,
            thinking=parsed.thinking,
            extraction_confidence=parsed.thinking_confidence if parsed.thinking else 0.0,
        )
