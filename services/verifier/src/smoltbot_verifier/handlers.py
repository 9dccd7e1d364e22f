"""Batch handler: ``trace.v1`` deliveries -> one ``verdict.v1`` each (plus the reply copy).

Pure apart from the injected card source, analyzer and (optional) nudge sink, so it is
unit-tested without Redis. After the batch's verdicts are decided, the nudge sink writes the
nudges they call for (wave 3, ``smoltbot_verifier.nudges``) before the outputs are committed: a
Redis error there retries the batch, and the writes are idempotent.
A delivery that is not a ``trace.v1`` raises :class:`InvalidEvent` (the bus retries the batch one
by one and dead-letters only that entry). Card lookups failing with a Redis error propagate, so
the whole batch is retried; nothing else about a single trace can fail the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Protocol

from smoltbot_analysis import Analyzer
from smoltbot_bus import Delivery, InvalidEvent, Output
from smoltbot_contracts import CardRecord, TraceV1, VerdictV1, event_type, ids
from smoltbot_contracts.streams import VERDICTS
from smoltbot_logging import bind_event

from smoltbot_verifier.cards import resolve
from smoltbot_verifier.integrity import IntegrityOptions, build_checkpoint
from smoltbot_verifier.metrics import VERDICTS as VERDICTS_TOTAL
from smoltbot_verifier.metrics import VERIFICATION_ERRORS
from smoltbot_verifier.verification import VERIFICATION_ERROR, verify

log = logging.getLogger(__name__)


class NudgeSink(Protocol):
    """Where the nudges a batch's verdicts call for go (``NudgeWriter`` in production)."""

    async def write(self, verdicts: Sequence[VerdictV1]) -> Sequence[object]: ...


class CardSource(Protocol):
    """Where cards come from (``CardStore`` in production, a dict in tests)."""

    async def fetch(self, agents: Iterable[str]) -> dict[str, tuple[CardRecord | None, str]]: ...


REPLY_MAXLEN = 10_000
REPLY_TTL_S = 3600


def reply_stream(reply_to: str, prefix: str) -> str:
    """``reply_to`` as a logical stream name (tolerates a producer that included the prefix)."""
    return reply_to.removeprefix(prefix) if prefix and reply_to.startswith(prefix) else reply_to


async def verdict_for(
    event: TraceV1,
    record: CardRecord | None,
    reason: str,
    analyzer: Analyzer,
    options: IntegrityOptions,
) -> VerdictV1:
    """Everything the verifier decides about one trace event, deterministically."""
    meta = event.meta
    verdict_id = ids.verdict_event_id(meta.exchange_id)
    if event.trace is None:
        # Upstream error / GET: no AP-Trace, but the exchange row must still be written.
        return VerdictV1(event_id=verdict_id, meta=meta)
    card = resolve(meta.agent_id, record, reason, meta.completed_at)
    verification = verify(event.trace, card.card, meta.completed_at)
    if any(v.type == VERIFICATION_ERROR for v in verification.violations):
        VERIFICATION_ERRORS.inc()
    checkpoint = await build_checkpoint(event, card, analyzer, options)
    return VerdictV1(
        event_id=verdict_id,
        meta=meta,
        trace=event.trace,
        verification=verification,
        checkpoint=checkpoint,
    )


class VerifierHandler:
    """The consumer's handler: ``await handler(batch) -> outputs``."""

    def __init__(
        self,
        cards: CardSource,
        analyzer: Analyzer,
        options: IntegrityOptions,
        prefix: str = "",
        *,
        nudges: NudgeSink | None = None,
    ) -> None:
        self._cards = cards
        self._analyzer = analyzer
        self._options = options
        self._prefix = prefix
        self._nudges = nudges

    async def __call__(self, batch: Sequence[Delivery]) -> list[Output]:
        events: list[TraceV1] = []
        for delivery in batch:
            if not isinstance(delivery.event, TraceV1):
                raise InvalidEvent(
                    f"verifier expects trace.v1 on {delivery.stream!r}, "
                    f"got {event_type(delivery.event)}"
                )
            events.append(delivery.event)
        records = await self._cards.fetch(e.meta.agent_id for e in events if e.trace is not None)
        outputs: list[Output] = []
        verdicts: list[VerdictV1] = []
        for event in events:
            with bind_event(event.event_id):
                record, reason = records.get(event.meta.agent_id, (None, "missing"))
                verdict = await verdict_for(event, record, reason, self._analyzer, self._options)
            VERDICTS_TOTAL.labels(
                verdict.checkpoint.verdict if verdict.checkpoint else "none"
            ).inc()
            outputs.append(Output(VERDICTS, verdict))
            verdicts.append(verdict)
            if event.reply_to:
                # Nobody trims a reply stream and its gateway may be gone for good: bound it.
                outputs.append(
                    Output(
                        reply_stream(event.reply_to, self._prefix),
                        verdict,
                        maxlen=REPLY_MAXLEN,
                        ttl_s=REPLY_TTL_S,
                    )
                )
        if self._nudges is not None:
            await self._nudges.write(verdicts)
        return outputs
