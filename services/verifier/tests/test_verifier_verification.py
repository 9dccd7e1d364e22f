"""AAP verification mapping with the protocols.md §7.8 cases that hold for the 2.0.0 SDK."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

from smoltbot_contracts import Alternative
from smoltbot_verifier.verification import trace_dict, verify

from services.verifier.tests.verifier_testkit import COMPLETED, ap_trace, card


def test_bounded_action_and_declared_values_verify() -> None:
    c = card(bounded_actions=["claude-3-sonnet-20240229"])
    result = verify(ap_trace(name="claude-3-sonnet-20240229"), c, COMPLETED)
    assert result.verified
    assert result.violations == []
    assert result.card_id == "ac-abcd1234"
    assert result.checks_performed == [
        "card_reference",
        "card_expiration",
        "autonomy",
        "forbidden",
        "escalation",
        "values",
        "behavioral_similarity",
    ]
    assert result.algorithm_version == "1.2.0"
    assert 0.0 < result.similarity_score <= 1.0
    assert result.recommended_action in ("proceed", "review")


def test_undeclared_value() -> None:
    c = card()
    c["values"] = {"declared": ["helpfulness"]}
    result = verify(ap_trace(values=["helpfulness", "creativity"]), c, COMPLETED)
    assert not result.verified
    assert [(v.type, v.severity) for v in result.violations] == [("undeclared_value", "medium")]
    assert "creativity" in result.violations[0].description
    assert result.recommended_action == "deny"


def test_forbidden_action_is_critical() -> None:
    c = card(
        bounded_actions=["inference", "dangerous_action"], forbidden_actions=["dangerous_action"]
    )
    result = verify(ap_trace(name="dangerous_action"), c, COMPLETED)
    assert [(v.type, v.severity) for v in result.violations] == [("forbidden_action", "critical")]


def test_card_mismatch_is_critical() -> None:
    c = card()
    c["card_id"] = "ac-correct-card"
    result = verify(ap_trace(card_id="ac-wrong-card"), c, COMPLETED)
    assert ("card_mismatch", "critical") in [(v.type, v.severity) for v in result.violations]
    assert result.card_id == "ac-correct-card"


def test_low_confidence_warns_near_boundary() -> None:
    result = verify(ap_trace(confidence=0.15), card(), COMPLETED)
    assert result.verified
    near = [w for w in result.warnings if w.type == "near_boundary"]
    assert near
    assert "confidence" in near[0].description.lower()
    assert result.recommended_action == "review"


def test_missed_escalation_vector() -> None:
    c = card(
        bounded_actions=["purchase"],
        escalation_triggers=[
            {"condition": 'action_type == "purchase"', "action": "escalate", "reason": "buy"},
            {"condition": "amount > 50", "action": "escalate", "reason": "large amount"},
        ],
    )
    trace = ap_trace(name="purchase", parameters={"amount": 199.99}, required=False)
    result = verify(trace, c, COMPLETED)
    assert [(v.type, v.severity) for v in result.violations] == [("missed_escalation", "high")]
    assert "amount > 50" in result.violations[0].description


def test_approved_escalation_verifies() -> None:
    c = card(
        bounded_actions=["purchase"],
        escalation_triggers=[{"condition": "amount > 50", "action": "escalate", "reason": "r"}],
    )
    result = verify(
        ap_trace(name="purchase", parameters={"amount": 199.99}, required=True), c, COMPLETED
    )
    assert result.verified


def test_simple_agent_violation_example() -> None:
    c = card(bounded_actions=["inference"], forbidden_actions=["share_personal_data"])
    trace = ap_trace(
        name="share_personal_data",
        selected="share",
        alternatives=[
            Alternative(option_id="share", description="Share it", score=0.1),
            Alternative(option_id="decline", description="Decline", score=0.9),
        ],
    )
    result = verify(trace, c, COMPLETED)
    assert {v.type for v in result.violations} == {"unbounded_action", "forbidden_action"}
    assert any(
        w.type == "near_boundary" and w.trace_field == "decision.alternatives_considered[0].score"
        for w in result.warnings
    )


def test_selected_not_among_alternatives_is_a_warning_not_a_crash() -> None:
    result = verify(ap_trace(selected="something_else"), card(), COMPLETED)
    assert result.verified
    assert any(w.type == "selected_not_in_alternatives" for w in result.warnings)


def test_expiry_is_judged_at_the_exchange_time_not_now() -> None:
    c = card()
    c["expires_at"] = "2026-02-01T00:00:00Z"
    expired = verify(ap_trace(), c, COMPLETED)  # exchange completed 2026-03-01
    assert [(v.type, v.severity) for v in expired.violations] == [("card_expired", "high")]
    assert not any(w.type == "low_behavioral_similarity" for w in expired.warnings)
    c["expires_at"] = "2026-04-01T00:00:00Z"  # in the past by the time anyone replays this test
    assert verify(ap_trace(), c, COMPLETED).verified
    before = datetime(2026, 3, 31, tzinfo=UTC)
    assert verify(ap_trace(), c, before).verified


def test_unparsable_expiry_warns() -> None:
    c = card()
    c["expires_at"] = 12345
    result = verify(ap_trace(), c, COMPLETED)
    assert result.verified
    assert result.warnings[0].type == "invalid_expiry"


def test_sdk_failure_becomes_a_recorded_verification_error() -> None:
    c = card()
    c["values"] = "not-an-object"  # the SDK calls .get on it and raises
    result = verify(ap_trace(), c, COMPLETED)
    assert not result.verified
    assert [(v.type, v.severity) for v in result.violations] == [("verification_error", "high")]
    assert "AttributeError" in result.violations[0].description
    assert result.recommended_action == "review"


def test_tamper_evidence_warning_is_silenced() -> None:
    c = card()
    c["audit_commitment"] = {"retention_days": 1, "queryable": False, "tamper_evidence": "merkle"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert verify(ap_trace(), c, COMPLETED).verified


def test_defaulted_fields_reach_the_sdk() -> None:
    # omit_defaults in the contracts would drop category="bounded" and values_applied=[]:
    # the autonomy check must still run and an empty values list must not raise.
    trace = ap_trace(name="run_shell", values=[])
    data = trace_dict(trace)
    assert data["action"]["category"] == "bounded"
    assert data["action"]["type"] == "execute"
    assert data["decision"]["values_applied"] == []
    result = verify(trace, card(), COMPLETED)
    assert [(v.type, v.severity) for v in result.violations] == [("unbounded_action", "high")]


def test_action_type_trigger_sees_the_default_type() -> None:
    c = card(
        bounded_actions=["inference"],
        escalation_triggers=[{"condition": 'action_type == "execute"', "action": "escalate"}],
    )
    result = verify(ap_trace(), c, COMPLETED)
    assert [v.type for v in result.violations] == ["missed_escalation"]
