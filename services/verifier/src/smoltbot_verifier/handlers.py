"""Batch handler: ``trace.v1`` deliveries -> one ``verdict.v1`` each (plus the reply copy).

Pure apart from the injected card source, analyzer and (optional) nudge sink and agent state,
so it is unit-tested without Redis. With agent state (``Facts``: ``rt:{agent}`` and the
``cfg:{agent}`` writer) each trace is analysed with its session window, its checkpoint is
recorded in ``rt:{agent}`` and the facts it decides (drift alerts, auto-containment) go onto its
verdict; containments are written to ``cfg:{agent}``. Traces of one batch are decided in
(agent, completion time, checkpoint id) order, so a later trace sees the earlier ones in its
window; outputs keep the delivery order. After the batch's verdicts are decided, the nudge sink
writes the nudges they call for (wave 3, ``smoltbot_verifier.nudges``) and each verdict reports
its nudge as a ``NudgeCreated`` fact (and the nudges its request carried as ``NudgesDelivered``)
before the outputs are committed: a Redis error in any of these writes retries the batch, and
every write is idempotent (derived ids, ``HSETNX``, cause-keyed containment).
A delivery that is not a ``trace.v1`` raises :class:`InvalidEvent` (the bus retries the batch one
by one and dead-letters only that entry). Card lookups failing with a Redis error propagate, so
the whole batch is retried; nothing else about a single trace can fail the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import aip
import msgspec
from smoltbot_agentstate import AgentState
from smoltbot_analysis import Analyzer, WindowEntry
from smoltbot_bus import Delivery, InvalidEvent, Output
from smoltbot_contracts import (
    AgentConfig,
    CardRecord,
    Containment,
    Fact,
    Nudge,
    NudgeCreated,
    NudgesDelivered,
    TraceV1,
    VerdictV1,
    event_type,
    ids,
)
from smoltbot_contracts.streams import VERDICTS
from smoltbot_logging import bind_event

from smoltbot_verifier import containment as containment_step
from smoltbot_verifier.cards import ResolvedCard, resolve
from smoltbot_verifier.drift import aap_drift, aip_drift
from smoltbot_verifier.integrity import IntegrityOptions, build_checkpoint
from smoltbot_verifier.metrics import CONCERNS, DRIFT_ALERTS, VERIFICATION_ERRORS
from smoltbot_verifier.metrics import VERDICTS as VERDICTS_TOTAL
from smoltbot_verifier.state import Entry, RuntimeState, aip_checkpoint, entry_for, window_for
from smoltbot_verifier.verification import VERIFICATION_ERROR, verify

log = logging.getLogger(__name__)


class NudgeSink(Protocol):
    """Where the nudges a batch's verdicts call for go (``NudgeWriter`` in production): every
    nudge the verdicts made, with whether it was written now."""

    async def write_present(
        self, verdicts: Sequence[VerdictV1]
    ) -> Sequence[tuple[Nudge, bool]]: ...


class CardSource(Protocol):
    """Where cards come from (``CardStore`` in production, a dict in tests)."""

    async def fetch(self, agents: Iterable[str]) -> dict[str, tuple[CardRecord | None, str]]: ...


class ConfigSource(Protocol):
    """Where agent configs come from (``nudges.ConfigStore`` in production)."""

    async def fetch(self, agents: Iterable[str]) -> dict[str, AgentConfig]: ...


@dataclass(frozen=True, slots=True)
class Facts:
    """What the per-agent steps need: ``rt:{agent}``, the config reader, the ``cfg`` writer."""

    runtime: RuntimeState
    configs: ConfigSource
    agents: AgentState


AIP_CONCERN_CATEGORIES = frozenset(
    {
        "prompt_injection",
        "value_misalignment",
        "autonomy_violation",
        "reasoning_corruption",
        "deceptive_reasoning",
        "undeclared_intent",
    }
)


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
    *,
    window: Sequence[WindowEntry] = (),
    card: ResolvedCard | None = None,
) -> VerdictV1:
    """Everything the verifier decides about one trace event, deterministically (facts aside:
    the handler adds them once the checkpoint is recorded)."""
    meta = event.meta
    verdict_id = ids.verdict_event_id(meta.exchange_id)
    delivered: list[Fact] = []
    if event.nudge_ids:
        delivered.append(
            NudgesDelivered(
                nudge_ids=list(event.nudge_ids),
                agent_id=meta.agent_id,
                exchange_id=meta.exchange_id,
                event_id=meta.exchange_id,  # the gateway's exchange.v1 event id
                delivered_at=meta.started_at,
            )
        )
    if event.trace is None:
        # Upstream error / GET: no AP-Trace, but the exchange row must still be written.
        return VerdictV1(event_id=verdict_id, meta=meta, facts=delivered)
    if card is None:
        card = resolve(meta.agent_id, record, reason, meta.completed_at)
    verification = verify(event.trace, card.card, meta.completed_at)
    if any(v.type == VERIFICATION_ERROR for v in verification.violations):
        VERIFICATION_ERRORS.inc()
    checkpoint = await build_checkpoint(event, card, analyzer, options, window)
    return VerdictV1(
        event_id=verdict_id,
        meta=meta,
        trace=event.trace,
        verification=verification,
        checkpoint=checkpoint,
        facts=delivered,
    )


def _nudge_fact(nudge: Nudge) -> NudgeCreated:
    return NudgeCreated(
        nudge_id=nudge.id,
        agent_id=nudge.agent_id,
        checkpoint_id=nudge.checkpoint_id,
        created_at=datetime.fromtimestamp(nudge.created_ms / 1000, UTC),
        text=nudge.text,
    )


def _decision_order(event: TraceV1) -> tuple[str, float, str]:
    meta = event.meta
    return (meta.agent_id, meta.completed_at.timestamp(), ids.checkpoint_id(meta.exchange_id))


@dataclass(slots=True)
class _Pending:
    """One verdict waiting for its facts."""

    index: int
    agent: str
    entry: Entry
    card: ResolvedCard
    window: list[aip.IntegrityCheckpoint]


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
        facts: Facts | None = None,
    ) -> None:
        self._cards = cards
        self._analyzer = analyzer
        self._options = options
        self._prefix = prefix
        self._nudges = nudges
        self._facts = facts

    async def __call__(self, batch: Sequence[Delivery]) -> list[Output]:
        events: list[TraceV1] = []
        for delivery in batch:
            if not isinstance(delivery.event, TraceV1):
                raise InvalidEvent(
                    f"verifier expects trace.v1 on {delivery.stream!r}, "
                    f"got {event_type(delivery.event)}"
                )
            events.append(delivery.event)
        traced = [e.meta.agent_id for e in events if e.trace is not None]
        records = await self._cards.fetch(traced)
        history: dict[str, list[Entry]] = {}
        if self._facts is not None:
            history = await self._facts.runtime.history(traced)
        decided: list[VerdictV1 | None] = [None] * len(events)
        pending: list[_Pending] = []
        for index in sorted(range(len(events)), key=lambda i: _decision_order(events[i])):
            event = events[index]
            meta = event.meta
            with bind_event(event.event_id):
                if event.trace is None:
                    decided[index] = await verdict_for(
                        event, None, "", self._analyzer, self._options
                    )
                    continue
                record, reason = records.get(meta.agent_id, (None, "missing"))
                card = resolve(meta.agent_id, record, reason, meta.completed_at)
                window: list[aip.IntegrityCheckpoint] = []
                if self._facts is not None:
                    window = window_for(
                        history.get(meta.agent_id, ()),
                        checkpoint_id=ids.checkpoint_id(meta.exchange_id),
                        completed_ms=int(meta.completed_at.timestamp() * 1000),
                        session_id=meta.session_id,
                        agent=meta.agent_id,
                        card_id=card.card_id,
                    )
                shown = [
                    WindowEntry(
                        checkpoint_id=cp.checkpoint_id,
                        verdict=cp.verdict,
                        reasoning_summary=cp.reasoning_summary,
                    )
                    for cp in window
                ]
                verdict = await verdict_for(
                    event, record, reason, self._analyzer, self._options, window=shown, card=card
                )
            decided[index] = verdict
            checkpoint = verdict.checkpoint
            if checkpoint is None:
                continue
            if not checkpoint.synthetic:
                for concern in checkpoint.concerns:
                    known = concern.category in AIP_CONCERN_CATEGORIES
                    CONCERNS.labels(concern.category if known else "other").inc()
            if self._facts is not None:
                entry = entry_for(event, checkpoint)
                kept = history.setdefault(meta.agent_id, [])
                if all(e.checkpoint_id != entry.checkpoint_id for e in kept):
                    kept.append(entry)  # later traces of this batch see it in their window
                pending.append(_Pending(index, meta.agent_id, entry, card, window))
        if self._facts is not None and pending:
            await self._add_facts(self._facts, decided, pending)
        if self._nudges is not None:
            # Written before the outputs are built so each verdict reports the nudge it made.
            made = {
                nudge.exchange_id: nudge
                for nudge, _ in await self._nudges.write_present(
                    [v for v in decided if v is not None]
                )
            }
            for index, maybe in enumerate(decided):
                if maybe is not None and (nudge := made.get(maybe.meta.exchange_id)) is not None:
                    decided[index] = msgspec.structs.replace(
                        maybe, facts=[*maybe.facts, _nudge_fact(nudge)]
                    )
        outputs: list[Output] = []
        for event, maybe in zip(events, decided, strict=True):
            assert maybe is not None
            verdict = maybe
            VERDICTS_TOTAL.labels(
                verdict.checkpoint.verdict if verdict.checkpoint else "none"
            ).inc()
            outputs.append(Output(VERDICTS, verdict))
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
        return outputs

    async def _add_facts(
        self, facts: Facts, decided: list[VerdictV1 | None], pending: list[_Pending]
    ) -> None:
        """Record the checkpoints in ``rt:{agent}``, decide drift and containment facts from
        what it answers, put them on the verdicts and write the containments."""
        agents = [p.agent for p in pending]
        recorded = await facts.runtime.record(
            [(agent, p.entry) for agent, p in zip(agents, pending, strict=True)]
        )
        configs = await facts.configs.fetch(agents)
        containments: list[Containment] = []
        for agent, p, rec in zip(agents, pending, recorded, strict=True):
            verdict = decided[p.index]
            assert verdict is not None
            assert verdict.checkpoint is not None
            checkpoint = verdict.checkpoint
            at = verdict.meta.completed_at
            found: list[Fact] = []
            if rec.upto and rec.upto[-1].checkpoint_id == checkpoint.checkpoint_id:
                window = [*p.window, aip_checkpoint(p.entry, agent, p.card.card_id)]
                window = window[-aip.DEFAULT_WINDOW_MAX_SIZE :]
                for alert in (
                    aip_drift(
                        rec.upto, window, agent=agent, card_id=p.card.card_id, detected_at=at
                    ),
                    aap_drift(
                        rec.upto, p.card.card, agent=agent, card_id=p.card.card_id, detected_at=at
                    ),
                ):
                    if alert is not None:
                        DRIFT_ALERTS.labels(alert.source).inc()
                        found.append(alert)
            contained = None
            if checkpoint.verdict == "boundary_violation" and not checkpoint.synthetic:
                contained = containment_step.containment_for(
                    configs.get(agent, AgentConfig()),
                    agent=agent,
                    checkpoint_id=checkpoint.checkpoint_id,
                    consecutive=rec.consecutive_violations,
                    streak_start=rec.streak_start,
                    decided_at=at,
                )
            if contained is not None:
                found.append(contained)
                containments.append(contained)
            if found:
                log.info(
                    "verifier facts",
                    extra={"agent_id": agent, "facts": [type(f).__name__ for f in found]},
                )
                decided[p.index] = msgspec.structs.replace(verdict, facts=[*verdict.facts, *found])
        if containments:
            await containment_step.apply(facts.agents, containments)
