"""The api's metric catalogue: request count and latency per route template (never per agent
id, so label sets stay bounded), and the middleware that records them."""

from __future__ import annotations

import time

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from smoltbot_metrics import FAST_BUCKETS, Counter, Histogram

__all__ = [
    "CARD_WRITES",
    "CFG_REPAIRS",
    "RATE_LIMITED",
    "RATE_LIMIT_FAIL_OPEN",
    "REQUESTS",
    "REQUEST_DURATION",
    "metrics_middleware",
]

REQUESTS = Counter(
    "smoltbot_api_requests_total",
    "HTTP requests handled by the api. method: the HTTP method; route: the matched route "
    "template (e.g. /v1/agents/{agent_id}), unmatched when no route matched; status: the HTTP "
    "status sent, 500 when an error escaped every handler.",
    ["method", "route", "status"],
)
REQUEST_DURATION = Histogram(
    "smoltbot_api_request_duration_seconds",
    "Time to handle an api request. method: the HTTP method; route: the matched route "
    "template, unmatched when no route matched.",
    ["method", "route"],
    buckets=FAST_BUCKETS,
)
RATE_LIMITED = Counter(
    "smoltbot_api_rate_limited_total",
    "Requests the api refused with 429 because their API key used up its rate limit "
    "(SMOLTBOT_API_RATE_LIMIT_PER_MIN, SMOLTBOT_API_RATE_LIMIT_BURST).",
)
RATE_LIMIT_FAIL_OPEN = Counter(
    "smoltbot_api_rate_limit_fail_open_total",
    "Requests the api let through without a rate-limit check because Redis did not answer "
    "(or was skipped for a few seconds after it failed): the limiter fails open.",
)

CARD_WRITES = Counter(
    "smoltbot_api_card_writes_total",
    "Writes of card:{agent} by the api after a PostgreSQL commit (a card publish, a conscience "
    "value or exemption change, an org-wide rewrite, a repair on read). outcome: written; same "
    "(that version was stored); stale (a newer version was stored); failed (Redis did not "
    "answer; the agent's next card read repairs the key).",
    ["outcome"],
)
for _outcome in ("written", "same", "stale", "failed"):
    CARD_WRITES.labels(_outcome)

CFG_REPAIRS = Counter(
    "smoltbot_api_cfg_reconcile_repairs_total",
    "Agents whose cfg:{agent} and PostgreSQL row disagreed, repaired by the api's reconcile "
    "loop. target: redis (cfg:{agent} missing or older than the row, rewritten from it); "
    "postgres (cfg:{agent} newer, e.g. an auto-containment, adopted into the row).",
    ["target"],
)
for _target in ("redis", "postgres"):
    CFG_REPAIRS.labels(_target)


def metrics_middleware(app: ASGIApp) -> ASGIApp:
    """Wrap a route's ASGI app; runs after routing, so ``path_template`` is known."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception escaping the handler chain ends as a 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            route = scope.get("path_template") or "unmatched"
            method = scope.get("method", "")
            REQUESTS.labels(method, route, str(status)).inc()
            REQUEST_DURATION.labels(method, route).observe(time.perf_counter() - started)

    return middleware
