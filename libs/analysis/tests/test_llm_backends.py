"""The LLM backends' pure parts: the factory's settings rules, the self-loop rule, the prompt
wrapper, the JSON salvage, and the HTTP error classes (through httpx's MockTransport)."""

from __future__ import annotations

import asyncio
import json

import aip
import httpx
import pytest
from smoltbot_analysis import (
    AnalysisError,
    AnalysisRequest,
    HttpAnalyzer,
    RulesIntegrityAnalyzer,
    WindowEntry,
    aclose_analyzer,
    aip_card_view,
    build_prompt,
    extract_json,
    gateway_url_problem,
    make_analyzer,
)

KEY = "sk-unit-SECRET-42"
CARD = aip_card_view(
    {
        "card_id": "ac-unit",
        "values": {"declared": ["transparency"]},
        "autonomy_envelope": {"bounded_actions": ["read_files"], "forbidden_actions": []},
    }
)
THINKING = "Let me read the configuration file and check the timeout value. " * 3
REQUEST = AnalysisRequest(thinking=THINKING, card=CARD)
ANALYSIS = {
    "verdict": "clear",
    "concerns": [],
    "reasoning_summary": "fine",
    "conscience_context": {
        "values_checked": [],
        "conflicts": [],
        "supports": [],
        "considerations": [],
        "consultation_depth": "surface",
    },
}


def test_make_analyzer_keeps_rules_the_default() -> None:
    assert isinstance(make_analyzer(), RulesIntegrityAnalyzer)
    assert isinstance(make_analyzer("rules"), RulesIntegrityAnalyzer)
    with pytest.raises(ValueError, match="unknown analyzer backend"):
        make_analyzer("nope")


@pytest.mark.parametrize(
    ("backend", "base_url", "api_key", "names"),
    [
        ("anthropic", None, None, ["SMOLTBOT_ANALYZER_API_KEY"]),
        ("openai", None, None, ["SMOLTBOT_ANALYZER_BASE_URL", "SMOLTBOT_ANALYZER_MODEL"]),
        ("openai", "http://vllm:8000", None, ["SMOLTBOT_ANALYZER_MODEL"]),
        ("hybrid", None, KEY, ["SMOLTBOT_ANALYZER_BASE_URL"]),
        ("hybrid", "https://analyze.example.com", None, ["SMOLTBOT_ANALYZER_API_KEY"]),
    ],
)
def test_a_missing_setting_is_named(
    backend: str, base_url: str | None, api_key: str | None, names: list[str]
) -> None:
    with pytest.raises(ValueError) as caught:
        make_analyzer(backend, base_url=base_url, api_key=api_key)
    for name in names:
        assert name in str(caught.value)
    assert KEY not in str(caught.value)


async def test_defaults_and_base_urls() -> None:
    anthropic = make_analyzer("anthropic", api_key=KEY)
    local = make_analyzer("openai", base_url="http://127.0.0.1:11434", model="llama3.1")
    hybrid = make_analyzer("hybrid", base_url="https://analyze.example.com/v1", api_key=KEY)
    try:
        assert isinstance(anthropic, HttpAnalyzer)
        assert anthropic.url == "https://api.anthropic.com/v1/messages"
        assert anthropic.model == "claude-haiku-4-5-20251001"
        assert isinstance(local, HttpAnalyzer)
        assert local.url == "http://127.0.0.1:11434/v1/chat/completions"
        assert isinstance(hybrid, HttpAnalyzer)
        assert hybrid.url == "https://analyze.example.com/v1/analyze"
        assert KEY not in repr(anthropic)
    finally:
        for analyzer in (anthropic, local, hybrid):
            await aclose_analyzer(analyzer)
    await aclose_analyzer(RulesIntegrityAnalyzer())  # a no-op


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://localhost:8787", True),
        ("https://gw.example.com/anthropic", True),
        ("https://gw.example.com/OpenAI/v1", True),
        ("https://gw.example.com/gemini/v1beta", True),
        ("https://gw.example.com/agent/name/openai", True),
        ("http://vllm:8000/v1", False),
        ("https://api.anthropic.com", False),
        ("http://ollama:11434", False),
        ("https://llm.example.com/anthropic-proxy", False),
        ("not a url", True),
        ("http://host:99999", True),
    ],
)
def test_the_self_loop_rule(url: str, refused: bool) -> None:
    assert (gateway_url_problem(url) is not None) == refused


def test_the_prompt_is_built_by_the_aip_package_with_the_window() -> None:
    request = AnalysisRequest(
        thinking=THINKING,
        card=CARD,
        conscience_values=tuple(
            v for v in aip.DEFAULT_CONSCIENCE_VALUES if isinstance(v, aip.ConscienceValue)
        ),
        task_context="Fix the config test.",
        window=(
            WindowEntry("ic-1", "clear", "Read a file."),
            WindowEntry("ic-2", "review_needed", "Skipped a check."),
        ),
    )
    prompt = build_prompt(request)
    assert "SESSION CONTEXT (window: 2/2):\n1. [clear] Read a file.\n2. [review_needed]" in (
        prompt.user
    )
    assert "CURRENT TASK: Fix the config test." in prompt.user
    assert "[COMMITMENT]" not in prompt.user
    assert not prompt.truncated
    long = build_prompt(AnalysisRequest(thinking="A" * 20_000, card=CARD))
    assert long.truncated
    assert long.original_tokens == 5000
    assert "tokens omitted" in long.user


