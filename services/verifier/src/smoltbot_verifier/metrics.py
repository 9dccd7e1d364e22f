"""Verifier metric catalogue (never labelled by agent id)."""

from __future__ import annotations

from smoltbot_metrics import Counter, Gauge, Histogram

DEFAULT_CARDS = Counter(
    "smoltbot_verifier_default_card_total",
    "Traces checked against the default card because card:{agent} was missing or unreadable.",
    ["reason"],
)
VERDICTS = Counter(
    "smoltbot_verifier_verdicts_total",
    "verdict.v1 events produced, by AIP verdict (none = no checkpoint).",
    ["verdict"],
)
VERIFICATION_ERRORS = Counter(
    "smoltbot_verifier_verification_errors_total",
    "Traces the AAP SDK could not verify (recorded as a verification_error violation).",
)
ANALYSIS_FAILURES = Counter(
    "smoltbot_verifier_analysis_failures_total",
    "Conscience analyses that failed (timeout, backend error, invalid analysis JSON).",
    ["reason"],
)
GATE_DISAGREEMENTS = Counter(
    "smoltbot_verifier_gate_disagreements_total",
    "Checkpoints where the verdict gate overrode the analyzer's verdict.",
)
NUDGES_CREATED = Counter(
    "smoltbot_verifier_nudges_created_total",
    "Nudges written to nudges:{agent} for the agent's next call (boundary violations of agents "
    "in nudge mode, or streamed ones in enforce mode). mode: the agent's enforcement mode "
    "(nudge, enforce).",
    ["mode"],
)
NUDGES_SKIPPED = Counter(
    "smoltbot_verifier_nudges_skipped_total",
    "Boundary violations of nudge/enforce agents that made no new nudge. reason: strategy_off, "
    "sampled_out (sampling strategy), below_threshold (threshold strategy: the session has not "
    "had enough violations yet), too_old (the exchange is older than 4 hours: a replay), "
    "synthetic (no analysis behind the verdict), duplicate (already written: a redelivery).",
    ["reason"],
)
DRIFT_ALERTS = Counter(
    "smoltbot_verifier_drift_alerts_total",
    "Drift alerts decided (one per streak; a replay counts again but writes no new row). kind: "
    "aap (AP-Traces drifting from the card), aip (consecutive non-clear checkpoints in a session).",
    ["kind"],
)
CONTAINMENTS = Counter(
    "smoltbot_verifier_containments_total",
    "Auto-containment writes to cfg:{agent} after consecutive boundary violations. outcome: "
    "written (the agent was paused now), unchanged (already contained), already_applied (this "
    "streak's containment was applied before: a replay).",
    ["outcome"],
)
CONCERNS = Counter(
    "smoltbot_verifier_concerns_total",
    "Concerns in analysed (non-synthetic) checkpoints, by AIP concern category.",
    ["category"],
)
ANALYSIS_SECONDS = Histogram(
    "smoltbot_verifier_analysis_seconds",
    "Duration of one conscience-analysis call of an LLM backend (anthropic, openai, hybrid), "
    "whatever its outcome; circuit_open refusals are not timed.",
    ["backend"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0),
)
ANALYSIS_CALLS = Counter(
    "smoltbot_verifier_analysis_calls_total",
    "Conscience-analysis calls of an LLM backend, by outcome: ok, timeout, http_error (status "
    ">= 400 or no connection), invalid (no usable analysis JSON), circuit_open (refused while "
    "the breaker is open), self_loop (the base URL answered as this gateway).",
    ["backend", "outcome"],
)
ANALYSIS_CIRCUIT_OPEN = Gauge(
    "smoltbot_verifier_analysis_circuit_open",
    "1 while an LLM backend's circuit breaker is open (analyses fail at once), else 0.",
    ["backend"],
)


class AnalysisMetrics:
    """The ``AnalysisHooks`` of ``smoltbot_analysis``: what the LLM backends report, as metrics."""

    def call(self, backend: str, outcome: str, seconds: float) -> None:
        ANALYSIS_CALLS.labels(backend, outcome).inc()
        if outcome != "circuit_open":
            ANALYSIS_SECONDS.labels(backend).observe(seconds)

    def circuit(self, backend: str, is_open: bool) -> None:
        ANALYSIS_CIRCUIT_OPEN.labels(backend).set(1 if is_open else 0)


def zero_analysis_counters(backend: str, outcomes: tuple[str, ...]) -> None:
    """Export every (backend, outcome) series at 0 from the start (alerts see the first one)."""
    for outcome in outcomes:
        ANALYSIS_CALLS.labels(backend, outcome)
