"""Everything one gateway process opens, opened in one place and closed in reverse (architecture
§11): also when a later step fails, nothing opened before it is left behind.

The order is what makes shutdown lose nothing: the upstream client closes first, so no call is
still relaying; then the publisher flushes (or spools) its buffer through the bus Redis client,
which closes only after it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis
from smoltbot_bus import EventCipher, Publisher, Spool, redis_client
from smoltbot_health import Health

from smoltbot_gateway.admission import BodyBudget
from smoltbot_gateway.agent_config import ConfigReader
from smoltbot_gateway.licence import Licence
from smoltbot_gateway.providers import PROVIDERS
from smoltbot_gateway.settings import GatewaySettings
from smoltbot_gateway.state import GatewayState
from smoltbot_gateway.upstream import AiohttpUpstream, UpstreamClient
from smoltbot_gateway.waiting import VerdictWaiter

__all__ = ["GatewayResources"]

log = logging.getLogger(__name__)


def _config_redis(settings: GatewaySettings) -> Redis:
    """Config reads get their own pool with tight socket timeouts: a dead Redis must cost a
    call nothing, and a read must not queue behind publisher batches."""
    timeout_s = max(0.05, settings.config_timeout_ms / 1000.0 * 4)
    return Redis.from_url(
        settings.redis_url,
        decode_responses=False,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
    )


def _publisher(settings: GatewaySettings, redis: Redis, instance: str) -> Publisher:
    spool = Spool(
        Path(settings.spool_dir), f"gateway-{instance}", max_bytes=settings.spool_max_bytes
    )
    return Publisher(
        redis,
        settings.stream_prefix,
        spool=spool,
        cipher=EventCipher.from_settings(settings.event_key, settings.event_keys_retired),
        max_buffer=settings.publish_buffer,
        max_bytes=settings.bus_max_bytes,
        # Calls come in concurrently: a few milliseconds turn many round trips into one.
        linger_s=0.005,
    )


def _aiohttp_upstream(settings: GatewaySettings) -> AiohttpUpstream:
    return AiohttpUpstream(
        connect_timeout_s=settings.upstream_connect_timeout_s,
        read_timeout_s=settings.upstream_read_timeout_s,
        connect_retries=settings.upstream_connect_retries,
        max_connections=settings.upstream_max_connections,
        pool_timeout_s=settings.upstream_pool_timeout_s,
    )


@dataclass(frozen=True, slots=True)
class GatewayResources:
    """What requests share once the process is up (see :meth:`open`)."""

    state: GatewayState
    licence: Licence

    @classmethod
    @asynccontextmanager
    async def open(
        cls, settings: GatewaySettings, health: Health, *, upstream: UpstreamClient | None = None
    ) -> AsyncIterator[GatewayResources]:
        """Open Redis, the publisher and the upstream client; startup is marked once all are
        open and draining first thing on the way out. ``upstream`` replaces the aiohttp client
        (a test double); it is started and closed here like the default one."""
        async with AsyncExitStack() as stack:
            bus_redis = redis_client(settings.redis_url)
            stack.push_async_callback(bus_redis.aclose)
            config_redis = _config_redis(settings)
            stack.push_async_callback(config_redis.aclose)
            instance = settings.instance_name()
            # Each close is registered before its start: both are safe on a half-started object.
            publisher = _publisher(settings, bus_redis, instance)
            stack.push_async_callback(publisher.close)
            await publisher.start()
            client = upstream or _aiohttp_upstream(settings)
            stack.push_async_callback(client.close)
            await client.start()
            # Waiting callers (architecture §3.3): one reply reader per process. It closes
            # first, so calls still waiting get their failure policy before the publisher
            # flushes what it holds.
            verdicts = VerdictWaiter(
                bus_redis,
                publisher,
                settings.stream_prefix,
                instance,
                timeout_s=settings.aip_timeout_ms / 1000.0,
            )
            stack.push_async_callback(verdicts.close)
            await verdicts.start()
            config = ConfigReader(
                config_redis,
                settings.stream_prefix,
                timeout_s=settings.config_timeout_ms / 1000.0,
                backoff_s=settings.config_backoff_s,
            )
            # Settled before the first call (at most one validate-URL timeout), then re-checked
            # in the background; readiness shows it but never fails on it.
            licence = Licence.from_settings(settings)
            stack.push_async_callback(licence.close)
            await licence.start()
            licence.start_background()
            health.add_report("licence", licence.report)
            state = GatewayState(
                settings=settings,
                instance=instance,
                upstreams=dict.fromkeys(PROVIDERS, client),
                events=publisher,
                config=config,
                body_budget=BodyBudget(settings.max_inflight_body_bytes),
                verdicts=verdicts,
            )
            health.mark_started()
            stack.callback(health.mark_draining)
            log.info("gateway started", extra={"instance": instance, "port": settings.port})
            yield cls(state, licence)
        log.info("gateway stopped")
