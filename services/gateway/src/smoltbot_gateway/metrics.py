"""Gateway metrics (created once at import). Labels never include agent ids."""

from __future__ import annotations

from smoltbot_metrics import FAST_BUCKETS, Counter, Histogram

REQUESTS = Counter(
    "gateway_requests_total",
    "Requests answered by the gateway, by provider and response status.",
    ["provider", "status"],
)
REQUEST_DURATION = Histogram(
    "gateway_request_duration_seconds",
    "Wall time from request start to the last byte sent to the client.",
    ["provider"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
OVERHEAD = Histogram(
    "gateway_overhead_seconds",
    "Gateway time on top of the upstream: total minus upstream time "
    "(for streams: time to first byte minus upstream time to first byte).",
    ["provider", "streamed"],
    buckets=FAST_BUCKETS,
)
EVENTS_DROPPED = Counter(
    "gateway_events_dropped_total",
    "Events the gateway could not hand to the publisher buffer, by stream.",
    ["stream"],
)
CLIENT_DISCONNECTS = Counter(
    "gateway_client_disconnects_total",
    "Responses cut short because the client went away.",
    ["provider"],
)
