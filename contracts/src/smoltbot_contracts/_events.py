"""Event types carried on the bus (architecture §3.1).

Evolution rules: add optional fields with defaults only; never rename, reorder into array form or
change a type. A breaking change is a new tagged struct (``exchange.v2``). Unknown fields are
ignored by readers so old consumers keep working while producers move ahead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

# Free-form JSON (tool parameters, card documents): any JSON value per key.
JSONObject = dict[str, Any]

Provider = Literal["anthropic", "openai", "gemini"]
EnforcementMode = Literal["off", "observe", "nudge", "enforce"]
Verdict = Literal["clear", "review_needed", "boundary_violation"]
Severity = Literal["low", "medium", "high", "critical"]
RecommendedAction = Literal["continue", "log_and_continue", "pause_for_review", "deny_and_escalate"]
ControlKind = Literal[
    "card_published", "settings_changed", "containment_changed", "reverify", "invalidate"
]


class Usage(msgspec.Struct, frozen=True, kw_only=True):
    """Token counts reported by the provider (None when the provider did not say)."""

    input_tokens: int | None = None
    output_tokens: int | None = None


class ExchangeMeta(msgspec.Struct, frozen=True, kw_only=True):
    """Usage metadata of one proxied call; travels unchanged exchange -> trace -> verdict.

    It is what the persister writes as the ``exchanges`` row, so every later event carries it.
    """

    exchange_id: str
    agent_id: str
    agent_hash: str
    session_id: str
    provider: Provider
    model: str | None = None
    method: str = "POST"
    path: str = ""
    status: int = 0
    streamed: bool = False
    started_at: datetime
    completed_at: datetime
    upstream_ms: float = 0.0
    total_ms: float = 0.0
    ttfb_ms: float | None = None
    usage: Usage = msgspec.field(default_factory=Usage)
    gateway_instance: str = ""
    agent_name: str | None = None


class ExchangeV1(msgspec.Struct, frozen=True, kw_only=True, tag="exchange.v1", tag_field="type"):
    """Gateway -> observer: one proxied call, with the response bytes up to a cap."""

    event_id: str
    meta: ExchangeMeta
    user_query: str | None = None
    response_body: bytes = b""
    response_truncated: bool = False
    content_encoding: str | None = None
    content_type: str | None = None
    nudge_ids: list[str] = msgspec.field(default_factory=list)
    enforcement_mode: EnforcementMode = "observe"
    reply_to: str | None = None
    """Logical stream (no prefix), e.g. ``replies:<gateway instance>``, when a caller waits."""


# ----------------------------------------------------------------------------------------------
# AP-Trace (AAP) as carried on the bus; field names follow the protocol so that
# ``msgspec.to_builtins(trace)`` is the dict the AAP SDK verifies. Defaults are encoded (no
# omit_defaults): the SDK reads a missing ``category`` as "not bounded" and requires
# ``values_applied``. Only optional scores are omitted when unset.


class TraceTarget(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    identifier: str


class TraceAction(msgspec.Struct, frozen=True, kw_only=True):
    type: Literal["recommend", "execute", "escalate", "deny"] = "execute"
    name: str
    category: Literal["bounded", "escalation_trigger", "forbidden"] = "bounded"
    target: TraceTarget | None = None
    parameters: JSONObject = msgspec.field(default_factory=dict)


class Alternative(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    option_id: str
    description: str
    score: float | None = None


class TraceDecision(msgspec.Struct, frozen=True, kw_only=True):
    alternatives_considered: list[Alternative]
    selected: str
    selection_reasoning: str
    values_applied: list[str] = msgspec.field(default_factory=list)
    confidence: float | None = None


class TraceEscalation(msgspec.Struct, frozen=True, kw_only=True):
    evaluated: bool = True
    required: bool = False
    reason: str = "No escalation triggers matched"


class TraceContext(msgspec.Struct, frozen=True, kw_only=True):
    session_id: str
    conversation_turn: int = 1
    environment: dict[str, str] = msgspec.field(default_factory=dict)
    metadata: JSONObject = msgspec.field(default_factory=dict)


class APTrace(msgspec.Struct, frozen=True, kw_only=True):
    trace_id: str
    agent_id: str
    card_id: str
    timestamp: datetime
    action: TraceAction
    decision: TraceDecision
    escalation: TraceEscalation = msgspec.field(default_factory=TraceEscalation)
    context: TraceContext | None = None


class TraceV1(msgspec.Struct, frozen=True, kw_only=True, tag="trace.v1", tag_field="type"):
    """Observer -> verifier. ``trace`` is None for calls that yield no AP-Trace (errors, GETs)."""

    event_id: str
    meta: ExchangeMeta
    trace: APTrace | None = None
    thinking: str | None = None
    extraction_confidence: float = 0.0
    task_context: str | None = None
    response_model: str | None = None
    reply_to: str | None = None
    nudge_ids: list[str] = msgspec.field(default_factory=list)
    """The nudges the gateway put into this call (copied from ``exchange.v1``)."""


# ----------------------------------------------------------------------------------------------
# Verification (AAP) and integrity checkpoint (AIP)


class Violation(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    severity: Severity
    description: str
    trace_field: str | None = None


class VerificationWarning(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    description: str
    trace_field: str | None = None


class Verification(msgspec.Struct, frozen=True, kw_only=True):
    verified: bool
    card_id: str
    similarity_score: float = 0.0
    violations: list[Violation] = msgspec.field(default_factory=list)
    warnings: list[VerificationWarning] = msgspec.field(default_factory=list)
    checks_performed: list[str] = msgspec.field(default_factory=list)
    algorithm_version: str = ""
    recommended_action: str | None = None


class Concern(msgspec.Struct, frozen=True, kw_only=True):
    category: str
    severity: Severity
    description: str
    evidence: str = ""
    relevant_card_field: str | None = None
    relevant_conscience_value: str | None = None


class ConscienceContext(msgspec.Struct, frozen=True, kw_only=True):
    values_checked: list[str] = msgspec.field(default_factory=list)
    conflicts: list[str] = msgspec.field(default_factory=list)
    supports: list[str] = msgspec.field(default_factory=list)
    considerations: list[str] = msgspec.field(default_factory=list)
    consultation_depth: Literal["surface", "standard", "deep"] = "surface"


class WindowPosition(msgspec.Struct, frozen=True, kw_only=True):
    index: int = 0
    window_size: int = 1


class AnalysisMetadata(msgspec.Struct, frozen=True, kw_only=True):
    analysis_model: str = "none"
    analysis_duration_ms: float = 0.0
    thinking_tokens_original: int = 0
    thinking_tokens_analyzed: int = 0
    truncated: bool = False
    extraction_confidence: float = 0.0


class CheckpointCore(msgspec.Struct, frozen=True, kw_only=True):
    """What identifies a checkpoint and its verdict: shared by the event and the API's row.
    ``timestamp`` is the exchange's completion time, never "now"."""

    checkpoint_id: str
    agent_id: str
    card_id: str
    session_id: str
    timestamp: datetime
    thinking_block_hash: str
    provider: str
    model: str
    verdict: Verdict


