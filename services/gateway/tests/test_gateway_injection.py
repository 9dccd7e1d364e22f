"""Waves 1 and 3 as pure functions: which thinking goes into which body, the nudge notice in
every system-prompt shape, and the body untouched (byte for byte, never decoded) otherwise."""

from __future__ import annotations

import random
from typing import Any

import msgspec
import pytest
from smoltbot_contracts import AgentConfig, Nudge
from smoltbot_gateway import injection
from smoltbot_gateway.body import inspect_body
from smoltbot_gateway.injection import (
    Prepared,
    anthropic_budget,
    openai_reasoning_model,
    prepare_upstream,
)
from smoltbot_gateway.nudges import NOTICE_HEADER, NudgeClaim, claim_for, notice_text

ANTHROPIC = "/v1/messages"
OPENAI = "/v1/chat/completions"
GEMINI = "/v1beta/models/{model}:generateContent"
ON = AgentConfig()
AIP_OFF = AgentConfig(aip_enabled=False)


def prepare(
    provider: str,
    body: dict[str, Any] | bytes,
    *,
    path: str | None = None,
    model: str | None = None,
    config: AgentConfig = ON,
    claim: NudgeClaim | None = None,
) -> Prepared:
    raw = body if isinstance(body, bytes) else msgspec.json.encode(body)
    info = inspect_body(raw)
    default = {"anthropic": ANTHROPIC, "openai": OPENAI, "gemini": GEMINI}[provider]
    return prepare_upstream(
        provider,  # type: ignore[arg-type]
        path or default.format(model=model or "gemini-2.5-flash"),
        raw,
        info,
        model=model or info.model or (None if provider != "gemini" else "gemini-2.5-flash"),
        config=config,
        claim=claim,
    )


def sent(prepared: Prepared) -> dict[str, Any]:
    decoded: dict[str, Any] = msgspec.json.decode(prepared.body)
    return decoded


def claim_with(*texts: str) -> NudgeClaim:
    claim = NudgeClaim("0190f0e0-0000-7000-8000-0000000000aa")
    claim.agent = "smolt-test"
    claim.nudges = tuple(
        Nudge(
            id=f"nudge-{i}",
            agent_id="smolt-test",
            checkpoint_id=f"ic-{i}",
            exchange_id=f"ex-{i}",
            session_id="s",
            text=text,
            created_ms=1_700_000_000_000 + i,
        )
        for i, text in enumerate(texts)
    )
    return claim


def anthropic(**fields: Any) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "hi"}],
        **fields,
    }


# ------------------------------------------------------------------------ wave 1: Anthropic


def test_anthropic_budget_is_always_below_max_tokens_and_at_least_the_minimum() -> None:
    rng = random.Random(7)
    values = [*range(25_000), *(rng.randrange(25_000, 10_000_000) for _ in range(5_000))]
    for max_tokens in values:
        budget = anthropic_budget(max_tokens)
        if budget is None:
            assert max_tokens < 2048, max_tokens
            continue
        assert 1024 <= budget < max_tokens, max_tokens
        assert budget <= 10_000
        assert budget == min(10_000, max_tokens // 2)
    for odd in (None, True, 4096.0, "4096", -5, [4096]):
        assert anthropic_budget(odd) is None


@pytest.mark.parametrize("max_tokens", [2048, 4096, 8192, 20_000, 20_001, 64_000, 128_000])
def test_anthropic_thinking_goes_in_with_a_budget_below_max_tokens(max_tokens: int) -> None:
    prepared = prepare("anthropic", anthropic(max_tokens=max_tokens))
    body = sent(prepared)
    assert prepared.thinking
    assert body["thinking"] == {"type": "enabled", "budget_tokens": min(10_000, max_tokens // 2)}
    assert body["thinking"]["budget_tokens"] < body["max_tokens"]
    assert {k: v for k, v in body.items() if k != "thinking"} == anthropic(max_tokens=max_tokens)


@pytest.mark.parametrize(
    "fields",
    [
        {"max_tokens": 5},
        {"max_tokens": 1024},
        {"max_tokens": 2047},
        {"max_tokens": 4096.0},
        {"thinking": {"type": "disabled"}},
        {"thinking": {"type": "enabled", "budget_tokens": 2000}},
        {"temperature": 0.2},
        {"top_k": 5},
        {"top_p": 0.5},
        {"tool_choice": {"type": "any"}},
        {"tool_choice": {"type": "tool", "name": "x"}},
        {"model": "claude-3-5-sonnet-20241022"},
        {"model": "claude-3-haiku-20240307"},
        {"model": "claude-2.1"},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "{"}]},
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "x"}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]},
            ]
        },
    ],
)
def test_no_anthropic_thinking_where_the_client_chose_or_anthropic_would_refuse(
    fields: dict[str, Any],
) -> None:
    raw = msgspec.json.encode(anthropic(**fields))
    prepared = prepare("anthropic", raw)
    assert prepared.body is raw  # untouched, not even re-encoded
    assert not prepared.thinking


