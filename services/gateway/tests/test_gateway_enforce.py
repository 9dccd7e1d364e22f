"""Enforce mode and inline verdicts without Redis: which calls wait, what each outcome answers
(headers, the 403 in each provider's shape), the failure policies."""

from __future__ import annotations

import json

import pytest
from smoltbot_config import load_settings
from smoltbot_contracts import AgentConfig, Checkpoint, Concern, ExchangeMeta, VerdictV1
from smoltbot_contracts.errors import ERROR_STATUS
from smoltbot_gateway.enforce import (
    BLOCKED_MESSAGE,
    HeldResponse,
    decide,
    failure_policy,
    immediate_verdict,
    waits_for_verdict,
)
from smoltbot_gateway.providers import PROVIDERS
from smoltbot_gateway.settings import GatewaySettings
from smoltbot_gateway.waiting import WaitOutcome
from smoltbot_testing.events import FIXED_TIME

ENFORCE = AgentConfig(enforcement_mode="enforce")
OBSERVE = AgentConfig()


def settings(**env: str) -> GatewaySettings:
    return load_settings(GatewaySettings, env)


def verdict(
    value: str = "clear", *, action: str = "continue", synthetic: bool = False
) -> VerdictV1:
    meta = ExchangeMeta(
        exchange_id="ex-1",
        agent_id="smolt-1",
        agent_hash="1" * 16,
        session_id="s",
        provider="anthropic",
        started_at=FIXED_TIME,
        completed_at=FIXED_TIME,
    )
    concerns = (
        [
            Concern(
                category="value_misalignment",
                severity="critical",
                description="Reasoning plans to move credentials or secrets out of their place",
                evidence="I will exfiltrate the credentials",
            )
        ]
        if value == "boundary_violation"
        else []
    )
    checkpoint = Checkpoint(
        checkpoint_id="ic-1",
        agent_id="smolt-1",
        card_id="ac-1",
        session_id="s",
        timestamp=FIXED_TIME,
        thinking_block_hash="h",
        provider="anthropic",
        model="m",
        verdict=value,  # type: ignore[arg-type]
        concerns=concerns,
        reasoning_summary="summary",
        recommended_action=action,  # type: ignore[arg-type]
        proceed=value != "boundary_violation",
        synthetic=synthetic,
    )
    return VerdictV1(event_id="v-1", meta=meta, checkpoint=checkpoint)


def came(v: VerdictV1) -> WaitOutcome:
    return WaitOutcome("verdict", v, 0.01)


def test_settings_defaults_and_parsing() -> None:
    default = settings()
    assert default.aip_timeout_ms == 10_000
    assert default.failure_policy == "fail_open"
    assert default.aip_inline_verdict is False
    custom = settings(
        SMOLTBOT_GATEWAY_AIP_TIMEOUT_MS="2500",
        SMOLTBOT_GATEWAY_FAILURE_POLICY="fail_closed",
        AIP_INLINE_VERDICT="true",
    )
    assert (custom.aip_timeout_ms, custom.failure_policy, custom.aip_inline_verdict) == (
        2500,
        "fail_closed",
        True,
    )


@pytest.mark.parametrize(
    ("config", "inline", "streamed", "method", "waits"),
    [
        (ENFORCE, False, False, "POST", True),
        (ENFORCE, False, True, "POST", False),  # streams never wait
        (ENFORCE, False, False, "GET", False),  # nothing to analyse
        (AgentConfig(enforcement_mode="enforce", aip_enabled=False), False, False, "POST", False),
        (OBSERVE, False, False, "POST", False),
        (AgentConfig(enforcement_mode="nudge"), False, False, "POST", False),
        (OBSERVE, True, False, "POST", True),  # AIP_INLINE_VERDICT
        (AgentConfig(aip_enabled=False), True, False, "POST", False),
        (OBSERVE, True, True, "POST", False),
    ],
)
def test_which_calls_wait(
    config: AgentConfig, inline: bool, streamed: bool, method: str, waits: bool
) -> None:
    s = settings(AIP_INLINE_VERDICT="true" if inline else "false")
    assert waits_for_verdict(config, s, streamed=streamed, method=method) is waits


def test_calls_that_do_not_wait_say_pending_skipped_or_disabled() -> None:
    assert immediate_verdict(ENFORCE, 200) == b"pending"
    assert immediate_verdict(OBSERVE, 201) == b"pending"
    assert immediate_verdict(OBSERVE, 429) == b"skipped"
    assert immediate_verdict(AgentConfig(aip_enabled=False), 200) == b"disabled"
    assert immediate_verdict(AgentConfig(aip_enabled=False), 500) == b"disabled"


def test_the_agent_policy_wins_over_the_gateway_policy() -> None:
    closed = settings(SMOLTBOT_GATEWAY_FAILURE_POLICY="fail_closed")
    assert failure_policy(ENFORCE, settings()) == "fail_open"
    assert failure_policy(ENFORCE, closed) == "fail_closed"
    agent_open = AgentConfig(enforcement_mode="enforce", failure_policy="fail_open")
    assert failure_policy(agent_open, closed) == "fail_open"
    agent_closed = AgentConfig(enforcement_mode="enforce", failure_policy="fail_closed")
    assert failure_policy(agent_closed, settings()) == "fail_closed"


