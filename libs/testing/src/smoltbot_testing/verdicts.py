"""Many varied ``verdict.v1`` events, reproducible from a seed: what the persister replay test
and ``make bench-persister`` write.

Each event is one exchange of one of ``agents`` agents (seen from a few keys), with ids derived
the way the services derive them. They vary the way real traffic does: calls without an
AP-Trace (upstream errors), traces with and without a checkpoint, clear, review and violating
checkpoints, and every fact the verifier puts on a verdict: drift alerts, auto-containments,
nudges made (``NudgeCreated``) and delivered later (``NudgesDelivered``, sometimes on an event
that comes *before* the creation in the list, as two streams' deliveries can).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from smoltbot_contracts import (
    APTrace,
    Checkpoint,
    Concern,
    Containment,
    DriftAlert,
    Fact,
    NudgeCreated,
    NudgesDelivered,
    TraceAction,
    TraceContext,
    TraceDecision,
    Usage,
    Verdict,
    VerdictV1,
    Verification,
    Violation,
)
from smoltbot_contracts.ids import (
    card_id,
    checkpoint_id,
    containment_id,
    drift_alert_id,
    nudge_id,
    trace_id,
    uuid7,
    verdict_event_id,
)

from smoltbot_testing.events import exchange_meta

__all__ = ["T0", "varied_verdicts"]

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

_VERDICTS: tuple[Verdict, ...] = (
    "clear",
    "clear",
    "clear",
    "review_needed",
    "boundary_violation",
)


def varied_verdicts(n: int, *, agents: int = 20, seed: int = 7) -> list[VerdictV1]:
    """``n`` verdicts of ``agents`` agents, one exchange each, in completion order (roughly:
    a few deliveries are moved ahead of the creation they refer to)."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    keys = [f"sk-replay-{seed}-{i}" for i in range(agents)]
    events: list[VerdictV1] = []
    pending: dict[str, list[str]] = {}  # agent -> nudge ids not delivered yet
    made_at: dict[str, int] = {}  # nudge id -> index of the event that made it
    for i in range(n):
        at = T0 + timedelta(seconds=i)
        key = keys[rng.randrange(agents)]
        meta = exchange_meta(
            key,
            at,
            exchange_id=uuid7(int(at.timestamp() * 1000)),
            streamed=rng.random() < 0.5,
            started_at=at - timedelta(milliseconds=rng.randrange(200, 5000)),
            upstream_ms=float(rng.randrange(100, 4000)),
            total_ms=float(rng.randrange(4000, 5000)),
            ttfb_ms=float(rng.randrange(50, 500)) if rng.random() < 0.5 else None,
            usage=Usage(input_tokens=rng.randrange(1, 4000), output_tokens=rng.randrange(1, 800)),
            gateway_instance=f"gw-{rng.randrange(3)}",
            status=200 if rng.random() < 0.95 else 529,
        )
        agent, card = meta.agent_id, card_id(meta.agent_id)
        facts: list[Fact] = []
        delivered = pending.pop(agent, [])
        if delivered:
            facts.append(
                NudgesDelivered(
                    nudge_ids=delivered,
                    agent_id=agent,
                    exchange_id=meta.exchange_id,
                    event_id=meta.exchange_id,
                    delivered_at=meta.started_at,
                )
            )
        if meta.status != 200:  # an upstream error: no AP-Trace, only the exchange row
            events.append(
                VerdictV1(event_id=verdict_event_id(meta.exchange_id), meta=meta, facts=facts)
            )
            continue
        tid = trace_id(meta.exchange_id)
        verified = rng.random() < 0.8
        trace = APTrace(
            trace_id=tid,
            agent_id=agent,
            card_id=card,
            timestamp=at,
            action=TraceAction(name=f"tool-{rng.randrange(12)}", parameters={"n": i}),
            decision=TraceDecision(
                alternatives_considered=[],
                selected=f"option-{rng.randrange(4)}",
                selection_reasoning="the cheapest safe option",
            ),
            context=TraceContext(session_id=meta.session_id),
        )
        verification = Verification(
            verified=verified,
            card_id=card,
            similarity_score=round(rng.random(), 3),
            violations=[]
            if verified
            else [Violation(type="forbidden", severity="high", description=f"violation {i}")],
            checks_performed=["autonomy", "values"],
            algorithm_version="1.0",
        )
        checkpoint = None
        if rng.random() < 0.85:
            verdict = rng.choice(_VERDICTS)
            cid = checkpoint_id(meta.exchange_id)
            checkpoint = Checkpoint(
                checkpoint_id=cid,
                agent_id=agent,
                card_id=card,
                timestamp=at,
                session_id=meta.session_id,
                thinking_block_hash=f"{i:064x}",
                provider=meta.provider,
                model=meta.model or "",
                verdict=verdict,
                concerns=[]
                if verdict == "clear"
                else [Concern(category="deception", severity="high", description=f"c{i}")],
                linked_trace_id=tid,
                recommended_action="continue" if verdict == "clear" else "log_and_continue",
            )
            if verdict != "clear" and rng.random() < 0.3:
                facts.append(
                    DriftAlert(
                        alert_id=drift_alert_id("aip", agent, cid),
                        source="aip",
                        agent_id=agent,
                        card_id=card,
                        session_id=meta.session_id,
                        alert_type="aip:deception",
                        severity="high",
                        description="3 consecutive integrity concerns",
                        streak_start=cid,
                        streak_ids=[cid],
                        detected_at=at,
                        data={"n": i},
                    )
                )
            if verdict == "boundary_violation":
                nid = nudge_id(meta.exchange_id)
                facts.append(
                    NudgeCreated(
                        nudge_id=nid,
                        agent_id=agent,
                        checkpoint_id=cid,
                        created_at=at,
                        text=f"Your previous response (checkpoint {cid}) was flagged.",
                    )
                )
                made_at[nid] = len(events)
                if rng.random() < 0.8:
                    pending.setdefault(agent, []).append(nid)
                if rng.random() < 0.1:
                    facts.append(
                        Containment(
                            containment_id=containment_id(agent, cid),
                            agent_id=agent,
                            reason="Auto-contained: 5 consecutive boundary violations",
                            checkpoint_id=cid,
                            streak_start=cid,
                            consecutive_violations=5,
                            threshold=5,
                            decided_at=at,
                        )
                    )
        events.append(
            VerdictV1(
                event_id=verdict_event_id(meta.exchange_id),
                meta=meta,
                trace=trace,
                verification=verification,
                checkpoint=checkpoint,
                facts=facts,
            )
        )
    # Every fourth delivery overtakes the creation of its first nudge (another partition of the
    # stream, a retried batch): it moves to just before that event.
    order = [float(i) for i in range(len(events))]
    moved = 0
    for index, event in enumerate(events):
        for fact in event.facts:
            if isinstance(fact, NudgesDelivered):
                moved += 1
                if moved % 4 == 0:
                    order[index] = made_at[fact.nudge_ids[0]] - 0.5
    return [e for _, e in sorted(zip(order, events, strict=True), key=lambda pair: pair[0])]