@pytest.mark.parametrize(
    "fields",
    [
        {"temperature": 1},
        {"top_p": 0.97},
        {"tool_choice": {"type": "auto"}},
        {"model": "claude-3-7-sonnet-20250219"},
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "t", "signature": "s"},
                        {"type": "tool_use", "id": "t", "name": "x", "input": {}},
                    ],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]},
            ]
        },
    ],
)
def test_anthropic_thinking_where_anthropic_accepts_it(fields: dict[str, Any]) -> None:
    assert prepare("anthropic", anthropic(**fields)).thinking


def test_no_thinking_for_agents_without_aip_or_off_the_generation_endpoint() -> None:
    raw = msgspec.json.encode(anthropic())
    assert prepare("anthropic", raw, config=AIP_OFF).body is raw
    assert prepare("anthropic", raw, path="/v1/messages/count_tokens").body is raw


# --------------------------------------------------------------------------- wave 1: OpenAI


@pytest.mark.parametrize(
    ("model", "reasoning"),
    [
        ("gpt-5", True),
        ("gpt-5-mini", True),
        ("gpt-5-nano-2025-08-07", True),
        ("gpt-5.1", True),
        ("gpt-5.1-codex", True),
        ("o1", True),
        ("o1-2024-12-17", True),
        ("o3", True),
        ("o3-mini", True),
        ("o4-mini", True),
        ("GPT-5", True),
        ("gpt-5-chat-latest", False),
        ("gpt-5.1-chat-latest", False),
        ("gpt-5-pro", False),
        ("o1-mini", False),
        ("o1-preview", False),
        ("gpt-4o", False),
        ("gpt-4.1", False),
        ("gpt-50", False),
        ("o10", False),
        ("omni", False),
        ("", False),
        (None, False),
    ],
)
def test_openai_reasoning_model_rule(model: str | None, reasoning: bool) -> None:
    assert openai_reasoning_model(model) is reasoning


def test_openai_reasoning_effort_only_for_reasoning_models_and_never_over_the_clients() -> None:
    base = {"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]}
    prepared = prepare("openai", base)
    assert sent(prepared) == {**base, "reasoning_effort": "medium"}
    for body in (
        {**base, "model": "gpt-4o"},
        {**base, "reasoning_effort": "low"},
        {**base, "reasoning_effort": "minimal"},
        {**base, "reasoning": {"effort": "high"}},
    ):
        raw = msgspec.json.encode(body)
        assert prepare("openai", raw).body is raw
    raw = msgspec.json.encode(base)
    assert prepare("openai", raw, path="/v1/responses").body is raw


# --------------------------------------------------------------------------- wave 1: Gemini


def gemini(**fields: Any) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], **fields}


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gemini-2.5-flash", {"thinkingBudget": 16384, "includeThoughts": True}),
        ("gemini-2.5-pro-preview-06-05", {"thinkingBudget": 16384, "includeThoughts": True}),
        ("gemini-3-pro-preview", {"thinkingLevel": "HIGH", "includeThoughts": True}),
        ("gemini-3.5-flash", {"thinkingLevel": "HIGH", "includeThoughts": True}),
        ("gemini-2.0-flash", None),
        ("gemini-1.5-pro", None),
        ("gemma-3-27b-it", None),
        ("gemini-test", None),
    ],
)
def test_gemini_thinking_config_by_the_model_in_the_url(
    model: str, expected: dict[str, Any] | None
) -> None:
    raw = msgspec.json.encode(gemini(generationConfig={"temperature": 0.3}))
    prepared = prepare("gemini", raw, model=model)
    if expected is None:
        assert prepared.body is raw
        return
    assert sent(prepared)["generationConfig"] == {"temperature": 0.3, "thinkingConfig": expected}


