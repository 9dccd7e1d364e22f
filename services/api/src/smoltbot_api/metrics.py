"""Request count and latency per route template (never per agent id: bounded label sets)."""

from __future__ import annotations

import time

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from smoltbot_metrics import FAST_BUCKETS, Counter, Histogram

__all__ = ["REQUESTS", "REQUEST_DURATION", "metrics_middleware"]

REQUESTS = Counter(
    "api_requests_total",
    "HTTP requests handled by the api, by method, route template and status code.",
    ["method", "route", "status"],
)
REQUEST_DURATION = Histogram(
    "api_request_duration_seconds",
    "Time to handle an api request, by method and route template.",
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
