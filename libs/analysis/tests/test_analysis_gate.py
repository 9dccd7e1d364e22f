"""The verdict gate against the zkvm fixtures (protocols.md §7.1) and the AIP fixtures (§7.3)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import aip
import pytest
from smoltbot_analysis import apply_gate, derive_action, derive_verdict

from libs.analysis.tests.analysis_testkit import check_integrity


@dataclass(frozen=True)
class C:
    category: str
    severity: str


# (concerns, expected verdict, expected action or None when the fixture does not say)
ZKVM_CASES = [
    ([], "clear", "continue"),
    ([C("value_misalignment", "medium")], "review_needed", "log_and_continue"),
    ([C("prompt_injection", "critical")], "boundary_violation", "deny_and_escalate"),
    ([C("deceptive_reasoning", "high")], "boundary_violation", "pause_for_review"),
    ([C("value_misalignment", "low")], "clear", "continue"),
    ([C("autonomy_violation", "medium")], "review_needed", None),
    ([C("prompt_injection", "high")], "boundary_violation", "pause_for_review"),
    ([C("value_misalignment", "high")], "boundary_violation", "pause_for_review"),
    ([C("autonomy_violation", "high")], "review_needed", "log_and_continue"),
    (
        [C("value_misalignment", "medium"), C("prompt_injection", "critical")],
        "boundary_violation",
        "deny_and_escalate",
    ),
]


@pytest.mark.parametrize(("concerns", "verdict", "action"), ZKVM_CASES)
def test_zkvm_fixtures(concerns: list[C], verdict: str, action: str | None) -> None:
    assert derive_verdict(concerns) == verdict
    if action is not None:
        assert derive_action(derive_verdict(concerns), concerns) == action
    decision = apply_gate(verdict, concerns)  # type: ignore[arg-type]
    assert decision.verdict == verdict
    assert decision.proceed is (verdict != "boundary_violation")
    assert decision.analyzer_verdict is None
    assert not decision.disagreed


def test_critical_anywhere_wins_over_earlier_mediums() -> None:
    concerns = [C("undeclared_intent", "medium"), C("reasoning_corruption", "critical")]
    assert derive_verdict(concerns) == "boundary_violation"
    assert derive_action("boundary_violation", concerns) == "deny_and_escalate"


def test_high_boundary_after_medium_is_not_downgraded() -> None:
    concerns = [C("autonomy_violation", "medium"), C("deceptive_reasoning", "high")]
    assert derive_verdict(concerns) == "boundary_violation"
    concerns = [C("deceptive_reasoning", "high"), C("autonomy_violation", "medium")]
    assert derive_verdict(concerns) == "boundary_violation"


def test_disagreement_is_recorded_both_ways() -> None:
    lenient = apply_gate("clear", [C("prompt_injection", "critical")])
    assert lenient.verdict == "boundary_violation"
    assert lenient.analyzer_verdict == "clear"
    assert lenient.disagreed
    assert lenient.recommended_action == "deny_and_escalate"
    assert not lenient.proceed

    strict = apply_gate("boundary_violation", [C("autonomy_violation", "high")])
    assert strict.verdict == "review_needed"
    assert strict.analyzer_verdict == "boundary_violation"
    assert strict.recommended_action == "log_and_continue"
    assert strict.proceed


def _analysis(verdict: str, concerns: list[dict[str, str]], depth: str = "standard") -> str:
    return json.dumps(
        {
            "verdict": verdict,
            "concerns": [{"description": "d", "evidence": "e", **c} for c in concerns],
            "reasoning_summary": "summary",
            "conscience_context": {
                "values_checked": [],
                "conflicts": [],
                "supports": [],
                "considerations": [],
                "consultation_depth": depth,
            },
        }
    )


AIP_CASES = [
    (_analysis("clear", [], "surface"), "clear", "continue", True),
    (
        _analysis("review_needed", [{"category": "value_misalignment", "severity": "medium"}]),
        "review_needed",
        "log_and_continue",
        True,
    ),
    (
        _analysis("boundary_violation", [{"category": "prompt_injection", "severity": "critical"}]),
        "boundary_violation",
        "deny_and_escalate",
        False,
    ),
    (
        _analysis(
            "boundary_violation",
            [
                {"category": "deceptive_reasoning", "severity": "high"},
                {"category": "autonomy_violation", "severity": "medium"},
            ],
        ),
        "boundary_violation",
        "pause_for_review",
        False,
    ),
    (
        "```json\n"
        + _analysis(
            "boundary_violation",
            [
                {"category": "prompt_injection", "severity": "critical"},
                {"category": "forbidden_action_intent", "severity": "critical"},
            ],
        )
        + "\n```",
        "boundary_violation",
        "deny_and_escalate",
        False,
    ),
]


@pytest.mark.parametrize(("text", "verdict", "action", "proceed"), AIP_CASES)
def test_aip_fixtures_through_package_and_gate(
    text: str, verdict: str, action: str, proceed: bool
) -> None:
    checkpoint = check_integrity(text)
    decision = apply_gate(checkpoint.verdict, checkpoint.concerns)
    assert (decision.verdict, decision.recommended_action, decision.proceed) == (
        verdict,
        action,
        proceed,
    )
    # The package's own mapping agrees with the gate on these well-formed analyses.
    assert aip.map_verdict_to_action(checkpoint.verdict, checkpoint.concerns) == action


def test_fenced_alias_category_becomes_autonomy_violation() -> None:
    checkpoint = check_integrity(AIP_CASES[-1][0])
    assert [c.category for c in checkpoint.concerns] == ["prompt_injection", "autonomy_violation"]


def test_unknown_category_is_rejected_by_the_package() -> None:
    bad = _analysis(
        "review_needed", [{"category": "some_new_uncanonical_category", "severity": "low"}]
    )
    with pytest.raises(ValueError, match="Invalid concern category"):
        check_integrity(bad)
