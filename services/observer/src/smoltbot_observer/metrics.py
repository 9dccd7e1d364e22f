"""Observer metrics (never labelled by agent: unbounded cardinality)."""

from __future__ import annotations

from smoltbot_metrics import Counter, Gauge, Histogram

EXCHANGES = Counter(
    "smoltbot_observer_exchanges_total",
    "Exchanges observed, by outcome (trace = an AP-Trace was built; no_trace = empty trace).",
    ["outcome"],
)
PARSE_ISSUES = Counter(
    "smoltbot_observer_parse_issues_total",
    "Problems met while parsing response bodies (corrupt gzip, truncated stream...).",
    ["issue"],
)
DEFAULT_CARDS = Counter(
    "smoltbot_observer_default_card_total",
    "Exchanges analysed against the default card because the agent had no stored card.",
)
DECISION_ANALYSES = Counter(
    "smoltbot_observer_decision_analyses_total",
    "Decision analyses of exchanges with an AP-Trace, by the backend that served them (rules, "
    "anthropic, openai; the priority lane is always rules) and outcome: ok, passthrough (nothing "
    "to analyse, no call), or why the fallback analysis was used (timeout, http_error, invalid, "
    "circuit_open, self_loop, error).",
    ["backend", "outcome"],
)
DECISION_SECONDS = Histogram(
    "smoltbot_observer_decision_seconds",
    "Duration of one decision-analysis call of an LLM backend, whatever its outcome; "
    "circuit_open refusals are not timed.",
    ["backend"],
    buckets=(0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0),
)
DECISION_CIRCUIT_OPEN = Gauge(
    "smoltbot_observer_decision_circuit_open",
    "1 while the decision backend's circuit breaker is open (analyses fall back at once), else 0.",
    ["backend"],
)
DECISION_OUTCOMES = (
    "ok",
    "passthrough",
    "timeout",
    "http_error",
    "invalid",
    "circuit_open",
    "self_loop",
    "error",
)


class DecisionMetrics:
    """The ``AnalysisHooks`` of the decision backend's chat client, as metrics."""

    def call(self, backend: str, outcome: str, seconds: float) -> None:
        if outcome != "circuit_open":
            DECISION_SECONDS.labels(backend).observe(seconds)

    def circuit(self, backend: str, is_open: bool) -> None:
        DECISION_CIRCUIT_OPEN.labels(backend).set(1 if is_open else 0)


def zero_decision_counters(backend: str) -> None:
    """Export every (backend, outcome) series at 0 from the start (alerts see the first one)."""
    for outcome in DECISION_OUTCOMES:
        DECISION_ANALYSES.labels(backend, outcome)
    DECISION_ANALYSES.labels("rules", "ok")
    DECISION_ANALYSES.labels("rules", "passthrough")