def test_gemini_generation_config_is_created_or_kept_and_a_clients_thinking_config_wins() -> None:
    assert sent(prepare("gemini", gemini()))["generationConfig"] == {
        "thinkingConfig": {"thinkingBudget": 16384, "includeThoughts": True}
    }
    capped = sent(prepare("gemini", gemini(generationConfig={"maxOutputTokens": 4000})))
    assert capped["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 2000,
        "includeThoughts": True,
    }
    small = sent(prepare("gemini", gemini(generationConfig={"maxOutputTokens": 300})))
    assert small["generationConfig"]["thinkingConfig"] == {"includeThoughts": True}
    snake = sent(prepare("gemini", gemini(generation_config={"top_k": 3})))
    assert "generationConfig" not in snake
    assert snake["generation_config"]["top_k"] == 3
    assert snake["generation_config"]["thinkingConfig"]["includeThoughts"] is True
    for own in (
        gemini(generationConfig={"thinkingConfig": {"thinkingBudget": 0}}),
        gemini(generation_config={"thinking_config": {"include_thoughts": False}}),
        gemini(generationConfig="not an object"),
    ):
        raw = msgspec.json.encode(own)
        assert prepare("gemini", raw).body is raw


# ---------------------------------------------------------------------------- wave 3: shapes


def test_notice_text_has_the_header_and_one_paragraph_per_nudge() -> None:
    claim = claim_with("first\nline two", "second")
    assert notice_text(claim.nudges) == f"{NOTICE_HEADER}\nfirst\nline two\n\nsecond"


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        (None, "NOTICE"),
        ("", "NOTICE"),
        ("You are terse.", "You are terse.\n\nNOTICE"),
        (
            [{"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}}],
            [
                {"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "NOTICE"},
            ],
        ),
    ],
)
def test_nudges_go_into_anthropic_system_in_every_shape(system: Any, expected: Any) -> None:
    claim = claim_with("p1", "p2")
    notice = notice_text(claim.nudges)
    body = anthropic(max_tokens=64) if system is None else anthropic(max_tokens=64, system=system)
    prepared = prepare("anthropic", body, claim=claim)
    assert prepared.nudge_ids == ("nudge-0", "nudge-1")
    assert claim.delivered
    assert not prepared.thinking
    expected = (
        expected.replace("NOTICE", notice)
        if isinstance(expected, str)
        else [{**b, "text": b["text"].replace("NOTICE", notice)} for b in expected]
    )
    assert sent(prepared)["system"] == expected
    assert prepared.headers == [(b"x-aip-enforcement", b"nudge"), (b"x-aip-nudge-count", b"2")]


def test_nudges_and_thinking_go_in_together_with_one_encode() -> None:
    claim = claim_with("p1")
    prepared = prepare("anthropic", anthropic(system="S"), claim=claim)
    body = sent(prepared)
    assert prepared.thinking
    assert body["thinking"]["type"] == "enabled"
    assert body["system"] == f"S\n\n{notice_text(claim.nudges)}"


def test_nudges_go_into_the_first_openai_system_message_or_a_new_one() -> None:
    claim = claim_with("p1")
    notice = notice_text(claim.nudges)
    user = {"role": "user", "content": "hi"}
    plain = sent(prepare("openai", {"model": "gpt-4o", "messages": [user]}, claim=claim))
    assert plain["messages"] == [{"role": "system", "content": notice}, user]
    two = [{"role": "system", "content": "A"}, user, {"role": "system", "content": "B"}]
    body = sent(prepare("openai", {"model": "gpt-4o", "messages": two}, claim=claim_with("p1")))
    assert body["messages"] == [
        {"role": "system", "content": f"A\n\n{notice}"},
        user,
        {"role": "system", "content": "B"},
    ]
    parts = [{"role": "developer", "content": [{"type": "text", "text": "D"}]}, user]
    body = sent(prepare("openai", {"model": "gpt-4o", "messages": parts}, claim=claim_with("p1")))
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "D"},
        {"type": "text", "text": notice},
    ]


