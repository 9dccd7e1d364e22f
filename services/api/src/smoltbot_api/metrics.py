"""The api's metric catalogue: request count and latency per route template (never per agent
id, so label sets stay bounded), and the middleware that records them."""

from __future__ import annotations

import time

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from smoltbot_metrics import FAST_BUCKETS, Counter, Histogram

__all__ = ["REQUESTS", "REQUEST_DURATION", "metrics_middleware"]

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
