"""The gateway's metric catalogue: every metric it exports, created once at import.

Names start with ``smoltbot_`` except the three the reference dashboards read
(``gateway_requests_total``, ``gateway_request_duration_seconds``, ``gateway_overhead_seconds``).
Labels never include agent ids, so their sets stay bounded.
"""

from __future__ import annotations

from smoltbot_metrics import FAST_BUCKETS, Counter, Gauge, Histogram

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
    "contained (agent paused or killed), licence (the gateway's licence is invalid: 403).",
    ["reason"],
)
LICENCE_STATE = Gauge(
    "smoltbot_gateway_licence_state",
    "1 for the gateway's current licence state, 0 for the others. state: valid, grace (expired "
    "or the validate URL unreachable, within 7 days of the last good validation), invalid "
    "(provider calls get 403 license_error), unlicensed (no MNEMOM_LICENSE_JWT).",
    ["state"],
)
UNKNOWN_KEYS_REJECTED = Counter(
    "smoltbot_gateway_unknown_keys_rejected_total",
    "Calls the provider answered 401 or 403 for a key no accepted call had used yet: no agent "
    "is provisioned and no exchange recorded for them. provider: the path's provider.",
    ["provider"],
)

# Waiting callers (architecture §3.3): enforce mode, or AIP_INLINE_VERDICT.
VERDICT_WAITS = Counter(
    "smoltbot_gateway_verdict_waits_total",
    "Calls that waited for their verdict, by how the wait ended. outcome: verdict (a verdict "
    "came), timeout (none within SMOLTBOT_GATEWAY_AIP_TIMEOUT_MS), error (the analysis failed, "
    "or the gateway was stopping), bus_unavailable (Redis down or the bus over budget: the "
    "exchange could not go to the priority lane).",
    ["outcome"],
)
VERDICT_WAIT_SECONDS = Histogram(
    "smoltbot_gateway_verdict_wait_seconds",
    "Time a call waited for its verdict, publishing included: the gateway's time on top of the "
    "upstream that gateway_overhead_seconds leaves out. outcome: as in "
    "smoltbot_gateway_verdict_waits_total.",
    ["outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
VERDICTS_WAITING = Gauge(
    "smoltbot_gateway_verdicts_waiting",
    "Calls waiting for their verdict right now.",
)
ENFORCEMENT_BLOCKS = Counter(
    "smoltbot_gateway_enforcement_blocks_total",
    "Answers replaced by a 403 integrity_violation in enforce mode. reason: boundary_violation "
    "(the verdict), fail_closed (no verdict and the failure policy is fail_closed).",
    ["reason"],
)
VERDICT_REPLIES = Counter(
    "smoltbot_gateway_verdict_replies_total",
    "Entries the reply reader took from this gateway's reply stream. outcome: matched (a call "
    "was waiting for it), unknown (nobody waits any more: it came after the timeout, or for an "
    "earlier process of the same instance name), invalid (not a readable verdict.v1).",
    ["outcome"],
)
REPLY_READER_ERRORS = Counter(
    "smoltbot_gateway_reply_reader_errors_total",
    "Failed reads of this gateway's reply stream (Redis errors); the reader backs off and "
    "resumes where it stopped.",
)

# Waves 1 and 3 at the door (injection.py, nudges.py).
INJECTIONS = Counter(
    "smoltbot_gateway_injections_total",
    "Request bodies the gateway changed before forwarding them, per wave. wave: thinking "
    "(wave 1: thinking or reasoning turned on), nudge (wave 3: pending nudges put into the "
    "system prompt); provider: the path's provider (anthropic, openai, gemini).",
    ["wave", "provider"],
)
NUDGES_DELIVERED = Counter(
    "smoltbot_gateway_nudges_delivered_total",
    "Nudges injected into a request (one request carries up to five). provider: the path's "
    "provider (anthropic, openai, gemini).",
    ["provider"],
)
NUDGES_EXPIRED = Counter(
    "smoltbot_gateway_nudges_expired_total",
    "Pending nudges the claim found older than 4 hours and marked expired instead of "
    "delivering them.",
)
NUDGES_RELEASED = Counter(
    "smoltbot_gateway_nudges_released_total",
    "Claimed nudges given back as pending because no upstream body carried them. reason: "
    "not_injected (the request could not take them: not a JSON object, an odd system field, "
    "or refused before forwarding), read_failed (the claim's answer was lost to a timeout or "
    "a Redis error).",
    ["reason"],
)
