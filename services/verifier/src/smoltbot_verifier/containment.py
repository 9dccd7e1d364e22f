"""Auto-containment (gateway reference §2.4): an agent in ``nudge`` or ``enforce`` mode whose
consecutive boundary violations reach its ``auto_containment_threshold`` is paused.

The decision is a pure function of the violation streak ``rt:{agent}`` answered for the
checkpoint and the agent's config: a :class:`~smoltbot_contracts.Containment` fact when the
streak length equals the threshold at this checkpoint (so one per streak), with the id derived
from the agent and the streak's first checkpoint. It is emitted whatever the agent's current
containment (a replay carries the same fact); the write goes through ``smoltbot_agentstate``
with that id as its cause, so it pauses an active agent once, is a no-op while the agent is
contained, and is never re-applied after an operator resumed the agent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from smoltbot_agentstate import AgentState
from smoltbot_contracts import AgentConfig, Containment, ids

from smoltbot_verifier.metrics import CONTAINMENTS

__all__ = ["CONTAINING_MODES", "apply", "containment_for"]

CONTAINING_MODES = frozenset({"nudge", "enforce"})


def containment_for(
    config: AgentConfig,
    *,
    agent: str,
    checkpoint_id: str,
    consecutive: int,
    streak_start: str | None,
    decided_at: datetime,
) -> Containment | None:
    """The containment this checkpoint decides, or None."""
    threshold = config.auto_containment_threshold
    if threshold <= 0 or config.enforcement_mode not in CONTAINING_MODES:
        return None
    if consecutive != threshold or streak_start is None:
        return None
    return Containment(
        containment_id=ids.containment_id(agent, streak_start),
        agent_id=agent,
        reason=f"Auto-contained: {consecutive} consecutive boundary violations",
        checkpoint_id=checkpoint_id,
        streak_start=streak_start,
        consecutive_violations=consecutive,
        threshold=threshold,
        decided_at=decided_at,
    )


async def apply(state: AgentState, facts: Sequence[Containment]) -> list[Containment]:
    """Write each containment to ``cfg:{agent}``; the ones that paused an agent now."""
    applied: list[Containment] = []
    for fact in facts:
        result = await state.contain(
            fact.agent_id, fact.reason, cause=fact.containment_id, status=fact.new_status
        )
        CONTAINMENTS.labels(result.outcome).inc()
        if result.written:
            applied.append(fact)
    return applied
