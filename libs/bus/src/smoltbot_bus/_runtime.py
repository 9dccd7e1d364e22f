"""Everything a stream worker process needs around its handler (probes, Redis, signals)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Sequence
from types import TracebackType

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError
from smoltbot_config import CommonSettings, default_consumer_name
from smoltbot_health import Health
from smoltbot_health.worker_server import ProbeServer
from smoltbot_resilience import Backoff, retry_until

from smoltbot_bus._consumer import Consumer
from smoltbot_bus._crypto import EventCipher
from smoltbot_bus._types import ConsumerConfig, Handler

log = logging.getLogger(__name__)

_REDIS_DOWN = (RedisError, OSError)


def _warn(message: str) -> Callable[[BaseException, float, int], None]:
    """A ``retry_until`` hook that logs each failed attempt as ``message``."""

    def on_retry(error: BaseException, delay_s: float, attempt: int) -> None:
        log.warning(message, extra={"error": str(error)[:200], "retry_in_s": delay_s})

    return on_retry


def redis_client(url: str) -> Redis:
    """A Redis client for bus work: bytes replies, socket timeout well above the read BLOCK."""
    return Redis.from_url(
        url,
        decode_responses=False,
        socket_timeout=10.0,
        socket_connect_timeout=3.0,
        health_check_interval=30,
    )


class WorkerRuntime:
    """Probe server + Redis connection + signal handling for one worker process.

    ``async with WorkerRuntime(...) as rt: await rt.run_consumer(config, handler)``. Until Redis
    answers, ``/health/startup`` and ``/health/ready`` say 503 and the connection is retried with
    backoff; the process never crash-loops on an unreachable dependency.
    """

    def __init__(
        self,
        service: str,
        settings: CommonSettings,
        *,
        port: int,
        host: str = "0.0.0.0",  # noqa: S104
    ) -> None:
        self.service = service
        self.settings = settings
        self.prefix = settings.stream_prefix
        self.consumer_name = settings.consumer_name or default_consumer_name()
        self.health = Health(service)
        self.cipher = EventCipher.from_settings(settings.event_key, settings.event_keys_retired)
        self.redis = redis_client(settings.redis_url)
        self._probes = ProbeServer(self.health, host, port)
        self._stop = asyncio.Event()
        self.consumers: list[Consumer] = []

    async def __aenter__(self) -> WorkerRuntime:
        await self._probes.start()
        self.health.add_check("redis", self.redis.ping)
        self._install_signals()
        await self.wait_for_redis()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.redis.aclose()
        await self._probes.stop()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def stop_requested(self) -> asyncio.Event:
        """Set on SIGTERM/SIGINT: waits on other dependencies end on it too."""
        return self._stop

    def request_stop(self) -> None:
        """SIGTERM/SIGINT: stop reading, finish the batch in hand, ack, leave."""
        if not self._stop.is_set():
            log.info("shutdown requested; draining")
        self._stop.set()
        self.health.mark_draining()
        for consumer in self.consumers:
            consumer.stop()

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)

    async def wait_for_redis(self, max_backoff_s: float = 5.0) -> None:
        """Until Redis answers a PING, or a stop is requested."""
        await retry_until(
            self.redis.ping,
            retry_on=_REDIS_DOWN,
            backoff=Backoff(0.2, max_backoff_s),
            stop=self._stop,
            on_retry=_warn("redis not reachable yet; retrying"),
        )

    def tuned(self, config: ConsumerConfig) -> ConsumerConfig:
        """The service's consumer config with the operator's bus tuning from the environment.

        Services choose what they consume (group, streams, batch size); delivery timing,
        retention and liveness limits are deployment decisions, so settings win.
        """
        s = self.settings
        return msgspec.structs.replace(
            config,
            block_ms=s.bus_block_ms,
            max_deliveries=s.bus_max_deliveries,
            min_idle_ms=s.bus_min_idle_ms,
            claim_interval_s=s.bus_claim_interval_s,
            stuck_after_s=s.stuck_after_s,
            housekeeping_interval_s=s.bus_trim_interval_s,
            retention_s=s.bus_retention_s,
            body_retention_s=s.bus_body_retention_s,
            stale_group_s=s.bus_stale_group_s,
            max_bytes=s.bus_max_bytes,
        )

    @property
    def consumer(self) -> Consumer | None:
        """The first consumer started (the only one of most services)."""
        return self.consumers[0] if self.consumers else None

    async def run_consumer(self, config: ConsumerConfig, handler: Handler) -> None:
        """Consume until a stop signal, then return after the in-flight batch is acked.

        If the batch in hand takes longer than ``drain_timeout_s`` after the signal, it is
        abandoned unacked; another consumer claims it once it has been idle ``min_idle_ms``.
        """
        await self.run_consumers([(config, handler)])

    async def run_consumers(self, lanes: Sequence[tuple[ConsumerConfig, Handler]]) -> None:
        """:meth:`run_consumer` for several consumers side by side in this process, e.g. a lane
        of its own for a priority stream, so that entries someone waits for are never held
        behind a slow batch of the bulk stream. Each lane needs its own ``consumer_name``
        (beyond the first); a crash of one lane stops the others and is raised."""
        if self._stop.is_set():
            return
        started: list[Consumer] = []
        for wanted, handler in lanes:
            config = self.tuned(wanted)
            consumer = Consumer(
                self.redis,
                self.prefix,
                config,
                handler,
                consumer_name=config.consumer_name or self.consumer_name,
                health=self.health,
                cipher=self.cipher,
            )
            await retry_until(
                consumer.reader.ensure_groups,
                retry_on=_REDIS_DOWN,
                backoff=Backoff(0.2, 5.0),
                stop=self._stop,
                on_retry=_warn("cannot create consumer groups yet"),
            )
            started.append(consumer)
            log.info(
                "consuming",
                extra={
                    "group": config.group,
                    "consumer": consumer.name,
                    "streams": list(config.streams),
                },
            )
        self.consumers = started
        if self._stop.is_set():
            return
        self.health.mark_started()
        timeout_s = self.settings.drain_timeout_s

        async def lane(consumer: Consumer) -> None:
            task = asyncio.create_task(consumer.run(), name=f"consume:{consumer.name}")
            try:
                await _until_drained(task, self._stop, timeout_s)
            except Exception:
                self.request_stop()  # one lane crashed: the others drain and stop too
                raise

        results = await asyncio.gather(*(lane(c) for c in self.consumers), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result


async def _until_drained(task: asyncio.Task[None], stop: asyncio.Event, timeout_s: float) -> None:
    """Await ``task``; once ``stop`` is set give it ``timeout_s`` to finish, then cancel it.
    A crash of the task is raised here."""
    stop_wait = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
    if task not in done:
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout_s)
        except TimeoutError:
            log.error("drain timed out; abandoning the batch in hand (it will be reclaimed)")
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    stop_wait.cancel()
    if task.done() and not task.cancelled():
        task.result()  # surface a crash of the consume loop