def test_nudges_go_into_gemini_system_instruction() -> None:
    notice = notice_text(claim_with("p1").nudges)
    config = {"generationConfig": {"thinkingConfig": {"includeThoughts": True}}}
    created = sent(prepare("gemini", gemini(**config), claim=claim_with("p1")))
    assert created["systemInstruction"] == {"parts": [{"text": notice}]}
    existing = gemini(**config, systemInstruction={"role": "system", "parts": [{"text": "S"}]})
    body = sent(prepare("gemini", existing, claim=claim_with("p1")))
    assert body["systemInstruction"] == {
        "role": "system",
        "parts": [{"text": "S"}, {"text": notice}],
    }
    snake = gemini(**config, system_instruction={"parts": [{"text": "S"}]})
    body = sent(prepare("gemini", snake, claim=claim_with("p1")))
    assert "systemInstruction" not in body
    assert body["system_instruction"]["parts"][-1] == {"text": notice}


@pytest.mark.parametrize(
    ("provider", "body"),
    [
        ("anthropic", {"model": "m", "max_tokens": 5, "messages": [], "system": 5}),
        ("anthropic", {"model": "m", "max_tokens": 5, "messages": [], "system": {"a": 1}}),
        ("openai", {"model": "gpt-4o", "messages": "nope"}),
        ("openai", {"model": "gpt-4o", "messages": [{"role": "system", "content": 3}]}),
        ("gemini", {"contents": [], "systemInstruction": "text", "generationConfig": None}),
        ("gemini", {"contents": [], "systemInstruction": {"parts": 1}}),
    ],
)
def test_a_system_field_of_an_odd_shape_is_left_alone_and_the_nudges_kept(
    provider: str, body: dict[str, Any]
) -> None:
    claim = claim_with("p1")
    raw = msgspec.json.encode(body)
    prepared = prepare(provider, raw, config=AIP_OFF, claim=claim)
    assert prepared.body is raw
    assert prepared.nudge_ids == ()
    assert not claim.delivered  # given back when the call ends


@pytest.mark.parametrize(
    "raw",
    [b"", b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe", b"[" * 5000, b"null", b"42"],
)
@pytest.mark.parametrize("provider", ["anthropic", "openai", "gemini"])
def test_a_body_that_is_not_a_json_object_is_never_touched(provider: str, raw: bytes) -> None:
    claim = claim_with("p1")
    prepared = prepare(provider, raw, claim=claim)
    assert prepared.body is raw
    assert prepared == Prepared(raw)
    assert not claim.delivered


def test_nothing_to_inject_means_the_body_is_never_decoded_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Tripwire:
        def decode(self, _: object) -> object:
            raise AssertionError("the body was decoded for nothing")

    monkeypatch.setattr(injection, "_DECODER", Tripwire())
    cases: list[tuple[str, dict[str, Any], str | None]] = [
        ("anthropic", anthropic(max_tokens=1000), None),
        ("anthropic", anthropic(temperature=0), None),
        ("anthropic", anthropic(thinking={"type": "enabled", "budget_tokens": 1024}), None),
        ("openai", {"model": "gpt-4o", "messages": []}, None),
        ("openai", {"model": "o3", "messages": [], "reasoning_effort": "high"}, None),
        ("gemini", gemini(generationConfig={"thinkingConfig": {}}), "gemini-2.5-flash"),
        ("gemini", gemini(), "gemini-2.0-flash"),
    ]
    for provider, body, model in cases:
        raw = msgspec.json.encode(body)
        assert prepare(provider, raw, model=model).body is raw
    raw = msgspec.json.encode(anthropic())
    assert prepare("anthropic", raw, config=AIP_OFF).body is raw


def test_an_unmodified_body_keeps_its_exact_bytes() -> None:
    raw = b'{ "model":"gpt-4o" , "messages":[{"role":"user","content":"\\u00e9 1.0e1"}] }'
    assert prepare("openai", raw).body is raw


def test_only_posts_to_generation_endpoints_claim_nudges() -> None:
    assert claim_for("anthropic", "POST", "/v1/messages", "e") is not None
    assert claim_for("openai", "POST", "/v1/chat/completions", "e") is not None
    assert claim_for("gemini", "POST", "/v1beta/models/g:generateContent", "e") is not None
    assert claim_for("gemini", "POST", "/v1/models/g:streamGenerateContent", "e") is not None
    assert claim_for("anthropic", "GET", "/v1/messages", "e") is None
    assert claim_for("anthropic", "POST", "/v1/messages/count_tokens", "e") is None
    assert claim_for("anthropic", "GET", "/v1/models", "e") is None
    assert claim_for("openai", "POST", "/v1/embeddings", "e") is None
    assert claim_for("gemini", "POST", "/v1beta/models/g:countTokens", "e") is None
