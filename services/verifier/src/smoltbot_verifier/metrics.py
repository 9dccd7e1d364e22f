"""Verifier metric catalogue (never labelled by agent id)."""

from __future__ import annotations

from smoltbot_metrics import Counter

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
