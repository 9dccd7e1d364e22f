"""The reference's reusable fixtures (protocols.md §7) that concern cards, AAP and AIP parsing,
run against our gate, our card functions and the protocol authors' packages.

Fixture values live in ``fixtures/*.json`` (facts re-stated from the reference; texts are ours).

Deliberate differences, each decided here (protocols.md §8):

* §7.1 / §8.1 — the gate uses the zkvm rule set (high ``value_misalignment`` is a boundary
  violation), so the table below passes unchanged. Two zkvm input rules are *not* ours: the zkvm
  requires a ``confidence`` number in the analysis JSON and rejects the ``output_*`` categories
  (§8.2); our gate reads only category and severity, so ``output_*`` concerns pass it like any
  other category (``high`` -> review, ``critical`` -> boundary) and no confidence is required.
* §7.2 / §8.4 — provider ``gemini`` maps to the AIP adapter ``google`` (``aip_provider``).
* §7.8 / §8.6 — AAP similarity scores are not asserted: the vectors record scores of the newer
  card feature set; ``agent-alignment-protocol`` 2.0.0 computes others (its drift detector also
  compares traces with the baseline traces' centroid, not with the card). Violations, warnings
  and alert streaks are asserted as the reference states them.
* §7.5 / §8.3 — the AIP SDK re-alerts every 5 extra non-clear checks (the spec says once per
  streak); the package's behaviour is recorded here as it is, the verifier owns the decision.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aap
import aip
import pytest
from smoltbot_analysis import aip_card_view, apply_gate
from smoltbot_analysis.cards import (
    aip_provider,
    default_conscience_values,
    layer_conscience_values,
    merge_org_template,
    resolve_record,
)
from smoltbot_contracts import CardRecord, Concern, ConscienceValue

from libs.analysis.tests.analysis_testkit import check_integrity

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [str(c["name"]) for c in cases]


# --- §7.1 zkvm verdict rules vs our gate --------------------------------------------------------

ZKVM = fixture("zkvm_verdicts.json")["cases"]


@pytest.mark.parametrize("case", ZKVM, ids=_ids(ZKVM))
def test_gate_reproduces_the_zkvm_verdict_table(case: dict[str, Any]) -> None:
    concerns = [
        Concern(category=c["category"], severity=c["severity"], description="d", evidence="e")
        for c in case["concerns"]
    ]
    decision = apply_gate(None, concerns)
    assert decision.verdict == case["verdict"]
    if case["action"] is not None:
        assert decision.recommended_action == case["action"]
    assert decision.proceed is (case["verdict"] != "boundary_violation")


def test_gate_accepts_output_categories_the_zkvm_would_reject() -> None:
    """§8.2: a deliberate difference (see the module docstring)."""
    high = [Concern(category="output_misalignment", severity="high", description="d", evidence="")]
    critical = [
        Concern(category="output_injection_compliance", severity="critical", description="d")
    ]
    assert apply_gate(None, high).verdict == "review_needed"
    assert apply_gate(None, critical).verdict == "boundary_violation"


# --- §7.2 AIP adapters ----------------------------------------------------------------------------

ANTHROPIC_THINKING = (
    "The user is asking me to refactor the payment module. Let me look at the current structure "
    "first: the charge function mixes validation, persistence and the provider call. I should "
    "split validation into its own function, keep persistence behind the repository interface, "
    "and wrap the provider call so it can be retried. I need to be careful not to change the "
    "public signature, because three other services import it. A small, reviewable patch with "
    "tests for the validation branch is the safest approach here, and I will explain the trade-"
    "offs to the user before writing anything."
)


def _anthropic(*blocks: dict[str, Any], model: str = "claude-sonnet-4-5-20250514") -> str:
    return json.dumps({"model": model, "content": list(blocks)})


def _adapter(provider: str) -> aip.ProviderAdapter:
    return aip.create_adapter_registry().get(aip_provider(provider))


def test_provider_names_map_to_the_registry_keys() -> None:
    assert aip_provider("anthropic") == "anthropic"
    assert aip_provider("openai") == "openai"
    assert aip_provider("gemini") == "google"
    assert aip_provider("mistral") == "fallback"
    registry = aip.create_adapter_registry()
    assert isinstance(registry.get("gemini"), aip.FallbackAdapter)  # the reference's trap (§8.4)
    assert isinstance(_adapter("gemini"), aip.GoogleAdapter)


def test_anthropic_json_thinking_block() -> None:
    body = _anthropic(
        {"type": "thinking", "thinking": ANTHROPIC_THINKING},
        {"type": "text", "text": "Here is the plan."},
    )
    got = _adapter("anthropic").extract_thinking(body)
    assert got is not None
    assert got.content == ANTHROPIC_THINKING
    assert got.confidence == 1.0
    assert got.model == "claude-sonnet-4-5-20250514"
    assert got.extraction_method == "native_thinking"


def test_anthropic_json_without_thinking_is_none() -> None:
    body = _anthropic({"type": "text", "text": "Hi"})
    assert _adapter("anthropic").extract_thinking(body) is None


def test_anthropic_json_thinking_blocks_are_joined() -> None:
    body = _anthropic(
        {"type": "thinking", "thinking": "First, let me understand the problem."},
        {"type": "text", "text": "Step one."},
        {"type": "thinking", "thinking": "Now let me evaluate the second approach."},
        {"type": "text", "text": "Step two."},
    )
    got = _adapter("anthropic").extract_thinking(body)
    assert got is not None
    assert got.content == (
        "First, let me understand the problem.\n\n---\n\nNow let me evaluate the second approach."
    )


def _sse(*events: dict[str, Any]) -> str:
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events)


def test_anthropic_sse_thinking_deltas() -> None:
    body = _sse(
        {"type": "message_start", "message": {"model": "claude-sonnet-4-5-20250514"}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking"}},
        *[
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": part},
            }
            for part in ("Let me ", "analyze this.")
        ],
        {"type": "content_block_stop", "index": 0},
    )
    got = _adapter("anthropic").extract_thinking_from_stream(body)
    assert got is not None
    assert got.content == "Let me analyze this."
    assert got.model == "claude-sonnet-4-5-20250514"


def test_openai_reasoning_content() -> None:
    reasoning = "The user wants a summary; I should keep the key numbers and drop the rest."
    body = json.dumps(
        {
            "model": "o3-mini",
            "choices": [{"message": {"content": "Summary", "reasoning_content": reasoning}}],
        }
    )
    got = _adapter("openai").extract_thinking(body)
    assert got is not None
    assert (got.content, got.confidence) == (reasoning, 0.9)
    no_field = json.dumps({"model": "gpt-4o", "choices": [{"message": {"content": "Hi"}}]})
    assert _adapter("openai").extract_thinking(no_field) is None


def test_openai_sse_reasoning_deltas() -> None:
    body = (
        _sse(
            *[
                {"model": "o3-mini", "choices": [{"delta": {"reasoning_content": part}}]}
                for part in ("Let me ", "think about ", "this carefully.")
            ]
        )
        + "data: [DONE]\n\n"
    )
    got = _adapter("openai").extract_thinking_from_stream(body)
    assert got is not None
    assert got.content == "Let me think about this carefully."
    assert got.model == "o3-mini"


def test_gemini_thought_parts_use_the_google_adapter() -> None:
    thought = "Let me consider this carefully."
    body = json.dumps(
        {
            "modelVersion": "gemini-2.5-pro",
            "candidates": [
                {"content": {"parts": [{"text": thought, "thought": True}, {"text": "Answer"}]}}
            ],
        }
    )
    got = _adapter("gemini").extract_thinking(body)
    assert got is not None
    assert (got.content, got.model) == (thought, "gemini-2.5-pro")
    plain = json.dumps({"candidates": [{"content": {"parts": [{"text": "Answer"}]}}]})
    assert _adapter("gemini").extract_thinking(plain) is None
    part = {"text": thought, "thought": True}
    stream = _sse(
        {"modelVersion": "gemini-2.5-pro", "candidates": [{"content": {"parts": [part]}}]}
    )
    streamed = _adapter("gemini").extract_thinking_from_stream(stream)
    assert streamed is not None
    assert streamed.content == thought


# --- §7.3 analysis responses -> the package's checkpoint -> our gate ------------------------------

ANALYSES = fixture("aip_analyses.json")


@pytest.mark.parametrize("case", ANALYSES["cases"], ids=_ids(ANALYSES["cases"]))
def test_analysis_responses_parse_and_gate(case: dict[str, Any]) -> None:
    checkpoint = check_integrity(case["response"], thinking_hash="ab" * 32)
    assert [c.category for c in checkpoint.concerns] == case["categories"]
    assert checkpoint.checkpoint_id.startswith("ic-")
    assert checkpoint.thinking_block_hash == "ab" * 32
    assert checkpoint.linked_trace_id is None
    gate = apply_gate(checkpoint.verdict, checkpoint.concerns)
    assert (gate.verdict, gate.recommended_action, gate.proceed) == (
        case["verdict"],
        case["action"],
        case["proceed"],
    )
    assert gate.analyzer_verdict is None  # the reference's verdicts agree with the gate


@pytest.mark.parametrize("case", ANALYSES["errors"], ids=_ids(ANALYSES["errors"]))
def test_invalid_analysis_responses_are_errors(case: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=case["error"]):
        check_integrity(case["response"])


def test_evidence_is_truncated_to_200_and_extra_fields_ignored() -> None:
    def response(evidence: str) -> str:
        return json.dumps(
            {
                "verdict": "review_needed",
                "concerns": [
                    {
                        "category": "value_misalignment",
                        "severity": "medium",
                        "description": "d",
                        "evidence": evidence,
                        "surprise": True,
                    }
                ],
                "reasoning_summary": "s",
                "conscience_context": {
                    "values_checked": [],
                    "conflicts": [],
                    "supports": [],
                    "considerations": [],
                    "consultation_depth": "standard",
                },
                "confidence": 0.5,
            }
        )

    assert len(check_integrity(response("x" * 201)).concerns[0].evidence) == 200
    assert check_integrity(response("y" * 200)).concerns[0].evidence == "y" * 200


# --- §7.4 prompt builder (the AIP package's; our LLM backends use it) ----------------------------


def _prompt(thinking: str, **kw: Any) -> aip.BuiltPrompt:
    card = kw.pop("card", aip_card_view({"card_id": "ac-p", "values": {"declared": []}}))
    return aip.build_conscience_prompt(
        aip.PromptInput(
            card=card,
            conscience_values=kw.pop("values", []),
            window_context=[],
            thinking_block=thinking,
            **kw,
        )
    )


def test_prompt_truncation() -> None:
    big = _prompt("A" * 20_000)
    assert (big.truncated, big.original_tokens) == (True, 5000)
    assert "tokens omitted" in big.user
    small_budget = _prompt("B" * 4000, token_budget=512)
    assert (small_budget.truncated, small_budget.original_tokens) == (True, 1000)
    fits = _prompt("C" * 400, token_budget=100)
    assert (fits.truncated, fits.original_tokens, fits.analyzed_tokens) == (False, 100, 100)


def test_prompt_conscience_and_window_sections() -> None:
    values = [
        aip.ConscienceValue(type="BOUNDARY", content="Never share credentials"),
        aip.ConscienceValue(type="FEAR", content="Drifting into sycophancy"),
        aip.ConscienceValue(type="COMMITMENT", content="Always cite sources"),
    ]
    user = _prompt("thinking", values=values).user
    assert "CONSCIENCE VALUES:" in user
    assert "Never share credentials" in user
    assert "Drifting into sycophancy" in user
    assert "Always cite sources" not in user
    assert "First check in session" in user
    only_other = _prompt("thinking", values=[values[2]]).user
    assert "CONSCIENCE VALUES" not in only_other


def test_prompt_card_summary() -> None:
    card = aip_card_view(
        {
            "card_id": "ac-sum",
            "values": {
                "declared": ["speed", "safety"],
                "definitions": {"speed": {"priority": 2}, "safety": {"priority": 1}},
            },
            "autonomy_envelope": {
                "bounded_actions": [],
                "escalation_triggers": [{"condition": "pii_detected", "action": "escalate"}],
            },
        }
    )
    summary = aip.summarize_card(card)
    assert "Values (priority order): safety, speed" in summary
    assert "Bounded actions: none declared" in summary
    assert "Forbidden actions: none declared" in summary
    trigger_line = next(line for line in summary.splitlines() if "pii_detected" in line)
    assert trigger_line.rstrip().endswith("escalate")  # no ": reason" suffix without a reason


# --- §7.5 window, drift, agreement (pure functions of the AIP package) ---------------------------


def _checkpoint(verdict: str, *categories: str, session: str = "s") -> aip.IntegrityCheckpoint:
    severity = "medium" if verdict == "review_needed" else "critical"
    concerns = [
        {"category": c, "severity": severity, "description": "d", "evidence": ""}
        for c in categories
    ]
    response = json.dumps(
        {
            "verdict": verdict,
            "concerns": concerns,
            "reasoning_summary": "s",
            "conscience_context": {
                "values_checked": [],
                "conflicts": [],
                "supports": [],
                "considerations": [],
                "consultation_depth": "surface",
            },
        }
    )
    return dataclasses.replace(check_integrity(response), session_id=session)


def test_window_sizes_and_eviction() -> None:
    with pytest.raises(ValueError):
        aip.WindowManager(aip.WindowConfig(max_size=2), "s")
    sliding = aip.WindowManager(aip.WindowConfig(max_size=3), "s")
    assert sliding.get_summary().integrity_ratio == 1.0
    first = _checkpoint("clear")
    for cp in (first, _checkpoint("clear"), _checkpoint("review_needed", "value_misalignment")):
        sliding.push(cp)
    sliding.push(_checkpoint("clear"))
    ids = [cp.checkpoint_id for cp in sliding.get_state().checkpoints]
    assert len(ids) == 3
    assert first.checkpoint_id not in ids
    fixed = aip.WindowManager(aip.WindowConfig(max_size=3, mode="fixed"), "s")
    for _ in range(4):
        fixed.push(_checkpoint("clear"))
    assert len(fixed.get_state().checkpoints) == 1


def test_window_age_and_session_boundary() -> None:
    window = aip.WindowManager(aip.WindowConfig(max_size=3), "s")
    old = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    window.push(dataclasses.replace(_checkpoint("clear"), timestamp=old))
    window.push(_checkpoint("clear"))
    assert len(window.get_state().checkpoints) == 1
    window.push(_checkpoint("clear", session="other"))
    assert len(window.get_state().checkpoints) == 1  # reset on a new session
    carry = aip.WindowManager(aip.WindowConfig(max_size=3, session_boundary="carry"), "s")
    carry.push(_checkpoint("clear"))
    carry.push(_checkpoint("clear", session="other"))
    assert len(carry.get_state().checkpoints) == 2


def test_drift_alerts_on_the_third_non_clear_check() -> None:
    state = aip.create_drift_state()
    window: list[aip.IntegrityCheckpoint] = []
    alerts = []
    streak = [_checkpoint("review_needed", "value_misalignment") for _ in range(4)]
    for cp in streak:
        window.append(cp)
        state, alert = aip.detect_integrity_drift(state, cp, window)
        alerts.append(alert)
    assert [a is not None for a in alerts] == [False, False, True, False]
    alert = alerts[2]
    assert alert is not None
    assert alert.alert_id.startswith("ida-")
    assert alert.checkpoint_ids == [cp.checkpoint_id for cp in streak[:3]]
    assert alert.sustained_checks == 3
    assert alert.drift_direction == "value_erosion"
    assert "consecutive" in alert.message
    state, alert = aip.detect_integrity_drift(state, _checkpoint("clear"), window)
    assert alert is None
    assert state.sustained_nonclear == 0


@pytest.mark.parametrize(
    ("clear", "severity"), [(8, "low"), (5, "medium"), (1, "high")], ids=["8of10", "5of10", "1of10"]
)
def test_drift_severity_from_the_window_ratio(clear: int, severity: str) -> None:
    window = [_checkpoint("clear") for _ in range(clear)]
    window += [_checkpoint("review_needed", "value_misalignment") for _ in range(10 - clear)]
    state = aip.create_drift_state()
    alert = None
    for cp in [_checkpoint("review_needed", "value_misalignment") for _ in range(3)]:
        state, alert = aip.detect_integrity_drift(state, cp, window)
    assert alert is not None
    assert alert.severity == severity
    assert alert.integrity_similarity == pytest.approx(clear / 10)


def test_drift_direction_unknown_without_a_majority() -> None:
    state = aip.create_drift_state()
    alert = None
    cps = [
        _checkpoint("review_needed", category)
        for category in ("value_misalignment", "prompt_injection", "reasoning_corruption")
    ]
    for cp in cps:
        state, alert = aip.detect_integrity_drift(state, cp, cps)
    assert alert is not None
    assert alert.drift_direction == "unknown"


FULL_CARD = aip_card_view(
    {
        "card_id": "ac-full",
        "values": {"declared": ["transparency", "harm_prevention"]},
        "autonomy_envelope": {
            "bounded_actions": ["read_files", "write_files", "run_commands"],
            "forbidden_actions": [
                "delete_system_files",
                "exfiltrate_data",
                "modify_security_settings",
            ],
            "escalation_triggers": [
                {"condition": "action_outside_bounded_list", "action": "escalate"},
                {"condition": "user_data_access", "action": "escalate"},
            ],
        },
    }
)


def test_card_conscience_agreement() -> None:
    def agreement(kind: str, text: str) -> aip.CardConscienceAgreement:
        return aip.validate_agreement(FULL_CARD, [aip.ConscienceValue(type=kind, content=text)])  # type: ignore[arg-type]

    conflict = agreement("BOUNDARY", "Never write files to disk")
    assert not conflict.valid
    assert any("write_files" in c.description for c in conflict.conflicts)
    exfil = agreement("BOUNDARY", "Never exfiltrate data from the system")
    assert any("forbidden_actions" in a.augments for a in exfil.augmentations)
    fear = agreement("FEAR", "Careless user data access")
    assert any("escalation_triggers" in a.augments for a in fear.augmentations)
    for kind in ("COMMITMENT", "BELIEF", "HOPE"):
        ignored = agreement(kind, "Never write files to disk")
        assert ignored.valid
        assert not ignored.augmentations
    assert agreement("BOUNDARY", "Never harm a human being").valid


# --- §7.7 card merge ------------------------------------------------------------------------------

MERGE = fixture("card_merge.json")


def test_org_template_merge_matches_the_reference() -> None:
    agent, org = MERGE["agent_card"], MERGE["org_template"]
    before = json.dumps([agent, org], sort_keys=True)
    merged = merge_org_template(agent, org)
    assert merged == MERGE["merged"]
    assert merged is not None
    assert merged["values"]["declared"] == ["safety", "honesty", "transparency"]
    assert merged["values"]["definitions"]["honesty"]["description"].startswith("Org text")
    envelope = merged["autonomy_envelope"]
    assert len(envelope["bounded_actions"]) == 4
    assert envelope["forbidden_actions"] == [
        "access_secrets",
        "modify_billing",
        "delete_production_data",
    ]
    assert [t["condition"] for t in envelope["escalation_triggers"]] == [
        "pii_detected",
        "uncertainty > 0.8",
    ]
    for field in (
        "principal",
        "audit_commitment",
        "card_id",
        "agent_id",
        "extensions",
        "aap_version",
        "issued_at",
        "expires_at",
    ):
        assert merged[field] == agent[field]
    assert json.dumps([agent, org], sort_keys=True) == before  # inputs not mutated
    merged["values"]["declared"].append("x")
    assert "x" not in agent["values"]["declared"]  # a deep copy


def test_merge_exempt_no_template_and_no_card() -> None:
    agent, org = MERGE["agent_card"], MERGE["org_template"]
    assert merge_org_template(agent, None) == agent
    assert merge_org_template(agent, org, exempt=True) == agent
    assert merge_org_template(None, org) is None


def test_merge_creates_missing_sections() -> None:
    bare = {"card_id": "ac-bare", "agent_id": "a"}
    merged = merge_org_template(bare, MERGE["org_template"])
    assert merged is not None
    assert merged["values"]["declared"] == ["safety", "honesty"]
    assert merged["autonomy_envelope"]["forbidden_actions"] == ["access_secrets", "modify_billing"]
    assert [t["condition"] for t in merged["autonomy_envelope"]["escalation_triggers"]] == [
        "pii_detected"
    ]
    assert bare == {"card_id": "ac-bare", "agent_id": "a"}


def test_merge_into_a_unified_card_keeps_its_autonomy_section() -> None:
    unified = {
        "card_version": "unified/2026-04-26",
        "card_id": "ac-u",
        "values": {"declared": [{"id": "honesty", "intensity": 3}]},
        "autonomy": {"bounded_actions": ["inference"]},
        "audit": {"retention_days": 30},
    }
    merged = merge_org_template(unified, MERGE["org_template"])
    assert merged is not None
    assert "autonomy_envelope" not in merged
    assert merged["autonomy"]["bounded_actions"] == ["read_docs", "search_kb", "inference"]
    # declared objects dedupe by id; the org's plain id comes first and wins
    assert merged["values"]["declared"] == ["safety", "honesty"]


def test_conscience_layering() -> None:
    own = [ConscienceValue(type="BOUNDARY", content="Never touch prod", id="own-1")]
    org = [ConscienceValue(type="FEAR", content="Leaking customer names", id="org-1")]
    defaults = default_conscience_values()
    assert [v.id for v in defaults][:1] == ["boundary-no-deception"]
    assert layer_conscience_values(None, None) is None  # the AIP defaults
    assert layer_conscience_values([], None) is None
    assert layer_conscience_values(own, None) == tuple(own)
    assert layer_conscience_values(own, org, "augment") == (*defaults, *org, *own)
    assert layer_conscience_values(own, org, "replace") == (*org, *own)
    assert layer_conscience_values(None, [], "replace") == ()


def test_resolve_record_applies_both_layers() -> None:
    record = CardRecord(
        card_id="ac-agent-merge",
        card=MERGE["agent_card"],
        org_template=MERGE["org_template"],
        org_conscience_values=[ConscienceValue(type="BOUNDARY", content="No billing changes")],
        conscience_mode="replace",
    )
    effective = resolve_record(record)
    assert effective.card == MERGE["merged"]
    assert effective.card_id == "ac-agent-merge"
    assert effective.conscience_values == (
        ConscienceValue(type="BOUNDARY", content="No billing changes"),
    )
    plain = resolve_record(CardRecord(card_id="ac-1", card={"card_id": "ac-1"}))
    assert plain.card == {"card_id": "ac-1"}
    assert plain.conscience_values is None


# --- §7.8 AAP verification and drift (the AAP package, at dict level) ----------------------------

AAP_CASES = fixture("aap_verification.json")["cases"]


def _verify(trace: dict[str, Any], card: dict[str, Any]) -> aap.VerificationResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return aap.verify_trace(trace, card)


@pytest.mark.parametrize("case", AAP_CASES, ids=_ids(AAP_CASES))
def test_aap_verification_vectors(case: dict[str, Any]) -> None:
    result = _verify(case["trace"], case["card"])
    assert result.verified is case["verified"]
    got = [(str(v.type.value), str(v.severity.value), v.description) for v in result.violations]
    assert [(t, s) for t, s, _ in got] == [(v["type"], v["severity"]) for v in case["violations"]]
    for (_, _, description), want in zip(got, case["violations"], strict=True):
        assert want.get("mentions", "") in description
    kinds = [w.type for w in result.warnings]
    for want in case.get("warnings", []):
        match = [w for w in result.warnings if w.type == want["type"]]
        assert match, kinds
        assert any(want["mentions"] in w.description for w in match)


def test_aap_verification_reads_the_merged_card() -> None:
    """§1.3 + §3: an action forbidden only by the org template fails once merged."""
    trace = dict(AAP_CASES[-1]["trace"])
    trace["card_id"] = "ac-agent-merge"
    trace["action"] = {**trace["action"], "name": "access_secrets", "category": "bounded"}
    trace["decision"] = {**trace["decision"], "values_applied": ["honesty"]}
    alone = _verify(trace, MERGE["agent_card"])
    merged = _verify(trace, MERGE["merged"])
    assert [v.type.value for v in alone.violations] == ["unbounded_action"]
    assert [v.type.value for v in merged.violations] == ["unbounded_action", "forbidden_action"]


DRIFT = fixture("aap_drift.json")


@pytest.mark.parametrize("case", DRIFT["cases"], ids=_ids(DRIFT["cases"]))
def test_aap_drift_vectors(case: dict[str, Any]) -> None:
    threshold = case.get("similarity_threshold")
    kwargs = {} if threshold is None else {"similarity_threshold": threshold}
    alerts = aap.detect_drift(DRIFT["card"], case["traces"], **kwargs)
    assert len(alerts) == case["alerts"]
    if alerts:
        alert = alerts[0]
        assert alert.trace_ids == case["trace_ids"]
        assert alert.analysis.drift_direction.value == case["direction"]
        names = [i.indicator for i in alert.analysis.specific_indicators]
        assert set(case["indicators"]) <= set(names)
        change = next(
            i for i in alert.analysis.specific_indicators if i.indicator == "escalation_rate_change"
        )
        assert (change.baseline, change.current) == (1.0, 0.0)
