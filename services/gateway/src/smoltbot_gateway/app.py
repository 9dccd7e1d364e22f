"""The gateway's one app factory (architecture §2, §5).

Provider calls go straight from the ASGI server to the proxy: the framework (routing,
middleware, exception wrapping) would cost every call for nothing it needs. Litestar serves the
rest — probes, ``/metrics`` and the JSON 404 — and runs the lifespan that opens the resources.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import msgspec
from litestar import Litestar, Request, Response
from litestar.exceptions import NotFoundException
from litestar.types import Receive, Scope, Send
from smoltbot_config import load_settings_or_exit
from smoltbot_health import Health
from smoltbot_health.litestar_routes import probe_route_handlers
from smoltbot_logging import configure
from smoltbot_web import ErrorReply, exception_handlers

from smoltbot_gateway.headers import CORS_PREFLIGHT_HEADERS
from smoltbot_gateway.licence import Licence
from smoltbot_gateway.providers import PROVIDERS, WIRES
from smoltbot_gateway.proxy import Proxy, refuse
from smoltbot_gateway.resources import GatewayResources
from smoltbot_gateway.routing import BadPathError, match_target
from smoltbot_gateway.settings import GatewaySettings
from smoltbot_gateway.upstream import UpstreamClient

__all__ = ["GatewayApp", "app_from_env", "create_app"]

log = logging.getLogger(__name__)

NOT_FOUND = ErrorReply(
    "not_found",
    "Not found",
    explanation=(
        "This gateway handles /health, /health/*, /metrics, /anthropic/*, /openai/*, /gemini/* "
        "and /agent/{name}/{provider}/* endpoints"
    ),
)
_STARTING = {p: WIRES[p].error("service_unavailable", "Gateway starting") for p in PROVIDERS}
_LICENCE_INVALID = {
    p: WIRES[p].error("license_error", "License invalid or expired") for p in PROVIDERS
}
_JSON = msgspec.json.Encoder()
_HEALTH_PATHS = frozenset({b"/health", b"/health/"})


def _version() -> str:
    try:
        return version("smoltbot-gateway")
    except PackageNotFoundError:  # running from a source tree without metadata
        return "0.0.0"


def _not_found(_: Request[Any, Any, Any], __: NotFoundException) -> Response[bytes]:
    return NOT_FOUND.response()


class _Runtime:
    """The proxy while the resources are open; the app is built before that."""

    def __init__(self) -> None:
        self.proxy: Proxy | None = None
        self.licence: Licence | None = None

    @contextmanager
    def serving(self, resources: GatewayResources) -> Iterator[None]:
        self.proxy = Proxy(resources.state)
        self.licence = resources.licence
        try:
            yield
        finally:
            self.proxy = None  # calls arriving during shutdown get the 503


class GatewayApp:
    """The ASGI app the server runs: CORS preflights, ``/health``, provider routes; the rest
    goes to Litestar."""

    def __init__(self, framework: Litestar, runtime: _Runtime) -> None:
        self.framework = framework
        self._runtime = runtime
        self._version = _version()

    async def __call__(self, asgi_scope: Scope, receive: Receive, send: Send) -> None:
        scope: Any = asgi_scope  # plain dict access on the hot path
        if scope["type"] != "http":
            await self.framework(scope, receive, send)  # lifespan
            return
        if scope["method"] == "OPTIONS":
            await _send(send, 204, b"", CORS_PREFLIGHT_HEADERS)
            return
        raw: Any = scope.get("raw_path") or scope["path"].encode()
        path = raw.partition(b"?")[0]
        if path in _HEALTH_PATHS:
            await self._health(send)
            return
        try:
            target = match_target(path)
        except BadPathError as exc:
            await refuse(
                exc.provider,
                "bad_path",
                WIRES[exc.provider].error("invalid_request_error", str(exc)),
                send,
            )
            return
        if target is None:
            await self.framework(scope, receive, send)
            return
        proxy = self._runtime.proxy
        if proxy is None:
            await _STARTING[target.provider].send(send)
            return
        licence = self._runtime.licence
        if licence is not None and not licence.permits():  # one clock comparison, no I/O
            await refuse(target.provider, "licence", _LICENCE_INVALID[target.provider], send)
            return
        await proxy.handle(target, scope, receive, send)

    async def _health(self, send: Send) -> None:
        """The reference's liveness answer; depends on nothing external."""
        body = _JSON.encode(
            {
                "status": "ok",
                "version": self._version,
                "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "aip_enabled": True,
            }
        )
        await _send(send, 200, body, ((b"content-type", b"application/json"),))


async def _send(
    send: Send, status: int, body: bytes, headers: tuple[tuple[bytes, bytes], ...]
) -> None:
    framing = (b"content-length", str(len(body)).encode())
    await send({"type": "http.response.start", "status": status, "headers": [*headers, framing]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def create_app(settings: GatewaySettings, *, upstream: UpstreamClient | None = None) -> GatewayApp:
    """Build the gateway app; Redis, the publisher and the upstream client live in the lifespan.

    ``upstream`` replaces the default aiohttp client (another implementation or a test double).
    Nothing here needs Redis to be up: readiness and liveness never depend on it.
    """
    health = Health("gateway")
    runtime = _Runtime()

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        async with GatewayResources.open(settings, health, upstream=upstream) as resources:
            with runtime.serving(resources):
                yield

    framework = Litestar(
        route_handlers=probe_route_handlers(health),
        lifespan=[lifespan],
        exception_handlers=exception_handlers(log, overrides={NotFoundException: _not_found}),
        openapi_config=None,
        logging_config=None,  # logging is configured once, as JSON, by smoltbot_logging
    )
    return GatewayApp(framework, runtime)


def app_from_env() -> GatewayApp:
    """Module-level factory for granian workers: settings and logging from the environment."""
    settings = load_settings_or_exit(GatewaySettings, "gateway")
    configure("gateway", settings.log_level)
    return create_app(settings)
