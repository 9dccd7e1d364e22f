"""Probe and /metrics route handlers for the Litestar HTTP services (gateway, api)."""

from __future__ import annotations

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler
from smoltbot_metrics import render_latest

from smoltbot_health._state import Health, ProbeResult

__all__ = ["probe_route_handlers"]


def _response(result: ProbeResult) -> Response[dict[str, object]]:
    return Response(result.body, status_code=result.status_code)


def probe_route_handlers(health: Health) -> list[HTTPRouteHandler]:
    """Handlers for ``/health/live``, ``/health/ready``, ``/health/startup`` and ``/metrics``."""

    @get("/health/live", sync_to_thread=False, include_in_schema=False)
    def live() -> Response[dict[str, object]]:
        return _response(health.live())

    @get("/health/ready", include_in_schema=False)
    async def ready() -> Response[dict[str, object]]:
        return _response(await health.ready())

    @get("/health/startup", sync_to_thread=False, include_in_schema=False)
    def startup() -> Response[dict[str, object]]:
        return _response(health.startup())

    @get("/metrics", sync_to_thread=False, include_in_schema=False)
    def metrics() -> Response[bytes]:
        body, content_type = render_latest()
        return Response(body, media_type=content_type)

    return [live, ready, startup, metrics]
