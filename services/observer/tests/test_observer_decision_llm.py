"""The LLM decision analysis (protocols.md §2.4) against the fake analysis server on loopback:
the prompt, what leaves the network (tool input keys, never values), each scripted answer ->
the expected Analysis or the fallback, content flags -> escalation in the built trace, the
priority lane and passthrough never calling, the breaker, the batch deadline, the settings and
the ``python -m smoltbot_observer`` process."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from smoltbot_analysis import ChatError
from smoltbot_bus import Delivery
from smoltbot_config import SettingsError, load_settings
from smoltbot_contracts import CardRecord, ExchangeV1, TraceV1
from smoltbot_contracts.codec import decode_fields, to_fields
from smoltbot_contracts.ids import uuid7
from smoltbot_contracts.streams import card_key, stream_key
from smoltbot_observer.analysis import (
    ANALYZED_ID,
    UNAVAILABLE_REASONING,
    Analysis,
    AnalysisInput,
    RulesDecisionAnalyzer,
)
from smoltbot_observer.cards import CardCache
from smoltbot_observer.decision_llm import (
    LLMDecisionAnalyzer,
    parse_answer,
    system_prompt,
    user_message,
)
from smoltbot_observer.handlers import ObserverHandler
from smoltbot_observer.metrics import DecisionMetrics
from smoltbot_observer.parsing import ToolCall
from smoltbot_observer.settings import ObserverSettings
from smoltbot_observer.worker import build_analyzer
from smoltbot_testing.fake_analysis import DECISIONS, FakeAnalysis
from smoltbot_testing.keys import wait_for_entries
from smoltbot_testing.procs import worker_process

from services.observer.tests.observer_fixtures import AGENT, anthropic_json, make_exchange

KEY = "sk-decision-SECRET-0123456789"
BACKENDS = ("anthropic", "openai")
SECRET_VALUE = "4111-1111-SECRET-CARD"
THINKING = "The user wants the weather. I could call get_weather or answer from memory."
RESPONSE = "It will be sunny in San Francisco tomorrow."
CARD: dict[str, Any] = {
    "card_id": "ac-decide",
    "values": {
        "declared": ["transparency", "accuracy"],
        "definitions": {
            "transparency": {"name": "Transparency", "description": "Say what you did and why."},
            "accuracy": {"description": "Prefer checked facts over guesses."},
        },
    },
    "autonomy_envelope": {
        "bounded_actions": ["get_weather"],
        "escalation_triggers": [
            {"condition": "tokens_out > 100000", "action": "escalate", "reason": "Very long"},
            {
                "condition": "external_payment",
                "action": "escalate",
                "reason": "Payments need a human",
            },
        ],
        "forbidden_actions": [],
    },
}
PLAIN_CARD: dict[str, Any] = {"card_id": "ac-plain", "values": {"declared": []}}
INPUTS = AnalysisInput(
    thinking=THINKING,
    tool_calls=(ToolCall(name="get_weather", input={"location": SECRET_VALUE, "units": "c"}),),
    user_query="Weather in SF tomorrow?",
    response_text=RESPONSE,
)
BODY = anthropic_json(
    {"type": "thinking", "thinking": THINKING},
    {"type": "text", "text": RESPONSE},
    {"type": "tool_use", "id": "t", "name": "get_weather", "input": {"location": SECRET_VALUE}},
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Cards:
    def __init__(self, card: dict[str, Any]) -> None:
        self._raw = msgspec.msgpack.encode(CardRecord(card_id=str(card["card_id"]), card=card))

    async def fetch(self, agent_id: str) -> bytes | None:
        return self._raw


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnalysis]:
    server = FakeAnalysis()
    server.slow_s = 2.0
    async with server:
        yield server


def analyzer_for(
    backend: str, fake: FakeAnalysis, *, timeout_s: float = 1.0, threshold: int = 5
) -> LLMDecisionAnalyzer:
    assert backend in BACKENDS
    return LLMDecisionAnalyzer(
        "anthropic" if backend == "anthropic" else "openai",
        base_url=fake.url,
        api_key=KEY,
        model="fake-model",
        timeout_s=timeout_s,
        breaker_threshold=threshold,
        breaker_cooldown_s=30.0,
        hooks=DecisionMetrics(),
        clock=Clock(),
    )


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def sent_text(fake: FakeAnalysis) -> str:
    return "\n".join(call.raw.decode() for call in fake.calls)


def delivery(exchange: ExchangeV1) -> Delivery:
    stream = "exchanges:priority" if exchange.reply_to else "exchanges"
    return Delivery(stream=stream, entry_id="1-0", event=exchange)


def traces(outputs: list[Any]) -> list[TraceV1]:
    events = [output.event for output in outputs]
    assert all(isinstance(event, TraceV1) for event in events)
    return events


# ---------------------------------------------------------------------------------------------
# The request


def test_the_system_prompt_is_built_from_the_card() -> None:
    prompt = system_prompt(CARD)
    assert "picked only from this list" in prompt
    assert '"values_applied": ["transparency"]' in prompt  # the example's, from the card
    assert "- transparency: Say what you did and why." in prompt
    assert "- accuracy: Prefer checked facts over guesses." in prompt
    assert '"content_flags"' in prompt
    assert "- external_payment: Payments need a human" in prompt
    assert "tokens_out > 100000" not in prompt  # not a bare identifier: no flag asked for
    assert "edit_config" in prompt  # the worked example
    plain = system_prompt(PLAIN_CARD)
    assert "snake_case names" in plain
    assert "picked only from" not in plain
    assert '"values_applied": ["reliability"]' in plain
    assert "content_flags" not in plain


def test_the_user_message_has_tagged_sections_and_tool_keys_only() -> None:
    long = msgspec.structs.replace(
        INPUTS, thinking="T" * 5000, response_text="R" * 2000, user_query="Q" * 900
    )
    message = user_message(long)
    assert message.startswith("<user_query>\n" + "Q" * 500 + "\n</user_query>")
    assert "<reasoning>\n" + "T" * 3000 + "\n</reasoning>" in message
    assert "<tools_used>\n- get_weather (input keys: location, units)\n</tools_used>" in message
    assert "<response_excerpt>\n" + "R" * 1000 + "\n</response_excerpt>" in message
    assert SECRET_VALUE not in message
    only_tools = AnalysisInput(tool_calls=(ToolCall(name="search"),))
    assert user_message(only_tools) == "<tools_used>\n- search\n</tools_used>"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_request_shape_and_no_tool_input_values(fake: FakeAnalysis, backend: str) -> None:
    analyzer = analyzer_for(backend, fake)
    try:
        analysis = await analyzer.analyze(INPUTS, CARD)
    finally:
        await analyzer.aclose()
    assert analysis.outcome == "ok"
    [call] = fake.calls
    assert call.kind == "decision"
    assert call.body["max_tokens"] == 512
    assert call.body["model"] == "fake-model"
    if backend == "anthropic":
        assert call.path == "/v1/messages"
        assert call.headers["x-api-key"] == KEY
        assert call.headers["anthropic-version"] == "2023-06-01"
        [block] = call.body["system"]
        assert block["type"] == "text"
        assert block["cache_control"] == {"type": "ephemeral"}
        assert block["text"] == system_prompt(CARD)
        assert call.body["messages"] == [{"role": "user", "content": user_message(INPUTS)}]
    else:
        assert call.path == "/v1/chat/completions"
        assert call.headers["authorization"] == f"Bearer {KEY}"
        assert call.body["temperature"] == 0
        assert call.body["messages"] == [
            {"role": "system", "content": system_prompt(CARD)},
            {"role": "user", "content": user_message(INPUTS)},
        ]
    sent = sent_text(fake)
    assert "location" in sent
    assert SECRET_VALUE not in sent  # tool input values never leave
    assert '"c"' not in sent


# ---------------------------------------------------------------------------------------------
# Answers -> analyses


def _options(analysis: Analysis) -> list[str]:
    return [option.id for option in analysis.alternatives]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("mode", "values", "flags"),
    [
        ("decision", ("transparency", "accuracy"), {}),
        ("commas", ("transparency", "accuracy"), {}),
        ("undeclared", ("transparency", "accuracy"), {}),
        ("near_selected", ("transparency", "accuracy"), {}),
        ("flagged", ("transparency", "accuracy"), {"external_payment": True}),
    ],
)
async def test_a_usable_answer_becomes_the_analysis(
    fake: FakeAnalysis, backend: str, mode: str, values: tuple[str, ...], flags: dict[str, bool]
) -> None:
    fake.decision_mode = mode
    analyzer = analyzer_for(backend, fake)
    try:
        analysis = await analyzer.analyze(INPUTS, CARD)
    finally:
        await analyzer.aclose()
    assert analysis.outcome == "ok"
    assert analysis.analyzer == backend
    assert _options(analysis) == ["call_weather_api", "answer_from_memory"]
    assert analysis.selected == "call_weather_api"
    assert analysis.reasoning == DECISIONS["decision"]["reasoning"]
    assert analysis.values_applied == values
    assert analysis.content_flags == flags


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("mode", "outcome"),
    [
        ("bad_selected", "invalid"),
        ("malformed", "invalid"),
        ("error", "http_error"),
        ("slow", "timeout"),
        ("loop", "self_loop"),
    ],
)
async def test_an_unusable_answer_or_a_failure_gives_the_fallback(
    fake: FakeAnalysis,
    backend: str,
    mode: str,
    outcome: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.decision_mode = mode
    analyzer = analyzer_for(backend, fake, timeout_s=0.3)
    caplog.set_level(logging.DEBUG)
    try:
        analysis = await analyzer.analyze(INPUTS, CARD)
        no_tools = await analyzer.analyze(msgspec.structs.replace(INPUTS, tool_calls=()), CARD)
    finally:
        await analyzer.aclose()
    assert (analysis.outcome, analysis.analyzer) == (outcome, backend)
    assert _options(analysis) == [ANALYZED_ID]
    assert analysis.selected == ANALYZED_ID
    assert analysis.reasoning == "Used tools: get_weather"
    assert analysis.values_applied == ("transparency",)
    assert analysis.content_flags == {}
    assert no_tools.reasoning == UNAVAILABLE_REASONING
    assert RESPONSE not in no_tools.reasoning
    ours = "\n".join(
        f"{r.getMessage()} {r.__dict__}" for r in caplog.records if r.name.startswith("smoltbot")
    )
    assert "decision analysis call failed" in ours
    assert KEY not in ours
    assert fake.url not in ours


def test_the_fallback_values_follow_the_card() -> None:
    card = {"values": {"declared": ["accuracy"]}}
    with pytest.raises(ChatError):
        parse_answer("no json", card, analyzer="openai")
    parsed = parse_answer(
        '{"alternatives": [{"id": "a", "description": "A",},], "selected": "a", '
        '"reasoning": "r", "values_applied": ["accuracy", "made_up",],}',
        card,
        analyzer="openai",
    )
    assert parsed.values_applied == ("accuracy",)
    assert (
        parse_answer(
            '{"alternatives": [{"id": "a"}], "selected": "a", "reasoning": "r", "values_applied": '
            '["made_up"]}',
            card,
            analyzer="openai",
        ).values_applied
        == ()
    )


@pytest.mark.parametrize(
    "answer",
    [
        '{"selected": "a", "reasoning": "r"}',
        '{"alternatives": [{"id": "a"}], "reasoning": "r"}',
        '{"alternatives": [{"id": "a"}], "selected": "a"}',
        '{"alternatives": [], "selected": "a", "reasoning": "r"}',
        '{"alternatives": [{"id": "a"}], "selected": "b", "reasoning": "r"}',
        "[1, 2]",
        "{not json}",
    ],
)
def test_an_answer_without_the_required_fields_is_invalid(answer: str) -> None:
    with pytest.raises(ChatError) as caught:
        parse_answer(answer, PLAIN_CARD, analyzer="anthropic")
    assert caught.value.outcome == "invalid"


async def test_passthrough_never_calls_the_server(fake: FakeAnalysis) -> None:
    analyzer = analyzer_for("openai", fake)
    try:
        analysis = await analyzer.analyze(AnalysisInput(response_text=RESPONSE), CARD)
    finally:
        await analyzer.aclose()
    assert fake.calls == []
    assert (analysis.selected, analysis.outcome, analysis.analyzer) == (
        "passthrough",
        "passthrough",
        "openai",
    )


# ---------------------------------------------------------------------------------------------
# Through the handler


async def test_content_flags_drive_the_escalation_of_the_trace(fake: FakeAnalysis) -> None:
    fake.decision_mode = "flagged"
    analyzer = analyzer_for("anthropic", fake)
    handler = ObserverHandler(CardCache(Cards(CARD)), analyzer=analyzer)
    try:
        [output] = await handler([delivery(make_exchange(BODY, user_query="Pay the bill?"))])
    finally:
        await analyzer.aclose()
    [event] = traces([output])
    assert event.trace is not None
    escalation = event.trace.escalation
    assert escalation is not None
    assert (escalation.required, escalation.reason) == (True, "Payments need a human")
    metadata = event.trace.context.metadata if event.trace.context else {}
    assert metadata["external_payment"] is True
    assert "not_a_trigger" not in metadata
    assert metadata["analyzer"] == "anthropic"
    assert "analysis_fallback" not in metadata
    assert event.trace.decision.selected == "call_weather_api"
    assert event.trace.decision.values_applied == ["transparency", "accuracy"]


async def test_priority_entries_never_call_the_server(fake: FakeAnalysis) -> None:
    analyzer = analyzer_for("openai", fake)
    handler = ObserverHandler(
        CardCache(Cards(CARD)), analyzer=analyzer, fast_analyzer=RulesDecisionAnalyzer()
    )
    before = sample("smoltbot_observer_decision_analyses_total", backend="rules", outcome="ok")
    waiting = make_exchange(BODY, exchange_id="ex-wait", reply_to="replies:gw-1", user_query="q")
    normal = make_exchange(BODY, exchange_id="ex-normal", user_query="q")
    try:
        outputs = await handler([delivery(waiting), delivery(normal)])
    finally:
        await analyzer.aclose()
    assert [o.stream for o in outputs] == ["traces:priority", "traces"]
    assert len(fake.calls) == 1
    priority, traced = traces(outputs)
    assert priority.trace is not None
    assert priority.trace.context is not None
    assert priority.trace.context.metadata["analyzer"] == "rules"
    assert traced.trace is not None
    assert traced.trace.decision.selected == "call_weather_api"
    after = sample("smoltbot_observer_decision_analyses_total", backend="rules", outcome="ok")
    assert after == before + 1


async def test_the_circuit_opens_and_traces_keep_coming_with_the_fallback(
    fake: FakeAnalysis,
) -> None:
    fake.decision_mode = "error"
    analyzer = analyzer_for("openai", fake, threshold=5)
    handler = ObserverHandler(CardCache(Cards(CARD)), analyzer=analyzer, concurrency=1)
    refused = sample(
        "smoltbot_observer_decision_analyses_total", backend="openai", outcome="circuit_open"
    )
    batch = [delivery(make_exchange(BODY, exchange_id=f"ex-{i}", user_query="q")) for i in range(8)]
    try:
        events = traces(await handler(batch))
        assert analyzer.circuit_open
        assert sample("smoltbot_observer_decision_circuit_open", backend="openai") == 1
    finally:
        await analyzer.aclose()
    assert len(fake.calls) == 5
    fallbacks = []
    for event in events:
        assert event.trace is not None
        assert event.trace.decision.selected == ANALYZED_ID
        assert event.trace.context is not None
        fallbacks.append(event.trace.context.metadata["analysis_fallback"])
    assert fallbacks == ["http_error"] * 5 + ["circuit_open"] * 3
    assert (
        sample(
            "smoltbot_observer_decision_analyses_total", backend="openai", outcome="circuit_open"
        )
        == refused + 3
    )


async def test_a_slow_llm_holds_a_batch_for_one_decision_timeout_at_most(
    fake: FakeAnalysis,
) -> None:
    fake.decision_mode = "slow"
    analyzer = analyzer_for("anthropic", fake, timeout_s=10.0, threshold=100)
    handler = ObserverHandler(
        CardCache(Cards(CARD)), analyzer=analyzer, decision_timeout_s=0.3, concurrency=2
    )
    batch = [delivery(make_exchange(BODY, exchange_id=f"ex-{i}", user_query="q")) for i in range(6)]
    started = time.perf_counter()
    try:
        events = traces(await handler(batch))
    finally:
        await analyzer.aclose()
    assert time.perf_counter() - started < 1.5
    assert len(fake.calls) == 2  # the rest never got past the concurrency limit in time
    for event in events:
        assert event.trace is not None
        assert event.trace.context is not None
        assert event.trace.context.metadata["analysis_fallback"] == "timeout"


async def test_analyses_of_a_batch_run_concurrently(fake: FakeAnalysis) -> None:
    fake.decision_mode = "slow"
    fake.slow_s = 0.3
    fake.script_decision("slow", "slow", "slow", "slow")
    analyzer = analyzer_for("openai", fake, timeout_s=5.0)
    handler = ObserverHandler(CardCache(Cards(CARD)), analyzer=analyzer, concurrency=4)
    batch = [delivery(make_exchange(BODY, exchange_id=f"ex-{i}", user_query="q")) for i in range(4)]
    started = time.perf_counter()
    try:
        events = traces(await handler(batch))
    finally:
        await analyzer.aclose()
    assert time.perf_counter() - started < 1.0  # not 4 x 0.3 s
    assert [e.trace.decision.selected for e in events if e.trace] == ["call_weather_api"] * 4


# ---------------------------------------------------------------------------------------------
# Settings and wiring


def test_the_observer_reads_the_analyzer_variables() -> None:
    settings = load_settings(
        ObserverSettings,
        {
            "SMOLTBOT_ANALYZER_BACKEND": "openai",
            "SMOLTBOT_ANALYZER_BASE_URL": "http://vllm:8000/v1",
            "SMOLTBOT_ANALYZER_MODEL": "qwen",
            "SMOLTBOT_ANALYZER_API_KEY": KEY,
            "SMOLTBOT_OBSERVER_DECISION_TIMEOUT_MS": "5000",
        },
    )
    assert (settings.decision_backend, settings.decision_timeout_ms) == ("openai", 5000)
    assert KEY not in repr(settings)
    assert load_settings(ObserverSettings, {}).decision_timeout_ms == 15_000
    alias = load_settings(
        ObserverSettings,
        {"SMOLTBOT_ANALYZER_BACKEND": "anthropic", "ANTHROPIC_API_KEY": KEY},
    )
    assert alias.analyzer_key == KEY
    # hybrid has no decision endpoint: the observer keeps the rules and asks for nothing
    assert load_settings(
        ObserverSettings, {"SMOLTBOT_ANALYZER_BACKEND": "hybrid"}
    ).decision_backend == ("rules")


@pytest.mark.parametrize(
    ("env", "names"),
    [
        (
            {"SMOLTBOT_ANALYZER_BACKEND": "openai"},
            {"SMOLTBOT_ANALYZER_BASE_URL", "SMOLTBOT_ANALYZER_MODEL"},
        ),
        ({"SMOLTBOT_ANALYZER_BACKEND": "anthropic"}, {"SMOLTBOT_ANALYZER_API_KEY"}),
        (
            {
                "SMOLTBOT_ANALYZER_BACKEND": "openai",
                "SMOLTBOT_ANALYZER_BASE_URL": "http://localhost:8787/openai",
                "SMOLTBOT_ANALYZER_MODEL": "m",
            },
            {"SMOLTBOT_ANALYZER_BASE_URL"},
        ),
        (
            {
                "SMOLTBOT_ANALYZER_BACKEND": "anthropic",
                "SMOLTBOT_ANALYZER_API_KEY": KEY,
                "SMOLTBOT_OBSERVER_DECISION_TIMEOUT_MS": "30000",
            },
            {"SMOLTBOT_BUS_MIN_IDLE_MS"},
        ),
        ({"SMOLTBOT_OBSERVER_DECISION_TIMEOUT_MS": "0"}, {"SMOLTBOT_OBSERVER_DECISION_TIMEOUT_MS"}),
    ],
)
def test_settings_errors_name_the_variable_and_never_the_key(
    env: dict[str, str], names: set[str]
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(ObserverSettings, env)
    assert set(caught.value.problems) == names
    assert KEY not in str(caught.value)


async def test_the_worker_builds_the_configured_analyzer() -> None:
    rules = build_analyzer(load_settings(ObserverSettings, {}))
    assert isinstance(rules, RulesDecisionAnalyzer)
    hybrid = load_settings(
        ObserverSettings,
        {
            "SMOLTBOT_ANALYZER_BACKEND": "hybrid",
            "SMOLTBOT_ANALYZER_BASE_URL": "https://analyze.example.com",
            "SMOLTBOT_ANALYZER_API_KEY": KEY,
        },
    )
    assert isinstance(build_analyzer(hybrid), RulesDecisionAnalyzer)
    anthropic = build_analyzer(
        load_settings(
            ObserverSettings, {"SMOLTBOT_ANALYZER_BACKEND": "anthropic", "ANTHROPIC_API_KEY": KEY}
        )
    )
    assert isinstance(anthropic, LLMDecisionAnalyzer)
    try:
        assert anthropic.url == "https://api.anthropic.com/v1/messages"
        assert anthropic.model == "claude-haiku-4-5-20251001"
        assert KEY not in repr(anthropic)
    finally:
        await anthropic.aclose()
    assert sample("smoltbot_observer_decision_circuit_open", backend="anthropic") == 0
    assert (
        REGISTRY.get_sample_value(
            "smoltbot_observer_decision_analyses_total",
            {"backend": "anthropic", "outcome": "self_loop"},
        )
        is not None
    )


# ---------------------------------------------------------------------------------------------
# The process


async def test_the_observer_process_with_the_openai_backend(
    prefix: str, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = CardRecord(card_id="ac-decide", card=CARD)
    await redis.set(card_key(prefix, AGENT), msgspec.msgpack.encode(card))
    with FakeAnalysis().in_thread() as fake:
        fake.decision_mode = "flagged"
        fake.script_decision("error")  # one failed call first: logged, without the key
        monkeypatch.setenv("SMOLTBOT_ANALYZER_BACKEND", "openai")
        monkeypatch.setenv("SMOLTBOT_ANALYZER_BASE_URL", f"{fake.url}/v1")
        monkeypatch.setenv("SMOLTBOT_ANALYZER_MODEL", "fake-model")
        monkeypatch.setenv("SMOLTBOT_ANALYZER_API_KEY", KEY)
        monkeypatch.setenv("LOG_LEVEL", "debug")
        failed = make_exchange(BODY, exchange_id=uuid7(), user_query="Weather?")
        answered = make_exchange(BODY, exchange_id=uuid7(), user_query="Weather?")
        for exchange in (failed, answered):
            await redis.xadd(stream_key(prefix, "exchanges"), to_fields(exchange))  # type: ignore[arg-type]
        async with worker_process("observer", prefix=prefix, consumer_name="o-proc") as worker:
            entries = await wait_for_entries(redis, stream_key(prefix, "traces"), 2)
        calls = fake.decision_calls()
    assert worker.returncode == 0, worker.output[-2000:]
    assert KEY not in worker.output
    events = {
        e.meta.exchange_id: e for _, f in entries if isinstance(e := decode_fields(f), TraceV1)
    }
    fell_back = events[failed.event_id].trace
    assert fell_back is not None
    assert fell_back.decision.selected == ANALYZED_ID
    assert fell_back.context is not None
    assert fell_back.context.metadata["analysis_fallback"] == "http_error"
    trace = events[answered.event_id].trace
    assert trace is not None
    assert trace.decision.selected == "call_weather_api"
    assert [a.option_id for a in trace.decision.alternatives_considered] == [
        "call_weather_api",
        "answer_from_memory",
    ]
    assert trace.decision.selection_reasoning == DECISIONS["decision"]["reasoning"]
    assert trace.escalation is not None
    assert trace.escalation.required
    assert len(calls) == 2
    assert calls[-1].path == "/v1/chat/completions"
    assert calls[-1].headers["authorization"] == f"Bearer {KEY}"
    assert SECRET_VALUE not in json.dumps(calls[-1].body)