class Checkpoint(CheckpointCore, frozen=True, kw_only=True):
    """AIP integrity checkpoint as the verifier decided it."""

    concerns: list[Concern] = msgspec.field(default_factory=list)
    reasoning_summary: str = ""
    conscience_context: ConscienceContext = msgspec.field(default_factory=ConscienceContext)
    window_position: WindowPosition = msgspec.field(default_factory=WindowPosition)
    analysis_metadata: AnalysisMetadata = msgspec.field(default_factory=AnalysisMetadata)
    linked_trace_id: str | None = None
    synthetic: bool = False
    synthetic_reason: str | None = None
    recommended_action: RecommendedAction = "continue"
    proceed: bool = True
    cross_validation_warnings: list[str] = msgspec.field(default_factory=list)
    analyzer_verdict: Verdict | None = None


DriftSource = Literal["aap", "aip"]
DriftSeverity = Literal["low", "medium", "high"]


class DriftAlert(msgspec.Struct, frozen=True, kw_only=True, tag="drift_alert", tag_field="kind"):
    """A fact on ``verdict.v1``: a drift streak reached its alerting length at this exchange.

    One alert per streak: ``alert_id`` is derived from the agent and the streak's first
    checkpoint (``ids.drift_alert_id``), so a replay carries the same id. ``source`` ``aap``:
    behavioural drift of the AP-Traces from the card (``aap.detect_drift``); ``aip``: consecutive
    non-clear integrity checkpoints in one session (``aip.detect_integrity_drift``).
    """

    alert_id: str
    source: DriftSource
    agent_id: str
    card_id: str
    session_id: str | None = None
    alert_type: str
    """AAP: the drift direction (``value_drift``...); AIP: ``aip:<direction>``."""
    severity: DriftSeverity
    description: str
    streak_start: str
    """The first checkpoint id (AIP) or trace id (AAP) of the streak."""
    streak_ids: list[str] = msgspec.field(default_factory=list)
    """The streak: checkpoint ids (AIP) or trace ids (AAP), oldest first."""
    detected_at: datetime
    """The completion time of the exchange that completed the streak (never "now")."""
    data: JSONObject = msgspec.field(default_factory=dict)


