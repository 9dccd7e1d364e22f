"""The consumer (architecture §3.2): a short orchestration of parts that each do one job.

* :class:`~smoltbot_bus._reader.Reader` decides what is handled next (groups, priority lane,
  own pending entries, the reaper);
* :class:`~smoltbot_bus._processing.Processor` decodes, runs the handler under
  :class:`~smoltbot_bus._heartbeat.Heartbeat` and commits (outputs and acks in one MULTI) or
  applies :class:`~smoltbot_bus._policy.FailurePolicy` (hold, isolate, leave pending, or
  dead-letter through :mod:`smoltbot_bus._dlq`);
* :class:`~smoltbot_bus._housekeeping.Housekeeper` runs as its own task beside the loop.

One loop handles entries, in order, so no two pieces of code in a process ever handle the same
entry at once: start (create groups, beat, drain own pending), then every ``claim_interval_s``
a reaper pass, and in between read and process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from smoltbot_health import Health
from smoltbot_resilience import Backoff, sleep_or_stop

from smoltbot_bus._commit import Committer
from smoltbot_bus._crypto import EventCipher
from smoltbot_bus._dlq import DeadLetters
from smoltbot_bus._entries import Member
from smoltbot_bus._heartbeat import Heartbeat
from smoltbot_bus._housekeeping import Housekeeper
from smoltbot_bus._metrics import zero_entry_counters
from smoltbot_bus._policy import FailurePolicy
from smoltbot_bus._processing import Processor
from smoltbot_bus._reader import Reader
from smoltbot_bus._types import ConsumerConfig, Handler

log = logging.getLogger(__name__)


class Consumer:
    """Consumes ``config.streams`` as group ``config.group`` and feeds ``handler``."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        config: ConsumerConfig,
        handler: Handler,
        *,
        consumer_name: str,
        health: Health | None = None,
        cipher: EventCipher | None = None,
    ) -> None:
        self.name = consumer_name
        self._config = config
        self._health = health
        self._loop_name = f"consume:{config.group}"
        self._stop = asyncio.Event()
        cipher = cipher or EventCipher(None)
        policy = FailurePolicy(config.max_deliveries)
        member = Member(redis, prefix, config, consumer_name)
        self.reader = Reader(member, policy)
        self.heartbeat = Heartbeat(member, on_beat=self._beat)
        self.housekeeper = Housekeeper(member, self.heartbeat)
        self.processor = Processor(
            handler,
            policy=policy,
            heartbeat=self.heartbeat,
            committer=Committer(member, cipher),
            dead_letters=DeadLetters(member, cipher),
            cipher=cipher,
            stop=self._stop,
        )
        if health is not None:
            health.register_loop(self._loop_name, config.stuck_after_s)
        zero_entry_counters(config.streams)

    def stop(self) -> None:
        """Ask the loop to finish the batch in hand, ack it and return."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def run(self) -> None:
        """Run until :meth:`stop`, housekeeping beside; then leave the group if idle."""
        housekeeping = asyncio.create_task(
            self.housekeeper.run(self._stop), name=f"housekeeping:{self._config.group}"
        )
        housekeeping.add_done_callback(lambda _: self.stop())  # it ends only with the consumer
        try:
            await self._consume()
        finally:
            housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await housekeeping  # surfaces a crash of the housekeeping task
        await self.reader.leave()
        log.info("consumer stopped", extra={"group": self._config.group, "consumer": self.name})

    async def claim_idle(self) -> int:
        """One reaper pass over every stream; returns how many entries it handled."""
        handled = 0
        for stream in self.reader.streams:
            claim = await self.reader.claim_idle(stream)
            await self.processor.dead_letter_exhausted(claim.exhausted)
            if claim.claimed:
                await self.processor.process(claim.claimed)
            handled += len(claim.exhausted) + len(claim.claimed)
        return handled

    async def _consume(self) -> None:
        """The loop; Redis errors are logged and retried with backoff, NOGROUP restarts."""
        backoff = Backoff(0.1, 5.0)
        started = False
        next_claim = 0.0
        while not self._stop.is_set():
            self._beat()
            try:
                if not started:
                    await self._start()
                    started = True
                if time.monotonic() >= next_claim:
                    next_claim = time.monotonic() + self._config.claim_interval_s
                    await self.claim_idle()
                if entries := await self.reader.read():
                    await self.processor.process(entries)
                backoff.reset()
            except (RedisError, OSError) as exc:
                if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
                    # The stream or group vanished (flushed, restored without AOF, destroyed):
                    # recreate it and carry on instead of retrying a read that cannot succeed.
                    log.error("consumer group missing; recreating", extra={"error": str(exc)[:200]})
                    started = False
                else:
                    log.warning("bus error; retrying", extra={"error": str(exc)[:200]})
                await sleep_or_stop(backoff.next(), self._stop)

    async def _start(self) -> None:
        await self.reader.ensure_groups()
        await self.heartbeat.beat_groups()
        await self.reader.drain_own_pending(self.processor.process, self._stop)

    def _beat(self) -> None:
        if self._health is not None:
            self._health.beat(self._loop_name)
