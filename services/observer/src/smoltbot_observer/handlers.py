"""Batch handler: ``exchange.v1`` deliveries in, one ``trace.v1`` output per exchange.

Pure apart from the card lookup (behind :class:`~smoltbot_observer.cards.CardCache`): no Redis
here, so every rule is testable with in-memory fakes. Deterministic: the same exchange always
gives the same TraceV1, which makes redelivery and replay safe.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import msgspec
from smoltbot_bus import Delivery, InvalidEvent, Output
from smoltbot_contracts import ExchangeV1, TraceV1
from smoltbot_contracts.ids import trace_event_id
from smoltbot_contracts.streams import TRACES, TRACES_PRIORITY
from smoltbot_logging import bind_event

from smoltbot_observer import metrics
from smoltbot_observer.analysis import AnalysisInput, DecisionAnalyzer, RulesDecisionAnalyzer
from smoltbot_observer.cards import CardCache
from smoltbot_observer.parsing import parse_response
from smoltbot_observer.trace_builder import build_trace, merge_meta, no_trace_reason

log = logging.getLogger(__name__)

TASK_CONTEXT_CHARS = 200


def task_context(user_query: str | None) -> str | None:
    """What the user asked, shortened for the verifier's prompt (None when unknown)."""
    if not user_query or not user_query.strip():
        return None
    return user_query.strip()[:TASK_CONTEXT_CHARS]


def output_stream(exchange: ExchangeV1) -> str:
    """A caller waits on exchanges carrying ``reply_to``: their trace takes the priority lane."""
    return TRACES_PRIORITY if exchange.reply_to else TRACES


class ObserverHandler:
    """Turns exchanges into traces.

    ``analyzer`` serves the normal lane; ``fast_analyzer`` (deterministic by default) serves
    exchanges a gateway is waiting on, which must never wait for a decision-LLM call (§3.3).
    """

    def __init__(
        self,
        cards: CardCache,
        analyzer: DecisionAnalyzer | None = None,
        fast_analyzer: DecisionAnalyzer | None = None,
    ) -> None:
        self._cards = cards
        self._analyzer = analyzer or RulesDecisionAnalyzer()
        self._fast_analyzer = fast_analyzer or RulesDecisionAnalyzer()

    async def __call__(self, batch: Sequence[Delivery]) -> list[Output]:
        outputs: list[Output] = []
        for delivery in batch:
            exchange = delivery.event
            if not isinstance(exchange, ExchangeV1):
                # Wrong event type on an exchanges stream: retrying can never help.
                raise InvalidEvent(f"observer expects exchange.v1, got {type(exchange).__name__}")
            with bind_event(exchange.event_id):
                trace = await self.observe(exchange)
            outputs.append(Output(output_stream(exchange), trace))
        return outputs

    async def observe(self, exchange: ExchangeV1) -> TraceV1:
        """The one TraceV1 of an exchange (``trace`` None when the call yields no AP-Trace)."""
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
        )
        reason = no_trace_reason(exchange, parsed)
        if reason is not None:
            metrics.EXCHANGES.labels("no_trace").inc()
            log.debug("no AP-Trace for this exchange", extra={"reason": reason})
            return empty

        resolved = await self._cards.resolve(meta.agent_id, meta.completed_at)
        analyzer = self._fast_analyzer if exchange.reply_to else self._analyzer
        analysis = await analyzer.analyze(
            AnalysisInput(
                thinking=parsed.thinking,
                tool_calls=parsed.tool_calls,
                user_query=exchange.user_query,
                provider=meta.provider,
            ),
            resolved.card,
        )
        trace = build_trace(
            exchange, merged, parsed, analysis, card_id=resolved.card_id, card=resolved.card
        )
        metrics.EXCHANGES.labels("trace").inc()
        return msgspec.structs.replace(
            empty,
            trace=trace,
            thinking=parsed.thinking,
            extraction_confidence=parsed.thinking_confidence if parsed.thinking else 0.0,
        )
