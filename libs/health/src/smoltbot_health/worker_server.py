"""The small HTTP server a stream worker runs beside its consume loop (probes + /metrics)."""

from __future__ import annotations

from aiohttp import web
from smoltbot_metrics import render_latest

from smoltbot_health._state import Health, ProbeResult

__all__ = ["ProbeServer"]


def _json(result: ProbeResult) -> web.Response:
    return web.json_response(result.body, status=result.status_code)


class ProbeServer:
    """``/health/{live,ready,startup}`` and ``/metrics`` on one port, in the worker's event loop."""

    def __init__(self, health: Health, host: str, port: int) -> None:
        self.health = health
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/health/live", self._live)
        app.router.add_get("/health/ready", self._ready)
        app.router.add_get("/health/startup", self._startup)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _live(self, _: web.Request) -> web.Response:
        return _json(self.health.live())

    async def _ready(self, _: web.Request) -> web.Response:
        return _json(await self.health.ready())

    async def _startup(self, _: web.Request) -> web.Response:
        return _json(self.health.startup())

    async def _metrics(self, _: web.Request) -> web.Response:
        body, content_type = render_latest()
        return web.Response(body=body, headers={"Content-Type": content_type})
