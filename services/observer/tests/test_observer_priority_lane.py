"""The priority lane (architecture §3.3): an exchange a gateway waits on is passed through with
extraction and the deterministic analysis only — never the decision backend of the normal lane,
which may be an LLM call — and its trace goes to ``traces:priority`` carrying ``reply_to``."""

from __future__ import annotations

from smoltbot_bus import Delivery
from smoltbot_config import load_settings
from smoltbot_contracts import TraceV1
from smoltbot_observer.analysis import Analysis, AnalysisInput, JSONObject, RulesDecisionAnalyzer
from smoltbot_observer.cards import CardCache
from smoltbot_observer.handlers import ObserverHandler
from smoltbot_observer.settings import ObserverSettings
from smoltbot_observer.worker import build_handler

from services.observer.tests.observer_fixtures import anthropic_json, make_exchange

BODY = anthropic_json(
    {"type": "thinking", "thinking": "Look up the forecast, then answer."},
    {"type": "text", "text": "It is sunny."},
    {"type": "tool_use", "id": "t", "name": "get_weather", "input": {"location": "SF"}},
)


class NoCards:
    async def fetch(self, agent_id: str) -> bytes | None:
        return None


class SlowBackend:
    """Stands in for a decision LLM: records every call."""

    def __init__(self) -> None:
        self.calls: list[AnalysisInput] = []

    async def analyze(self, inputs: AnalysisInput, card: JSONObject) -> Analysis:
        self.calls.append(inputs)
        return await RulesDecisionAnalyzer().analyze(inputs, card)


async def test_priority_exchanges_skip_the_decision_backend() -> None:
    backend = SlowBackend()
    handler = ObserverHandler(CardCache(NoCards()), analyzer=backend)
    waiting = make_exchange(BODY, exchange_id="ex-wait", reply_to="replies:gw-1")
    normal = make_exchange(BODY, exchange_id="ex-normal")
    outputs = await handler(
        [
            Delivery(stream="exchanges:priority", entry_id="1-0", event=waiting),
            Delivery(stream="exchanges", entry_id="1-0", event=normal),
        ]
    )
    assert [o.stream for o in outputs] == ["traces:priority", "traces"]
    assert len(backend.calls) == 1  # the normal lane only
    priority = outputs[0].event
    assert isinstance(priority, TraceV1)
    assert priority.reply_to == "replies:gw-1"
    # extraction happened: the verifier gets the thinking it analyses, and an AP-Trace
    assert priority.thinking == "Look up the forecast, then answer."
    assert priority.extraction_confidence == 1.0
    assert priority.trace is not None
    assert priority.trace.action.name == "get_weather"


def test_the_service_wires_a_deterministic_fast_lane() -> None:
    handler = build_handler(None, load_settings(ObserverSettings, {}))  # type: ignore[arg-type]
    assert isinstance(handler._fast_analyzer, RulesDecisionAnalyzer)  # noqa: SLF001