class Containment(msgspec.Struct, frozen=True, kw_only=True, tag="containment", tag_field="kind"):
    """A fact on ``verdict.v1``: this exchange made the agent's consecutive boundary violations
    reach its ``auto_containment_threshold``, so the verifier paused the agent (``cfg:{agent}``).

    ``containment_id`` is derived from the agent and the streak's first checkpoint
    (``ids.containment_id``): one containment per streak, whatever the deliveries.
    """

    containment_id: str
    agent_id: str
    action: Literal["auto_pause"] = "auto_pause"
    actor: Literal["system"] = "system"
    new_status: Literal["paused", "killed"] = "paused"
    reason: str
    checkpoint_id: str
    streak_start: str
    consecutive_violations: int
    threshold: int
    decided_at: datetime
    """The completion time of the exchange that reached the threshold (never "now")."""


class NudgeCreated(
    msgspec.Struct, frozen=True, kw_only=True, tag="nudge_created", tag_field="kind"
):
    """A fact on ``verdict.v1``: this exchange's checkpoint made a nudge in ``nudges:{agent}``
    (``smoltbot_verifier.nudges``). ``nudge_id`` is derived from the exchange
    (``ids.nudge_id``); a redelivery that finds the nudge already written reports it again."""

    nudge_id: str
    agent_id: str
    checkpoint_id: str
    created_at: datetime
    """The exchange's completion time (the nudge's ``created_ms``)."""
    text: str


class NudgesDelivered(
    msgspec.Struct, frozen=True, kw_only=True, tag="nudges_delivered", tag_field="kind"
):
    """A fact on ``verdict.v1``: the gateway injected these nudges into this exchange's request
    (``exchange.v1`` ``nudge_ids``, carried by ``trace.v1``)."""

    nudge_ids: list[str]
    agent_id: str
    exchange_id: str
    event_id: str
    """The gateway's ``exchange.v1`` event id (the nudge's ``delivered_event_id``; the gateway
    uses it as the exchange id too)."""
    delivered_at: datetime
    """The exchange's start time: when the request carrying the nudges left the gateway."""


Fact = DriftAlert | Containment | NudgeCreated | NudgesDelivered


class VerdictV1(msgspec.Struct, frozen=True, kw_only=True, tag="verdict.v1", tag_field="type"):
    """Verifier -> persister/notifier: everything the verifier decided about one exchange."""

    event_id: str
    meta: ExchangeMeta
    trace: APTrace | None = None
    verification: Verification | None = None
    checkpoint: Checkpoint | None = None
    facts: list[Fact] = msgspec.field(default_factory=list)
    """What this exchange decided beyond its checkpoint (drift alerts, containment, nudges made
    and delivered), each with a derived id. Empty for most exchanges; absent in events from
    before the field existed."""


class AgentV1(msgspec.Struct, frozen=True, kw_only=True, tag="agent.v1", tag_field="type"):
    """Gateway -> persister: first sight of an agent in this gateway process."""

    event_id: str
    agent_id: str
    agent_hash: str
    name: str | None = None
    seen_at: datetime


class ControlV1(msgspec.Struct, frozen=True, kw_only=True, tag="control.v1", tag_field="type"):
    """Api -> persister/verifier/notifier: an operator changed something."""

    event_id: str
    kind: ControlKind
    agent_id: str | None = None
    issued_at: datetime
    cfg_version: int | None = None
    data: JSONObject = msgspec.field(default_factory=dict)


Event = ExchangeV1 | TraceV1 | VerdictV1 | AgentV1 | ControlV1

EVENT_TYPES: dict[str, type[Event]] = {
    "exchange.v1": ExchangeV1,
    "trace.v1": TraceV1,
    "verdict.v1": VerdictV1,
    "agent.v1": AgentV1,
    "control.v1": ControlV1,
}


def event_type(event: Event) -> str:
    """The wire tag of an event (``exchange.v1``...)."""
    tag = type(event).__struct_config__.tag
    assert isinstance(tag, str)
    return tag
