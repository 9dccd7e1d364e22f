"""The gateway's metric catalogue: every metric it exports, created once at import.

Names start with ``smoltbot_`` except the three the reference dashboards read
(``gateway_requests_total``, ``gateway_request_duration_seconds``, ``gateway_overhead_seconds``).
Labels never include agent ids, so their sets stay bounded.
"""

from __future__ import annotations

from smoltbot_metrics import FAST_BUCKETS, Counter, Histogram

REQUESTS = Counter(
    "gateway_requests_total",
    "Provider calls answered by the gateway. provider: the path's provider (anthropic, openai, "
    "gemini); status: the HTTP status the client got, 499 when the client went away first.",
    ["provider", "status"],
)
REQUEST_DURATION = Histogram(
    "gateway_request_duration_seconds",
    "Wall time from request start to the last byte sent to the client. "
    "provider: the path's provider (anthropic, openai, gemini).",
    ["provider"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
OVERHEAD = Histogram(
    "gateway_overhead_seconds",
    "Gateway time on top of the upstream: total minus upstream time (for streams: time to "
    "first byte minus upstream time to first byte). provider: the path's provider (anthropic, "
    "openai, gemini); streamed: true for a streamed response, false otherwise.",
    ["provider", "streamed"],
    buckets=FAST_BUCKETS,
)
EVENTS_DROPPED = Counter(
    "smoltbot_gateway_events_dropped_total",
    "Events the gateway could not hand to the publisher because its buffer was full. "
    "stream: the stream the event was meant for (exchanges, agents).",
    ["stream"],
)
CLIENT_DISCONNECTS = Counter(
    "smoltbot_gateway_client_disconnects_total",
    "Calls cut short because the client went away before the last byte. "
    "provider: the path's provider (anthropic, openai, gemini).",
    ["provider"],
)
CONFIG_FALLBACKS = Counter(
    "smoltbot_gateway_config_fallback_total",
    "Agent config reads answered from memory (last known config, else the defaults) instead of "
    "Redis. reason: error (Redis failed or timed out), backoff (Redis is skipped for a while "
    "after a failure), invalid (the stored config could not be decoded).",
    ["reason"],
)
REFUSALS = Counter(
    "smoltbot_gateway_refusals_total",
    "Provider calls the gateway answered itself, before anything went upstream. reason: "
    "missing_key, bad_path, too_large (body over the cap), body_timeout (body not received in "
    "time), over_budget (request bodies in flight at the gateway's budget: 503 + Retry-After), "
    "contained (agent paused or killed).",
    ["reason"],
)
UNKNOWN_KEYS_REJECTED = Counter(
    "smoltbot_gateway_unknown_keys_rejected_total",
    "Calls the provider answered 401 or 403 for a key no accepted call had used yet: no agent "
    "is provisioned and no exchange recorded for them. provider: the path's provider.",
    ["provider"],
)
