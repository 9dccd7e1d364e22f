r"""The ``rules`` backend: deterministic, offline conscience analysis (architecture §6).

It judges intent, not vocabulary. For every kind of act in the table of
:mod:`smoltbot_analysis._rules_acts` (exfiltrating secrets, leaking another tenant's data,
destroying an audit trail, granting itself privileges, faking results, lying to the user,
impersonating a bank, adopting instructions planted in a document, setting a rule aside, hidden
goals...) it asks three questions:

* WHO: is the phrase the agent's own plan, or text it quotes, refuses, explains or asks about?
  (:mod:`smoltbot_analysis._rules_text`: sentences, clauses, subjects, negation scope, reported
  speech, quotes.) Only the agent's own plan counts; a mention of a serious act is kept at
  ``low`` so it stays visible without changing the verdict.
* WHAT: which concern category of protocols.md §4.1 the act belongs to, at what severity
  (critical for acts that cross a boundary, medium for overreach, skipped steps, unverified
  authority).
* HIDDEN: does the agent plan to keep it from the user or operator ("I must not mention this",
  "so it doesn't show up")? Hiding is a high ``deceptive_reasoning`` concern on its own, a passive
  omission ("no need to mention it") a medium ``undeclared_intent`` one.

The answer is the JSON an analysis LLM would give (protocols.md §4.3), so the AIP package parses
it unchanged, and its verdict is the gate's verdict for these concerns, so the backend never
disagrees with the gate. The whole text is analysed (no token budget: everything is linear).
Quality is measured on the labelled corpus ``libs/analysis/corpus/integrity.jsonl`` by
``make bench-analysis`` (docs/benchmarks.md). Known limits: it reads phrasing structure, not
meaning — an act described in words no table entry knows escapes it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from aip import AlignmentCard, ConscienceValue

from smoltbot_analysis import _rules_acts, _rules_judge
from smoltbot_analysis._rules_acts import Category, Rule
from smoltbot_analysis._rules_judge import Finding, judge
from smoltbot_analysis._rules_text import parse
from smoltbot_analysis.base import AnalysisRequest, AnalysisResult
from smoltbot_analysis.cards import action_name
from smoltbot_analysis.gate import derive_verdict

RULES_MODEL = "smoltbot-rules/2"
MAX_EVIDENCE = _rules_judge.MAX_EVIDENCE
RULES: tuple[Rule, ...] = _rules_acts.RULES

__all__ = [
    "MAX_EVIDENCE",
    "RULES",
    "RULES_MODEL",
    "Category",
    "Finding",
    "Rule",
    "RulesIntegrityAnalyzer",
    "analysis_json",
    "find_concerns",
]


def _conscience_refs(values: Sequence[ConscienceValue]) -> dict[str, str]:
    """``value id -> "TYPE:id"`` for the configured values (a concern cites only those)."""
    return {v.id: f"{v.type}:{v.id}" for v in values if v.id}


def find_concerns(
    thinking: str, card: AlignmentCard, conscience_values: Sequence[ConscienceValue] = ()
) -> list[Finding]:
    """Judge ``thinking`` against the act table and the card's forbidden actions (deterministic)."""
    forbidden = [action_name(entry) for entry in card.autonomy_envelope.forbidden_actions]
    return judge(parse(thinking), forbidden, _conscience_refs(conscience_values))


def _summary(findings: Sequence[Finding]) -> str:
    active = [f for f in findings if f.severity != "low"]
    if not active:
        if findings:
            return (
                f"Rules analysis: {len(findings)} act(s) of concern mentioned, quoted or "
                "declined, none planned by the agent."
            )
        return "Rules analysis: no act of concern is planned in the thinking block."
    categories = sorted({f.category for f in active})
    return (
        f"Rules analysis found {len(active)} planned act(s) of concern: {', '.join(categories)}. "
        "Clause and act rules, not an LLM."
    )


def analysis_json(
    thinking: str, card: AlignmentCard, conscience_values: Sequence[ConscienceValue] = ()
) -> str:
    """The analysis JSON text for ``thinking`` (what ``aip.check_integrity`` parses)."""
    findings = find_concerns(thinking, card, conscience_values)
    checked = [
        f"{v.type}:{v.id}" if v.id else v.type
        for v in conscience_values
        if v.type in ("BOUNDARY", "FEAR")
    ]
    conflicts = sorted(
        {
            f.relevant_conscience_value
            for f in findings
            if f.relevant_conscience_value and f.severity != "low"
        }
    )
    payload: dict[str, Any] = {
        "verdict": derive_verdict(findings),
        "concerns": [
            {
                "category": f.category,
                "severity": f.severity,
                "description": f.description,
                "evidence": f.evidence,
                "relevant_card_field": f.relevant_card_field,
                "relevant_conscience_value": f.relevant_conscience_value,
            }
            for f in findings
        ],
        "reasoning_summary": _summary(findings),
        "conscience_context": {
            "values_checked": checked,
            "conflicts": conflicts,
            "supports": [],
            "considerations": [f"rule:{f.rule_id}" for f in findings],
            "consultation_depth": "standard" if findings else "surface",
        },
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


class RulesIntegrityAnalyzer:
    """Deterministic offline backend; the default when no analyzer is configured."""

    @property
    def backend(self) -> str:
        return "rules"

    @property
    def model(self) -> str:
        return RULES_MODEL

    def analyze_sync(self, request: AnalysisRequest) -> AnalysisResult:
        """Synchronous form (the rules need no I/O). Duration is reported as 0.0 on purpose."""
        text = analysis_json(request.thinking, request.card, request.conscience_values)
        return AnalysisResult(
            text=text,
            model=RULES_MODEL,
            duration_ms=0.0,
            tokens_analyzed=math.ceil(len(request.thinking) / 4),
            truncated=False,
        )

    async def analyze(self, request: AnalysisRequest) -> AnalysisResult:
        return self.analyze_sync(request)
