"""The persister process: probes + Redis (WorkerRuntime), the PostgreSQL pool, the consume loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from smoltbot_bus import ConsumerConfig, WorkerRuntime
from smoltbot_contracts.streams import AGENTS, CONTROL, VERDICTS
from smoltbot_db import create_pool, ping, wait_until_reachable

from smoltbot_persister.handlers import Persister
from smoltbot_persister.retention import retention_loop
from smoltbot_persister.settings import PersisterSettings

__all__ = ["STREAMS", "consumer_config", "run"]

log = logging.getLogger(__name__)

STREAMS = (VERDICTS, AGENTS, CONTROL)


def consumer_config(settings: PersisterSettings) -> ConsumerConfig:
    return ConsumerConfig(
        group="persister",
        streams=list(STREAMS),
        batch_size=settings.batch_size,
    )


async def run(settings: PersisterSettings) -> None:
    """Run until SIGTERM/SIGINT.

    PostgreSQL is waited for (backoff, forever) *before* consuming: /health/startup stays 503 and
    /health/ready reports the failing ``postgres`` check, instead of a crash loop or handler
    failures that would burn delivery attempts into the DLQ.
    """
    pool = create_pool(
        settings.database_url,
        min_size=1,
        max_size=settings.pool_size,
        name="persister",
        application_name="smoltbot-persister",
        timeout_s=5.0,  # a batch waits at most this long for a connection, then is retried
    )
    async with WorkerRuntime("persister", settings, port=settings.port, host=settings.host) as rt:

        async def postgres_ready() -> None:
            await ping(pool)

        rt.health.add_check("postgres", postgres_ready)
        await pool.open(wait=False)
        try:
            if not await wait_until_reachable(pool, stop=rt.stop_requested):
                log.info("stopped before PostgreSQL became reachable")
                return
            persister = Persister(pool, rt.redis, rt.prefix)
            # Retention beside the consumer, on its own connection (docs/operations.md).
            retention = asyncio.create_task(
                retention_loop(settings, rt.stop_requested), name="retention"
            )
            try:
                await rt.run_consumer(consumer_config(settings), persister.handle)
            finally:
                retention.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await retention
        finally:
            await pool.close()
