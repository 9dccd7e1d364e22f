"""The wire between smoltbot services. Imports nothing but msgspec and the standard library.

The public surface, one import path per name:

- ``smoltbot_contracts``: the event structs and their parts, the shared-state structs, and the
  literal types they use (``from smoltbot_contracts import ExchangeV1``);
- ``smoltbot_contracts.codec``: stream entry fields and the one encoder/decoder;
- ``smoltbot_contracts.streams``: stream and Redis key names;
- ``smoltbot_contracts.ids``: identity and derived ids;
- ``smoltbot_contracts.cards``: the default alignment card;
- ``smoltbot_contracts.errors``: the HTTP error catalogue every service answers with;
- ``smoltbot_contracts.schemas``: JSON Schema generation for the checked-in schemas.

Modules whose names start with ``_`` are private; an import rule keeps everyone else out.
"""

from smoltbot_contracts._events import (
    EVENT_TYPES,
    AgentV1,
    Alternative,
    AnalysisMetadata,
    APTrace,
    Checkpoint,
    CheckpointCore,
    Concern,
    ConscienceContext,
    Containment,
    ControlKind,
    ControlV1,
    DriftAlert,
    DriftSeverity,
    DriftSource,
    EnforcementMode,
    Event,
    ExchangeMeta,
    ExchangeV1,
    Fact,
    JSONObject,
    NudgeCreated,
    NudgesDelivered,
    Provider,
    RecommendedAction,
    Severity,
    TraceAction,
    TraceContext,
    TraceDecision,
    TraceEscalation,
    TraceTarget,
    TraceV1,
    Usage,
    Verdict,
    VerdictV1,
    Verification,
    VerificationWarning,
    Violation,
    WindowPosition,
    event_type,
)
from smoltbot_contracts._state import (
    AgentConfig,
    CardRecord,
    ConscienceValue,
    ContainmentStatus,
    FailurePolicy,
    Nudge,
    NudgeStatus,
    NudgeStrategy,
)

__all__ = [
    "EVENT_TYPES",
    "APTrace",
    "AgentConfig",
    "AgentV1",
    "Alternative",
    "AnalysisMetadata",
    "CardRecord",
    "Checkpoint",
    "CheckpointCore",
    "Concern",
    "ConscienceContext",
    "ConscienceValue",
    "Containment",
    "ContainmentStatus",
    "ControlKind",
    "ControlV1",
    "DriftAlert",
    "DriftSeverity",
    "DriftSource",
    "EnforcementMode",
    "Event",
    "ExchangeMeta",
    "ExchangeV1",
    "Fact",
    "FailurePolicy",
    "JSONObject",
    "Nudge",
    "NudgeCreated",
    "NudgeStatus",
    "NudgeStrategy",
    "NudgesDelivered",
    "Provider",
    "RecommendedAction",
    "Severity",
    "TraceAction",
    "TraceContext",
    "TraceDecision",
    "TraceEscalation",
    "TraceTarget",
    "TraceV1",
    "Usage",
    "Verdict",
    "VerdictV1",
    "Verification",
    "VerificationWarning",
    "Violation",
    "WindowPosition",
    "event_type",
]
