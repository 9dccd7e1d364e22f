"""The gateway's one app factory (architecture §2, §5)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from litestar import Litestar, Request, Response, asgi
from litestar.exceptions import NotFoundException
from litestar.handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send
from smoltbot_config import load_settings_or_exit
from smoltbot_health import Health
from smoltbot_health.litestar_routes import probe_route_handlers
from smoltbot_logging import configure
from smoltbot_web import ErrorReply, exception_handlers

from smoltbot_gateway.proxy import Proxy, under_provider
from smoltbot_gateway.resources import GatewayResources
from smoltbot_gateway.settings import GatewaySettings
from smoltbot_gateway.upstream import UpstreamClient

log = logging.getLogger(__name__)

NOT_FOUND = ErrorReply(
    "not_found",
    "Not found",
    explanation=(
        "This gateway handles /health/*, /metrics, /anthropic/*, /openai/* and /gemini/* endpoints"
    ),
)
STARTING = ErrorReply("service_unavailable", "Gateway starting")


def _not_found(_: Request[Any, Any, Any], __: NotFoundException) -> Response[bytes]:
    return NOT_FOUND.response()


class _Runtime:
    """The proxy while the resources are open; route handlers are built before that."""

    def __init__(self) -> None:
        self.proxy: Proxy | None = None

    @contextmanager
    def serving(self, resources: GatewayResources) -> Iterator[None]:
        self.proxy = Proxy(resources.state)
        try:
            yield
        finally:
            self.proxy = None  # calls arriving during shutdown get the 503


def _anthropic_handler(runtime: _Runtime) -> ASGIRouteHandler:
    @asgi("/anthropic", is_mount=True, copy_scope=True)
    async def anthropic(scope: Scope, receive: Receive, send: Send) -> None:
        if not under_provider(scope, "anthropic"):
            await NOT_FOUND.send(send)
        elif runtime.proxy is None:
            await STARTING.send(send)
        else:
            await runtime.proxy.handle("anthropic", scope, receive, send)

    return anthropic


def _not_implemented_handler(provider: str) -> ASGIRouteHandler:
    not_implemented_yet = ErrorReply(
        "not_implemented", f"The {provider} provider is not implemented yet"
    )

    @asgi(f"/{provider}", is_mount=True, copy_scope=True, name=f"{provider}-proxy")
    async def not_implemented(scope: Scope, receive: Receive, send: Send) -> None:
        del receive
        reply = not_implemented_yet if under_provider(scope, provider) else NOT_FOUND
        await reply.send(send)

    return not_implemented


def create_app(settings: GatewaySettings, *, upstream: UpstreamClient | None = None) -> Litestar:
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

    return Litestar(
        route_handlers=[
            *probe_route_handlers(health),
            _anthropic_handler(runtime),
            _not_implemented_handler("openai"),
            _not_implemented_handler("gemini"),
        ],
        lifespan=[lifespan],
        exception_handlers=exception_handlers(log, overrides={NotFoundException: _not_found}),
        openapi_config=None,
        logging_config=None,  # logging is configured once, as JSON, by smoltbot_logging
    )


def app_from_env() -> Litestar:
    """Module-level factory for granian workers: settings and logging from the environment."""
    settings = load_settings_or_exit(GatewaySettings, "gateway")
    configure("gateway", settings.log_level)
    return create_app(settings)
