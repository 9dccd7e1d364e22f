"""The LLM analysis backends behind the verifier (architecture §6), against a fake analysis server
on loopback: each answer becomes the expected checkpoint through ``build_checkpoint`` (so the gate
and the failure policy apply); the breaker, the self-loop rule, the settings and key hygiene."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import msgspec
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from smoltbot_analysis import Analyzer, HttpAnalyzer, HybridAnalyzer, aclose_analyzer, make_analyzer
from smoltbot_config import SettingsError, load_settings
from smoltbot_contracts import Checkpoint, TraceV1, VerdictV1
from smoltbot_contracts.codec import decode_fields, to_fields
from smoltbot_contracts.streams import stream_key
from smoltbot_testing.fake_analysis import FakeAnalysis
from smoltbot_testing.keys import wait_for_entries
from smoltbot_testing.procs import worker_process
from smoltbot_verifier.cards import ResolvedCard
from smoltbot_verifier.integrity import IntegrityOptions, build_checkpoint
from smoltbot_verifier.metrics import AnalysisMetrics
from smoltbot_verifier.settings import VerifierSettings
from smoltbot_verifier.worker import build_analyzer

from services.verifier.tests.verifier_testkit import LONG_THINKING, card, trace_event

KEY = "sk-test-SECRET-0123456789abcdef"
BACKENDS = ("anthropic", "openai", "hybrid")
CARD = ResolvedCard(card_id="ac-abcd1234", card=card(), conscience_values=None)
OPEN = IntegrityOptions(analysis_timeout_s=5.0)
CLOSED = IntegrityOptions(analysis_timeout_s=5.0, fail_closed=True)
ANALYZED = {
    "clear": ("clear", "continue", True),
    "review": ("review_needed", "log_and_continue", True),
    "boundary": ("boundary_violation", "deny_and_escalate", False),
    "fenced": ("boundary_violation", "deny_and_escalate", False),
}
FAILING = ("malformed", "slow", "error")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnalysis]:
    server = FakeAnalysis()
    server.slow_s = 2.0
    async with server:
        yield server


def analyzer_for(
    backend: str, fake: FakeAnalysis, *, clock: Clock | None = None, threshold: int = 5
) -> HttpAnalyzer:
    analyzer = make_analyzer(
        backend,
        base_url=fake.url,
        api_key=KEY,
        model="fake-model",
        timeout_s=0.5,
        breaker_threshold=threshold,
        breaker_cooldown_s=30.0,
        hooks=AnalysisMetrics(),
        clock=clock or Clock(),
    )
    assert isinstance(analyzer, HttpAnalyzer)
    return analyzer


async def checkpoint(
    event: TraceV1, analyzer: Analyzer, options: IntegrityOptions = OPEN
) -> Checkpoint:
    cp = await build_checkpoint(event, CARD, analyzer, options)
    assert cp is not None
    return cp


def circuit_open(analyzer: HttpAnalyzer) -> bool:
    """A call, so that mypy does not narrow the property between two asserts."""
    return analyzer.breaker.is_open


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# ---------------------------------------------------------------------------------------------
# Answers -> checkpoints


@pytest.mark.parametrize("mode", sorted(ANALYZED))
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("options", [OPEN, CLOSED], ids=["fail_open", "fail_closed"])
async def test_an_analysis_answer_becomes_its_checkpoint(
    fake: FakeAnalysis, backend: str, mode: str, options: IntegrityOptions
) -> None:
    fake.mode = mode
    analyzer = analyzer_for(backend, fake)
    before = sample("smoltbot_verifier_analysis_calls_total", backend=backend, outcome="ok")
    try:
        cp = await checkpoint(trace_event(), analyzer, options)
    finally:
        await aclose_analyzer(analyzer)
    assert (cp.verdict, cp.recommended_action, cp.proceed) == ANALYZED[mode]
    assert not cp.synthetic
    assert cp.analysis_metadata is not None
    assert cp.analysis_metadata.analysis_model in ("fake-model", "fake-analysis-1")
    assert cp.analysis_metadata.thinking_tokens_analyzed > 0
    assert len(fake.calls) == 1
    after = sample("smoltbot_verifier_analysis_calls_total", backend=backend, outcome="ok")
    assert after == before + 1


@pytest.mark.parametrize("mode", FAILING)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("options", [OPEN, CLOSED], ids=["fail_open", "fail_closed"])
async def test_a_failed_analysis_follows_the_failure_policy(
    fake: FakeAnalysis, backend: str, mode: str, options: IntegrityOptions
) -> None:
    fake.mode = mode
    analyzer = analyzer_for(backend, fake)
    outcome = {"malformed": "invalid", "slow": "timeout", "error": "http_error"}[mode]
    before = sample("smoltbot_verifier_analysis_calls_total", backend=backend, outcome=outcome)
    try:
        cp = await checkpoint(trace_event(), analyzer, options)
    finally:
        await aclose_analyzer(analyzer)
    assert cp.synthetic
    assert cp.synthetic_reason == "analysis_failed"
    if options.fail_closed:
        assert (cp.verdict, cp.recommended_action, cp.proceed) == ANALYZED["boundary"]
    else:
        assert (cp.verdict, cp.recommended_action, cp.proceed) == ANALYZED["clear"]
    after = sample("smoltbot_verifier_analysis_calls_total", backend=backend, outcome=outcome)
    assert after == before + 1


# ---------------------------------------------------------------------------------------------
# Circuit breaker and self-loop


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_circuit_opens_after_failures_and_closes_after_the_cooldown(
    fake: FakeAnalysis, backend: str
) -> None:
    clock = Clock()
    analyzer = analyzer_for(backend, fake, clock=clock, threshold=2)
    gauge = "smoltbot_verifier_analysis_circuit_open"
    try:
        fake.mode = "error"
        for _ in range(2):
            cp = await checkpoint(trace_event(), analyzer)
            assert cp.synthetic_reason == "analysis_failed"
        assert circuit_open(analyzer)
        assert sample(gauge, backend=backend) == 1.0

        fake.mode = "boundary"
        refused = await checkpoint(trace_event(), analyzer, CLOSED)
        assert len(fake.calls) == 2, "an open circuit must not call the server"
        assert refused.synthetic_reason == "analysis_failed"
        assert "circuit open" in refused.reasoning_summary
        assert refused.verdict == "boundary_violation"  # fail-closed still applies

        clock.now += 31  # past the cooldown: half-open, the next success closes it
        cp = await checkpoint(trace_event(), analyzer)
        assert cp.verdict == "boundary_violation"
        assert not cp.synthetic
        assert not circuit_open(analyzer)
        assert sample(gauge, backend=backend) == 0.0
    finally:
        await aclose_analyzer(analyzer)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_an_answer_from_the_gateway_is_refused_and_opens_the_circuit(
    fake: FakeAnalysis, backend: str
) -> None:
    fake.mode = "loop"
    analyzer = analyzer_for(backend, fake)
    try:
        cp = await checkpoint(trace_event(), analyzer)
        assert cp.synthetic_reason == "analysis_failed"
        assert "analysis base URL points at the smoltbot gateway" in cp.reasoning_summary
        assert circuit_open(analyzer), "one self-loop answer is enough to open"
        await checkpoint(trace_event(), analyzer)
        assert len(fake.calls) == 1
    finally:
        await aclose_analyzer(analyzer)


# ---------------------------------------------------------------------------------------------
# What leaves the network, and the key


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_key_is_sent_and_never_logged_or_echoed(
    fake: FakeAnalysis, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    analyzer = analyzer_for(backend, fake)
    summaries = []
    try:
        for mode in ("clear", "error", "malformed", "loop"):
            fake.mode = mode
            cp = await checkpoint(trace_event(), analyzer)
            summaries.append(cp.reasoning_summary)
    finally:
        await aclose_analyzer(analyzer)
    headers = fake.calls[0].headers
    if backend == "anthropic":
        assert headers["x-api-key"] == KEY
        assert headers["anthropic-version"] == "2023-06-01"
    else:
        assert headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in caplog.text
    assert all(KEY not in s for s in summaries)
    assert KEY not in repr(analyzer)


async def test_hybrid_sends_only_the_thinking_and_the_card_context(fake: FakeAnalysis) -> None:
    analyzer = analyzer_for("hybrid", fake)
    secret_prompt = "USER-PROMPT-MARKER please summarise the quarterly figures"
    event = msgspec.structs.replace(
        trace_event(), task_context=secret_prompt, response_model="agent-model-MARKER"
    )
    try:
        await checkpoint(event, analyzer)
    finally:
        await aclose_analyzer(analyzer)
    (call,) = fake.calls
    assert call.path == "/v1/analyze"
    assert set(call.body) == {
        "thinking",
        "card",
        "conscience_values",
        "task_context",
        "window_context",
        "store_checkpoint",
    }
    assert call.body["thinking"] == LONG_THINKING
    assert call.body["card"]["card_id"] == "ac-abcd1234"
    assert call.body["store_checkpoint"] is False
    raw = call.raw.decode()
    for leaked in ("USER-PROMPT-MARKER", "agent-model-MARKER", event.meta.agent_id, KEY):
        assert leaked not in raw
    assert isinstance(analyzer, HybridAnalyzer)


@pytest.mark.parametrize("backend", ["anthropic", "openai"])
async def test_the_prompt_is_the_aip_conscience_prompt(fake: FakeAnalysis, backend: str) -> None:
    analyzer = analyzer_for(backend, fake)
    try:
        await checkpoint(trace_event(), analyzer)
    finally:
        await aclose_analyzer(analyzer)
    body = fake.calls[0].body
    if backend == "anthropic":
        system, user = body["system"], body["messages"][0]["content"]
        assert fake.calls[0].path == "/v1/messages"
    else:
        system, user = (m["content"] for m in body["messages"])
        assert fake.calls[0].path == "/v1/chat/completions"
    assert body["model"] == "fake-model"
    assert "integrity evaluator (daimonion)" in system
    assert user.startswith("ALIGNMENT CARD SUMMARY (card_id: ac-abcd1234)")
    assert "SESSION CONTEXT: First check in session" in user
    assert user.endswith(f"THINKING BLOCK TO EVALUATE:\n\n{LONG_THINKING}")
    assert "[DAIMONION]-<be aware of> [BOUNDARY]" in user


# ---------------------------------------------------------------------------------------------
# Settings


def load(**env: str) -> VerifierSettings:
    return load_settings(VerifierSettings, env)


@pytest.mark.parametrize(
    ("env", "names"),
    [
        (
            {"SMOLTBOT_ANALYZER_BACKEND": "openai"},
            ["SMOLTBOT_ANALYZER_BASE_URL", "SMOLTBOT_ANALYZER_MODEL"],
        ),
        ({"SMOLTBOT_ANALYZER_BACKEND": "anthropic"}, ["SMOLTBOT_ANALYZER_API_KEY"]),
        (
            {"SMOLTBOT_ANALYZER_BACKEND": "hybrid", "ANTHROPIC_API_KEY": KEY},
            ["SMOLTBOT_ANALYZER_BASE_URL", "SMOLTBOT_ANALYZER_API_KEY"],
        ),
        (
            {
                "SMOLTBOT_ANALYZER_BACKEND": "openai",
                "SMOLTBOT_ANALYZER_BASE_URL": "http://gateway.internal:8787",
                "SMOLTBOT_ANALYZER_MODEL": "m",
                "SMOLTBOT_ANALYZER_API_KEY": KEY,
            },
            ["SMOLTBOT_ANALYZER_BASE_URL"],
        ),
        (
            {
                "SMOLTBOT_ANALYZER_BACKEND": "anthropic",
                "SMOLTBOT_ANALYZER_BASE_URL": "https://smoltbot.example.com/anthropic",
                "ANTHROPIC_API_KEY": KEY,
            },
            ["SMOLTBOT_ANALYZER_BASE_URL"],
        ),
        (
            {
                "SMOLTBOT_ANALYZER_BACKEND": "hybrid",
                "SMOLTBOT_ANALYZER_BASE_URL": "ftp://x",
                "SMOLTBOT_ANALYZER_API_KEY": KEY,
            },
            ["SMOLTBOT_ANALYZER_BASE_URL"],
        ),
    ],
)
def test_settings_errors_name_the_variable_and_never_the_key(
    env: dict[str, str], names: list[str]
) -> None:
    with pytest.raises(SettingsError) as caught:
        load(**env)
    assert sorted(caught.value.problems) == sorted(names)
    assert KEY not in str(caught.value)
    assert "8787" not in names or "gateway" in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8787",
        "http://smoltbot-gateway:8787/v1",
        "https://llm.example.com/openai/v1",
        "https://llm.example.com/gemini",
        "https://llm.example.com/agent/bot/anthropic",
    ],
)
def test_a_base_url_pointing_at_the_gateway_is_refused(url: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load(
            SMOLTBOT_ANALYZER_BACKEND="openai",
            SMOLTBOT_ANALYZER_BASE_URL=url,
            SMOLTBOT_ANALYZER_MODEL="m",
        )
    assert "smoltbot gateway" in caught.value.problems["SMOLTBOT_ANALYZER_BASE_URL"]
    with pytest.raises(ValueError, match="SMOLTBOT_ANALYZER_BASE_URL"):
        make_analyzer("openai", base_url=url, model="m")


def test_anthropic_api_key_is_the_alias_of_the_anthropic_backend() -> None:
    settings = load(SMOLTBOT_ANALYZER_BACKEND="anthropic", ANTHROPIC_API_KEY=KEY)
    assert settings.analyzer_key == KEY
    assert KEY not in repr(settings)
    own = load(
        SMOLTBOT_ANALYZER_BACKEND="anthropic",
        ANTHROPIC_API_KEY="other",
        SMOLTBOT_ANALYZER_API_KEY=KEY,
    )
    assert own.analyzer_key == KEY  # the smoltbot variable wins


async def test_the_worker_builds_the_configured_analyzer() -> None:
    settings = load(
        SMOLTBOT_ANALYZER_BACKEND="anthropic",
        ANTHROPIC_API_KEY=KEY,
        SMOLTBOT_ANALYZER_TIMEOUT_MS="3000",
    )
    analyzer = build_analyzer(settings)
    try:
        assert isinstance(analyzer, HttpAnalyzer)
        assert analyzer.backend == "anthropic"
        assert analyzer.model == "claude-haiku-4-5-20251001"
        assert analyzer.url == "https://api.anthropic.com/v1/messages"
    finally:
        await aclose_analyzer(analyzer)
    local = build_analyzer(
        load(
            SMOLTBOT_ANALYZER_BACKEND="openai",
            SMOLTBOT_ANALYZER_BASE_URL="http://ollama:11434/v1/",
            SMOLTBOT_ANALYZER_MODEL="llama3.1",
        )
    )
    try:
        assert isinstance(local, HttpAnalyzer)
        assert local.url == "http://ollama:11434/v1/chat/completions"
    finally:
        await aclose_analyzer(local)


# ---------------------------------------------------------------------------------------------
# The process


async def test_the_verifier_process_with_the_openai_backend_flags_a_violation(
    prefix: str, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeAnalysis(mode="boundary").in_thread() as fake:
        monkeypatch.setenv("SMOLTBOT_ANALYZER_BACKEND", "openai")
        monkeypatch.setenv("SMOLTBOT_ANALYZER_BASE_URL", f"{fake.url}/v1")
        monkeypatch.setenv("SMOLTBOT_ANALYZER_MODEL", "fake-model")
        monkeypatch.setenv("SMOLTBOT_ANALYZER_API_KEY", KEY)
        monkeypatch.setenv("LOG_LEVEL", "debug")
        fake.script("error")  # one failed call first: the failure is logged, the key is not
        failed = trace_event("0190f0e0-0000-7000-8000-0000000000c0")
        flagged = trace_event("0190f0e0-0000-7000-8000-0000000000c1")
        for event in (failed, flagged):
            await redis.xadd(stream_key(prefix, "traces"), to_fields(event))  # type: ignore[arg-type]
        async with worker_process("verifier", prefix=prefix, consumer_name="v-proc") as worker:
            entries = await wait_for_entries(redis, stream_key(prefix, "verdicts"), 2)
    assert worker.returncode == 0, worker.output[-2000:]
    assert KEY not in worker.output
    verdicts = {
        v.meta.exchange_id: v for _, f in entries if isinstance(v := decode_fields(f), VerdictV1)
    }
    first = verdicts[failed.meta.exchange_id].checkpoint
    assert first is not None
    assert first.synthetic_reason == "analysis_failed"
    verdict = verdicts[flagged.meta.exchange_id]
    assert verdict.checkpoint is not None
    assert verdict.checkpoint.verdict == "boundary_violation"
    assert not verdict.checkpoint.synthetic
    assert [c.category for c in verdict.checkpoint.concerns] == ["prompt_injection"]
    assert len(fake.calls) == 2
    call = fake.calls[-1]
    assert call.path == "/v1/chat/completions"
    assert call.headers["authorization"] == f"Bearer {KEY}"
    assert json.dumps(call.body).count(LONG_THINKING) == 1
