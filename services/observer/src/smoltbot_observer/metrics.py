"""Observer metrics (never labelled by agent: unbounded cardinality)."""

from __future__ import annotations

from smoltbot_metrics import Counter

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
