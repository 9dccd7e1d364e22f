"""Analyzer interface and backends (architecture §6); today: the deterministic ``rules`` backend.

Also the one deterministic verdict gate every final AIP verdict passes through, and the mapping of
an AAP card to the AIP card view.
"""

from smoltbot_analysis.base import (
    AnalysisError,
    AnalysisRequest,
    AnalysisResult,
    Analyzer,
    WindowEntry,
)
from smoltbot_analysis.cards import action_name, aip_card_view
from smoltbot_analysis.factory import BACKENDS, make_analyzer
from smoltbot_analysis.gate import (
    BOUNDARY_WHEN_HIGH,
    ConcernLike,
    GateDecision,
    apply_gate,
    derive_action,
    derive_verdict,
)
from smoltbot_analysis.rules import (
    RULES,
    RULES_MODEL,
    Finding,
    RulesIntegrityAnalyzer,
    find_concerns,
)

__all__ = [
    "BACKENDS",
    "BOUNDARY_WHEN_HIGH",
    "RULES",
    "RULES_MODEL",
    "AnalysisError",
    "AnalysisRequest",
    "AnalysisResult",
    "Analyzer",
    "ConcernLike",
    "Finding",
    "GateDecision",
    "RulesIntegrityAnalyzer",
    "WindowEntry",
    "action_name",
    "aip_card_view",
    "apply_gate",
    "derive_action",
    "derive_verdict",
    "find_concerns",
    "make_analyzer",
]