@pytest.mark.parametrize(
    ("value", "action", "proceed"),
    [("clear", "continue", b"true"), ("review_needed", "log_and_continue", b"true")],
)
def test_a_passing_verdict_relays_with_its_headers(value: str, action: str, proceed: bytes) -> None:
    decision = decide(came(verdict(value, action=action)), ENFORCE, settings(), "anthropic")
    assert decision.block is None
    assert decision.headers == [
        (b"x-aip-verdict", value.encode()),
        (b"x-aip-action", action.encode()),
        (b"x-aip-proceed", proceed),
    ]


def test_a_synthetic_checkpoint_says_so() -> None:
    decision = decide(came(verdict(synthetic=True)), ENFORCE, settings(), "openai")
    assert (b"x-aip-synthetic", b"true") in decision.headers


def test_a_verdict_without_a_checkpoint_is_skipped() -> None:
    empty = VerdictV1(event_id="v", meta=verdict().meta)
    decision = decide(came(empty), ENFORCE, settings(), "anthropic")
    assert decision == decide(came(empty), OBSERVE, settings(), "anthropic")
    assert decision.block is None
    assert decision.headers == [(b"x-aip-verdict", b"skipped")]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_violation_in_enforce_mode_is_the_reference_403_in_each_provider_shape(
    provider: str,
) -> None:
    v = verdict("boundary_violation", action="deny_and_escalate")
    decision = decide(came(v), ENFORCE, settings(), provider)  # type: ignore[arg-type]
    assert decision.block is not None
    assert decision.block.status == 403 == ERROR_STATUS["integrity_violation"]
    assert decision.headers == [
        (b"x-aip-verdict", b"boundary_violation"),
        (b"x-aip-action", b"deny_and_escalate"),
        (b"x-aip-proceed", b"false"),
    ]
    body = json.loads(decision.block.body)
    assert body["type"] == "integrity_violation"
    assert body["message"] == BLOCKED_MESSAGE
    assert body["checkpoint"] == {
        "checkpoint_id": "ic-1",
        "verdict": "boundary_violation",
        "concerns": [
            {
                "category": "value_misalignment",
                "severity": "critical",
                "description": "Reasoning plans to move credentials or secrets out of their place",
                "evidence": "I will exfiltrate the credentials",
                "relevant_card_field": None,
                "relevant_conscience_value": None,
            }
        ],
        "reasoning_summary": "summary",
        "recommended_action": "deny_and_escalate",
    }
    error = body["error"]
    assert error["message"] == BLOCKED_MESSAGE  # where each SDK reads it
    if provider == "gemini":
        assert (error["code"], error["status"]) == (403, "PERMISSION_DENIED")
    else:
        assert error["type"] == "integrity_violation"


def test_a_violation_outside_enforce_mode_is_reported_not_blocked() -> None:
    v = verdict("boundary_violation", action="pause_for_review")
    for mode in ("observe", "nudge", "off"):
        config = AgentConfig(enforcement_mode=mode)  # type: ignore[arg-type]
        decision = decide(came(v), config, settings(AIP_INLINE_VERDICT="true"), "anthropic")
        assert decision.block is None
        assert decision.headers[0] == (b"x-aip-verdict", b"boundary_violation")


@pytest.mark.parametrize("outcome", ["timeout", "error", "bus_unavailable"])
def test_no_verdict_fails_open_by_default(outcome: str) -> None:
    decision = decide(WaitOutcome(outcome, None, 1.0), ENFORCE, settings(), "anthropic")  # type: ignore[arg-type]
    assert decision.block is None
    assert decision.headers == [(b"x-aip-verdict", b"error")]


@pytest.mark.parametrize("outcome", ["timeout", "error", "bus_unavailable"])
def test_no_verdict_fails_closed_when_asked(outcome: str) -> None:
    closed = AgentConfig(enforcement_mode="enforce", failure_policy="fail_closed")
    decision = decide(WaitOutcome(outcome, None, 1.0), closed, settings(), "openai")  # type: ignore[arg-type]
    assert decision.block is not None
    assert decision.block.status == 403
    assert decision.headers == [(b"x-aip-verdict", b"error"), (b"x-aip-proceed", b"false")]
    body = json.loads(decision.block.body)
    assert body["type"] == "integrity_violation"
    assert body["reason"] == outcome
    assert "checkpoint" not in body


def test_inline_verdicts_never_block_even_fail_closed() -> None:
    closed = settings(SMOLTBOT_GATEWAY_FAILURE_POLICY="fail_closed", AIP_INLINE_VERDICT="true")
    decision = decide(WaitOutcome("timeout", None, 1.0), OBSERVE, closed, "anthropic")
    assert decision.block is None
    assert decision.headers == [(b"x-aip-verdict", b"error")]


async def test_the_held_response_replaces_the_pending_verdict_and_frames_the_body() -> None:
    held = HeldResponse()
    await held.send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"x-aip-verdict", b"pending")],
        }
    )
    await held.send({"type": "http.response.body", "body": b"ab", "more_body": True})
    assert not held.complete
    await held.send({"type": "http.response.body", "body": b"c", "more_body": False})
    assert held.complete
    start = held.start([(b"x-aip-verdict", b"clear")])
    assert start["status"] == 200
    assert start["headers"] == [
        (b"content-type", b"application/json"),
        (b"content-length", b"3"),
        (b"x-aip-verdict", b"clear"),
    ]
