"""The gateway's one app factory (architecture §2, §5)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from litestar import Litestar, Request, Response, asgi
from litestar.exceptions import HTTPException, NotFoundException
from litestar.handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send
from redis.asyncio import Redis
from smoltbot_bus import EventCipher, Publisher, Spool, redis_client
from smoltbot_config import load_settings_or_exit
from smoltbot_health import Health
from smoltbot_health.litestar_routes import probe_route_handlers
from smoltbot_logging import configure

from smoltbot_gateway.agent_config import ConfigReader
from smoltbot_gateway.asgi_io import send_json
from smoltbot_gateway.proxy import Proxy, under_provider
from smoltbot_gateway.settings import GatewaySettings
from smoltbot_gateway.state import GatewayState
from smoltbot_gateway.upstream import AiohttpUpstream, UpstreamClient

log = logging.getLogger(__name__)

NOT_FOUND_MESSAGE = (
    "This gateway handles /health/*, /metrics, /anthropic/*, /openai/* and /gemini/* endpoints"
)
NOT_FOUND_BODY = {"error": "Not found", "type": "not_found", "message": NOT_FOUND_MESSAGE}


def _not_found(_: Request[Any, Any, Any], __: NotFoundException) -> Response[dict[str, str]]:
    return Response(NOT_FOUND_BODY, status_code=404)


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, str]]:
    return Response(
        {"error": exc.detail, "type": "invalid_request_error"}, status_code=exc.status_code
    )


class _Runtime:
    """Holds the state once the lifespan built it; handlers are created before that."""

    def __init__(self) -> None:
        self.state: GatewayState | None = None
        self.proxy: Proxy | None = None


def _anthropic_handler(runtime: _Runtime) -> ASGIRouteHandler:
    @asgi("/anthropic", is_mount=True, copy_scope=True)
    async def anthropic(scope: Scope, receive: Receive, send: Send) -> None:
        if not under_provider(scope, "anthropic"):
            await send_json(send, 404, NOT_FOUND_BODY)
            return
        if runtime.proxy is None:
            await send_json(send, 503, {"error": "Gateway starting", "type": "unavailable"})
            return
        await runtime.proxy.handle("anthropic", scope, receive, send)

    return anthropic


def _not_implemented_handler(provider: str) -> ASGIRouteHandler:
    @asgi(f"/{provider}", is_mount=True, copy_scope=True, name=f"{provider}-proxy")
    async def not_implemented(scope: Scope, receive: Receive, send: Send) -> None:
        del receive
        if not under_provider(scope, provider):
            await send_json(send, 404, NOT_FOUND_BODY)
            return
        await send_json(
            send,
            501,
            {
                "error": f"The {provider} provider is not implemented yet",
                "type": "not_implemented",
            },
        )

    return not_implemented


def create_app(settings: GatewaySettings, *, upstream: UpstreamClient | None = None) -> Litestar:
    """Build the gateway app; Redis, the publisher and the upstream client live in the lifespan.

    ``upstream`` replaces the default aiohttp client (another implementation or a test double).
    Nothing here needs Redis to be up: readiness and liveness never depend on it.
    """
    health = Health("gateway")
    runtime = _Runtime()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        bus_redis = redis_client(settings.redis_url)
        # Config reads get their own pool with tight socket timeouts: a dead Redis must cost
        # a call nothing, and must not queue behind publisher batches.
        cfg_redis = Redis.from_url(
            settings.redis_url,
            decode_responses=False,
            socket_timeout=max(0.05, settings.config_timeout_ms / 1000.0 * 4),
            socket_connect_timeout=max(0.05, settings.config_timeout_ms / 1000.0 * 4),
        )
        instance = settings.instance_name()
        publisher = Publisher(
            bus_redis,
            settings.stream_prefix,
            spool=Spool(
                Path(settings.spool_dir), f"gateway-{instance}", max_bytes=settings.spool_max_bytes
            ),
            cipher=EventCipher.from_settings(settings.event_key, settings.event_keys_retired),
            max_buffer=settings.publish_buffer,
            max_bytes=settings.bus_max_bytes,
        )
        client = upstream or AiohttpUpstream(
            connect_timeout_s=settings.upstream_connect_timeout_s,
            read_timeout_s=settings.upstream_read_timeout_s,
            connect_retries=settings.upstream_connect_retries,
            max_connections=settings.upstream_max_connections,
            pool_timeout_s=settings.upstream_pool_timeout_s,
        )
        await client.start()
        await publisher.start()
        state = GatewayState(
            settings=settings,
            instance=instance,
            upstreams={"anthropic": client},
            events=publisher,
            config=ConfigReader(
                cfg_redis,
                settings.stream_prefix,
                timeout_s=settings.config_timeout_ms / 1000.0,
                backoff_s=settings.config_backoff_s,
            ),
        )
        runtime.state = state
        runtime.proxy = Proxy(state)
        app.state.gateway = state
        health.mark_started()
        log.info("gateway started", extra={"instance": state.instance, "port": settings.port})
        try:
            yield
        finally:
            health.mark_draining()
            runtime.proxy = None
            await client.close()
            await publisher.close()
            await bus_redis.aclose()
            await cfg_redis.aclose()
            log.info("gateway stopped")

    return Litestar(
        route_handlers=[
            *probe_route_handlers(health),
            _anthropic_handler(runtime),
            _not_implemented_handler("openai"),
            _not_implemented_handler("gemini"),
        ],
        lifespan=[lifespan],
        exception_handlers={NotFoundException: _not_found, HTTPException: _http_error},
        openapi_config=None,
        logging_config=None,  # logging is configured once, as JSON, by smoltbot_logging
    )


def app_from_env() -> Litestar:
    """Module-level factory for granian workers: settings and logging from the environment."""
    settings = load_settings_or_exit(GatewaySettings, "gateway")
    configure("gateway", settings.log_level)
    return create_app(settings)
