"""Response bodies of the read endpoints added for the owner's view (docs/api.md, "Reading data"):
drift alerts, integrity scores, the unified timeline and usage per model."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import msgspec

from smoltbot_api.schemas import Page

__all__ = [
    "AapIntegrity",
    "AgentIntegrity",
    "AipIntegrity",
    "DriftAlert",
    "DriftAlertList",
    "ModelUsage",
    "TimelineEvent",
    "TimelineKind",
    "TimelinePage",
    "Usage",
]

JSONValue = Any
TimelineKind = Literal["trace", "checkpoint", "drift_alert", "containment"]


class DriftAlert(msgspec.Struct, kw_only=True):
    """A drift alert the verifier raised (AAP: traces drifting from the card; AIP: a streak of
    non-clear checkpoints), one per streak."""

    id: str
    source: Literal["aap", "aip"]
    agent_id: str
    card_id: str
    session_id: str | None
    alert_type: str
    severity: Literal["low", "medium", "high"]
    description: str
    streak_start: str
    streak_ids: list[JSONValue]
    exchange_id: uuid.UUID
    detected_at: datetime
    drift_data: dict[str, JSONValue]
    created_at: datetime


class DriftAlertList(Page):
    alerts: list[DriftAlert]


class AapIntegrity(msgspec.Struct, kw_only=True):
    """AAP: how many of the agent's traces passed verification against its card.

    ``integrity_score`` = verified / checked (traces with a verification result); null while no
    trace has been checked. Traces still waiting for the verifier count in ``total_traces`` only.
    """

    agent_id: str
    total_traces: int
    checked_traces: int
    verified_traces: int
    violation_count: int
    integrity_score: float | None


class AipIntegrity(msgspec.Struct, kw_only=True):
    """AIP: the verdicts of the agent's integrity checkpoints.

    The verdict counts and ``integrity_ratio`` (= clear / analysed) cover analysed checkpoints
    only; synthetic ones (no thinking, below the evidence threshold, analysis failed) are counted
    apart, and ``coverage`` = analysed / total. Ratios are null when there is nothing to divide.
    """

    agent_id: str
    total_checks: int
    analyzed_checks: int
    synthetic_checks: int
    clear_count: int
    review_count: int
    violation_count: int
    integrity_ratio: float | None
    coverage: float | None
    latest_verdict: Literal["clear", "review_needed", "boundary_violation"] | None
    latest_checkpoint_at: datetime | None


class AgentIntegrity(msgspec.Struct, kw_only=True):
    """Both scores of one agent, read in one snapshot."""

    agent_id: str
    aap: AapIntegrity
    aip: AipIntegrity


class TimelineEvent(msgspec.Struct, kw_only=True):
    """One row of an agent's timeline; ``data`` holds the kind's own fields (see docs/api.md)."""

    kind: TimelineKind
    id: str
    timestamp: datetime
    session_id: str | None
    summary: str
    data: dict[str, JSONValue]


class TimelinePage(Page):
    agent_id: str
    events: list[TimelineEvent]


class ModelUsage(msgspec.Struct, kw_only=True):
    """The calls of one provider and model (model null when the gateway could not tell)."""

    provider: str
    model: str | None
    exchanges: int
    input_tokens: int
    output_tokens: int
    errors: int
    first_at: datetime
    last_at: datetime


class Usage(msgspec.Struct, kw_only=True):
    """An agent's calls per model (most used first) and their sums."""

    agent_id: str
    since: datetime | None
    until: datetime | None
    exchanges: int
    input_tokens: int
    output_tokens: int
    models: list[ModelUsage]
