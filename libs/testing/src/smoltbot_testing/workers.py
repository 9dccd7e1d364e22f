"""A bus worker under test: its consumer run inside the test's event loop, or the whole service
run as an OS process; and what it left unacked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import redis.asyncio
from smoltbot_bus import ConsumerConfig, Handler, WorkerRuntime
from smoltbot_contracts import Event
from smoltbot_contracts.codec import decode_fields, to_fields
from smoltbot_contracts.streams import stream_key

from smoltbot_testing.keys import wait_for_entries
from smoltbot_testing.procs import worker_process

__all__ = ["consuming", "first_output", "unacked"]


@asynccontextmanager
async def consuming(
    rt: WorkerRuntime, config: ConsumerConfig | Sequence[ConsumerConfig], handler: Handler
) -> AsyncIterator[None]:
    """``rt`` runs one consumer of ``handler`` (or one per config: a service's lanes) for the
    block; then it is asked to stop and is waited for (10 s) while it finishes the batch in
    hand."""
    configs = [config] if isinstance(config, ConsumerConfig) else list(config)
    task = asyncio.create_task(rt.run_consumers([(c, handler) for c in configs]))
    try:
        yield
    finally:
        rt.request_stop()
        await asyncio.wait_for(task, 10)


async def unacked(
    client: redis.asyncio.Redis, prefix: str, group: str, *streams: str
) -> dict[str, int]:
    """Of ``streams`` (logical names), those where ``group`` holds entries it read and did not
    ack, with how many: ``{}`` once everything it read is acked."""
    counts = {
        stream: int((await client.xpending(stream_key(prefix, stream), group))["pending"])
        for stream in streams
    }
    return {stream: n for stream, n in counts.items() if n}


async def first_output(
    service: str,
    client: redis.asyncio.Redis,
    prefix: str,
    event: Event,
    *,
    source: str,
    output: str,
) -> Event:
    """``event`` added to ``source``, then ``python -m smoltbot_<service>`` run (consumer
    ``<service>-proc-test``, ready probe first) until an event appears on ``output`` and stopped
    with SIGTERM: that event, once the process has drained and exited 0."""
    await client.xadd(stream_key(prefix, source), to_fields(event))  # type: ignore[arg-type]
    consumer_name = f"{service}-proc-test"
    async with worker_process(service, prefix=prefix, consumer_name=consumer_name) as worker:
        entries = await wait_for_entries(client, stream_key(prefix, output), 1)
    assert worker.returncode == 0, worker.output[-2000:]
    return decode_fields(entries[0][1])