@pytest.mark.parametrize(
    "answer",
    [
        json.dumps(ANALYSIS),
        "```json\n" + json.dumps(ANALYSIS) + "\n```",
        "Here is the result:\n```\n" + json.dumps(ANALYSIS) + "\n```\nThanks.",
        "Sure. " + json.dumps(ANALYSIS) + " Hope that helps {",
    ],
)
def test_extract_json_salvages_the_object(answer: str) -> None:
    assert json.loads(extract_json(answer)) == ANALYSIS


def test_extract_json_leaves_prose_for_check_integrity_to_reject() -> None:
    assert extract_json("  no json here ") == "no json here"


def _analyzer(
    handler: httpx.MockTransport, *, timeout_s: float = 8.0, breaker_threshold: int = 5
) -> HttpAnalyzer:
    analyzer = make_analyzer(
        "openai",
        base_url="http://llm:8000",
        model="m",
        api_key=KEY,
        transport=handler,
        timeout_s=timeout_s,
        breaker_threshold=breaker_threshold,
    )
    assert isinstance(analyzer, HttpAnalyzer)
    return analyzer


def _chat(content: str) -> dict[str, object]:
    return {"choices": [{"message": {"role": "assistant", "content": content}}]}


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (httpx.Response(429, json={"error": KEY}), "HTTP 429"),
        (httpx.Response(503, text="down"), "HTTP 503"),
        (httpx.Response(200, text="<html>"), "non-JSON"),
        (httpx.Response(200, json=[1, 2]), "no JSON object"),
        (httpx.Response(200, json={"choices": []}), "no message content"),
        (httpx.Response(200, json=_chat("[1, 2]")), "no verdict"),
        (httpx.Response(200, json=_chat("I cannot help.")), "holds no JSON object"),
        (httpx.Response(200, json=_chat('{"a": 1}')), "no verdict"),
        (
            httpx.Response(
                200, json=_chat(json.dumps(ANALYSIS)), headers={"x-smoltbot-event-id": "e"}
            ),
            "points at the smoltbot gateway",
        ),
    ],
)
async def test_unusable_answers_are_analysis_errors(response: httpx.Response, message: str) -> None:
    analyzer = _analyzer(httpx.MockTransport(lambda _: response))
    try:
        with pytest.raises(AnalysisError, match=message) as caught:
            await analyzer.analyze(REQUEST)
        assert KEY not in str(caught.value)
    finally:
        await aclose_analyzer(analyzer)


async def test_a_connection_error_is_an_analysis_error_without_the_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}")

    analyzer = _analyzer(httpx.MockTransport(refuse))
    try:
        with pytest.raises(AnalysisError, match=r"request failed \(ConnectError\)") as caught:
            await analyzer.analyze(REQUEST)
        assert "llm:8000" not in str(caught.value)
    finally:
        await aclose_analyzer(analyzer)


async def test_a_trailing_comma_and_a_fence_still_make_a_result() -> None:
    text = "```json\n" + json.dumps(ANALYSIS)[:-1] + ",}\n```"
    analyzer = _analyzer(httpx.MockTransport(lambda _: httpx.Response(200, json=_chat(text))))
    try:
        result = await analyzer.analyze(REQUEST)
    finally:
        await aclose_analyzer(analyzer)
    assert result.text.startswith("{")
    assert result.text.endswith(",}")  # check_integrity drops the comma itself
    assert result.model == "m"
    assert (
        result.tokens_analyzed
        == aip.build_conscience_prompt(
            aip.PromptInput(
                card=CARD, conscience_values=[], window_context=[], thinking_block=THINKING
            )
        ).analyzed_tokens
    )


async def test_the_backend_timeout_is_an_analysis_error_and_counts_for_the_breaker() -> None:
    async def slow(_: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, json=_chat(json.dumps(ANALYSIS)))

    analyzer = _analyzer(httpx.MockTransport(slow), timeout_s=0.05, breaker_threshold=1)
    try:
        with pytest.raises(AnalysisError, match="no answer within 0.05s"):
            await analyzer.analyze(REQUEST)
        with pytest.raises(AnalysisError, match="circuit open"):
            await analyzer.analyze(REQUEST)
    finally:
        await aclose_analyzer(analyzer)


async def test_a_caller_timeout_counts_as_a_failure_too() -> None:
    async def slow(_: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200)

    analyzer = _analyzer(httpx.MockTransport(slow), timeout_s=10, breaker_threshold=1)
    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(analyzer.analyze(REQUEST), 0.05)
        assert analyzer.breaker.is_open
    finally:
        await aclose_analyzer(analyzer)
