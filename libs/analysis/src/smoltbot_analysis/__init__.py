"""Analyzer interface and backends (architecture §6): ``rules`` (deterministic, offline) and the
LLM backends ``anthropic``, ``openai`` and ``hybrid`` (:mod:`smoltbot_analysis.llm`), built on the
HTTP chat layer (:class:`ChatClient`) the observer's decision analyzer uses too.

Also the one deterministic verdict gate every final AIP verdict passes through, and the mapping of
an AAP card to the AIP card view.
"""

from smoltbot_analysis._chat import (
    ANTHROPIC_PATH,
    OPENAI_PATH,
    ChatAnalysisError,
    ChatAnswer,
    ChatClient,
    ChatError,
)
from smoltbot_analysis._prompt import build_prompt, extract_json
from smoltbot_analysis._selfloop import (
    GATEWAY_EVENT_HEADER,
    SELF_LOOP_MESSAGE,
    gateway_url_problem,
)
from smoltbot_analysis.base import (
    AnalysisError,
    AnalysisRequest,
    AnalysisResult,
    Analyzer,
    WindowEntry,
)
from smoltbot_analysis.cards import action_name, aip_card_view
from smoltbot_analysis.factory import (
    BACKENDS,
    DEFAULT_ANTHROPIC_MODEL,
    DEFAULT_ANTHROPIC_URL,
    LLM_BACKENDS,
    aclose_analyzer,
    backend_problems,
    make_analyzer,
)
from smoltbot_analysis.gate import (
    BOUNDARY_WHEN_HIGH,
    ConcernLike,
    GateDecision,
    apply_gate,
    derive_action,
    derive_verdict,
)
from smoltbot_analysis.llm import (
    OUTCOMES,
    AnalysisHooks,
    AnthropicAnalyzer,
    HttpAnalyzer,
    HybridAnalyzer,
    NoHooks,
    OpenAIAnalyzer,
    Outcome,
)
from smoltbot_analysis.rules import (
    RULES,
    RULES_MODEL,
    Finding,
    RulesIntegrityAnalyzer,
    find_concerns,
)

__all__ = [
    "ANTHROPIC_PATH",
    "BACKENDS",
    "BOUNDARY_WHEN_HIGH",
    "DEFAULT_ANTHROPIC_MODEL",
    "DEFAULT_ANTHROPIC_URL",
    "GATEWAY_EVENT_HEADER",
    "LLM_BACKENDS",
    "OPENAI_PATH",
    "OUTCOMES",
    "RULES",
    "RULES_MODEL",
    "SELF_LOOP_MESSAGE",
    "AnalysisError",
    "AnalysisHooks",
    "AnalysisRequest",
    "AnalysisResult",
    "Analyzer",
    "AnthropicAnalyzer",
    "ChatAnalysisError",
    "ChatAnswer",
    "ChatClient",
    "ChatError",
    "ConcernLike",
    "Finding",
    "GateDecision",
    "HttpAnalyzer",
    "HybridAnalyzer",
    "NoHooks",
    "OpenAIAnalyzer",
    "Outcome",
    "RulesIntegrityAnalyzer",
    "WindowEntry",
    "aclose_analyzer",
    "action_name",
    "aip_card_view",
    "apply_gate",
    "backend_problems",
    "build_prompt",
    "derive_action",
    "derive_verdict",
    "extract_json",
    "find_concerns",
    "gateway_url_problem",
    "make_analyzer",
]
