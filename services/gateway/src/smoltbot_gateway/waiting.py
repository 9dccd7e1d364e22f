"""Waiting callers (architecture §3.3): an exchange goes out on the priority lane with
``reply_to = replies:<instance>`` and its call waits for the verdict the verifier sends back.

One :class:`VerdictWaiter` per gateway process, opened with the other resources:

- :meth:`VerdictWaiter.check` registers a future under the exchange id *before* the
  synchronous XADD to ``exchanges:priority`` (a fast verdict cannot beat it), then waits at most
  the AIP timeout, publishing included. When the XADD is refused (``BusUnavailable``: Redis
  known down or the bus over budget) or fails, the exchange is handed to the buffered
  ``enqueue`` instead (without ``reply_to``), so the trace is kept: every exchange is recorded
  exactly once. The XADD runs shielded: a caller that times out or leaves does not cut it short.
- one reader task XREADs (BLOCK) the reply stream from where it last read, resolves the future
  waiting on each verdict, counts verdicts nobody waits for any more (late, or addressed to an
  earlier process of the same instance name), and XTRIMs what it read (every
  :data:`TRIM_EVERY` entries, and whenever a read comes back empty): this process is the
  stream's only reader. Redis errors back off (``smoltbot_resilience.Backoff``) and the reader
  resumes after the last id it read, so verdicts that arrived meanwhile are still delivered if
  their callers still wait.

An analysis that failed (the verifier's synthetic ``analysis_failed`` checkpoint) is an outcome
of its own (``error``): the caller applies its failure policy, not the verifier's synthetic
verdict.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError
from smoltbot_bus import BusUnavailable, format_id, id_after, parse_id
from smoltbot_contracts import Event, ExchangeV1, VerdictV1
from smoltbot_contracts.codec import DecodeError, decode_fields
from smoltbot_contracts.streams import EXCHANGES, EXCHANGES_PRIORITY, reply_key
from smoltbot_resilience import Backoff, sleep_or_stop

from smoltbot_gateway import metrics

__all__ = [
    "ANALYSIS_FAILED",
    "Outcome",
    "PriorityPublisher",
    "VerdictWaiter",
    "WaitOutcome",
    "reply_stream",
]

log = logging.getLogger(__name__)

# The verifier's ``synthetic_reason`` for a checkpoint made because the analysis failed
# (smoltbot_verifier.integrity.ANALYSIS_FAILED; services share no code, a test ties the two).
ANALYSIS_FAILED = "analysis_failed"

TRIM_EVERY = 256  # entries read between two XTRIMs under load (an idle reader trims at once)

Outcome = Literal["verdict", "timeout", "error", "bus_unavailable"]
OUTCOMES: tuple[Outcome, ...] = ("verdict", "timeout", "error", "bus_unavailable")


@dataclass(frozen=True, slots=True)
class WaitOutcome:
    """How one wait ended: ``verdict`` is set for ``verdict`` (and for a failed analysis)."""

    outcome: Outcome
    verdict: VerdictV1 | None
    seconds: float


class PriorityPublisher(Protocol):
    """What the waiter needs from ``smoltbot_bus.Publisher``."""

    def enqueue(self, stream: str, event: Event) -> bool: ...

    async def publish(self, stream: str, event: Event) -> str: ...


class WaiterClosedError(Exception):
    """The gateway is stopping: nobody will read the verdict."""


def reply_stream(instance: str) -> str:
    """The logical reply stream of a gateway instance (``reply_to`` carries no prefix)."""
    return f"replies:{instance}"


class VerdictWaiter:
    """Futures of waiting calls, keyed by exchange id, and the one reader that resolves them."""

    def __init__(
        self,
        redis: Redis,
        events: PriorityPublisher,
        prefix: str,
        instance: str,
        *,
        timeout_s: float,
        block_ms: int = 1000,
        batch: int = 500,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._redis = redis
        self._events = events
        self.reply_to = reply_stream(instance)
        self._key = reply_key(prefix, instance)
        self.timeout_s = timeout_s
        self._block_ms = block_ms
        self._batch = batch
        self._backoff = backoff or Backoff(0.05, 2.0, jitter=True)
        self._clock = clock
        self._waiting: dict[str, asyncio.Future[VerdictV1]] = {}
        self._publishing: set[asyncio.Task[bool]] = set()
        self._stop = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        # Everything up to here was read (a restarted process skips nothing: a verdict for an
        # earlier process of this instance name is counted unknown and trimmed).
        self.last_id = "0-0"
        self._untrimmed = 0
        # Every series exists from the start, at 0; children looked up once.
        self._waits = {o: metrics.VERDICT_WAITS.labels(o) for o in OUTCOMES}
        self._wait_seconds = {o: metrics.VERDICT_WAIT_SECONDS.labels(o) for o in OUTCOMES}
        self._replies = {
            r: metrics.VERDICT_REPLIES.labels(r) for r in ("matched", "unknown", "invalid")
        }

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def start(self) -> None:
        if self._reader is None:
            self._stop.clear()
            self._reader = asyncio.create_task(self._read_loop(), name="verdict-replies")

    async def close(self, timeout_s: float = 5.0) -> None:
        """Stop reading; callers still waiting get the ``error`` outcome; XADDs in flight finish
        (each is bounded by the publisher's send deadline) before the publisher closes."""
        self._stop.set()
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            try:
                await reader
            except asyncio.CancelledError:
                pass
            except Exception:  # the loop catches Redis errors; anything else is a bug to see
                log.exception("verdict reply reader had failed")
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(WaiterClosedError("gateway stopping"))
        if self._publishing:
            await asyncio.wait(list(self._publishing), timeout=timeout_s)

    # ------------------------------------------------------------------------------------------
    # The waiting side

    async def check(self, exchange: ExchangeV1) -> WaitOutcome:
        """Publish ``exchange`` on the priority lane and wait for its verdict (never raises but
        for the caller's own cancellation)."""
        started = self._clock()
        exchange_id = exchange.event_id
        future: asyncio.Future[VerdictV1] = asyncio.get_running_loop().create_future()
        self._waiting[exchange_id] = future
        metrics.VERDICTS_WAITING.inc()
        outcome: Outcome = "error"
        verdict: VerdictV1 | None = None
        try:
            waiting = msgspec.structs.replace(exchange, reply_to=self.reply_to)
            publish = asyncio.create_task(self._publish(waiting))
            self._publishing.add(publish)
            publish.add_done_callback(self._publishing.discard)
            try:
                async with asyncio.timeout(self.timeout_s):
                    if not await asyncio.shield(publish):
                        outcome = "bus_unavailable"
                    else:
                        verdict = await future
                        outcome = "error" if _analysis_failed(verdict) else "verdict"
            except TimeoutError:
                outcome = "timeout"
            except WaiterClosedError:
                outcome = "error"
        finally:
            if self._waiting.get(exchange_id) is future:
                del self._waiting[exchange_id]
            if not future.done():
                future.cancel()
            metrics.VERDICTS_WAITING.dec()
        seconds = self._clock() - started
        self._waits[outcome].inc()
        self._wait_seconds[outcome].observe(seconds)
        return WaitOutcome(outcome, verdict, seconds)

    async def _publish(self, exchange: ExchangeV1) -> bool:
        """XADD to the priority lane; True when it is there. Otherwise the exchange goes to the
        buffered path (no ``reply_to``: nobody will wait for it) and False is returned."""
        try:
            await self._events.publish(EXCHANGES_PRIORITY, exchange)
        except BusUnavailable as exc:
            log.warning(
                "priority publish refused; exchange recorded on the buffered path",
                extra={"error": str(exc)[:200]},
            )
        except Exception:  # whatever failed, the trace must not be lost
            log.exception("priority publish failed; exchange recorded on the buffered path")
        else:
            return True
        if not self._events.enqueue(EXCHANGES, msgspec.structs.replace(exchange, reply_to=None)):
            metrics.EVENTS_DROPPED.labels(EXCHANGES).inc()
        return False

    # ------------------------------------------------------------------------------------------
    # The reading side

    async def _read_loop(self) -> None:
        while not self._stop.is_set():
            try:
                reply: Any = await self._redis.xread(
                    {self._key: self.last_id}, count=self._batch, block=self._block_ms
                )
                if reply:
                    self._untrimmed += self._deliver(reply)
                if self._untrimmed and (not reply or self._untrimmed >= TRIM_EVERY):
                    # Everything up to the last id read goes: nobody else reads this stream.
                    await self._redis.xtrim(
                        self._key, minid=format_id(id_after(parse_id(self.last_id)))
                    )
                    self._untrimmed = 0
            except (RedisError, OSError, TimeoutError) as exc:
                metrics.REPLY_READER_ERRORS.inc()
                delay = self._backoff.next()
                log.warning(
                    "reply stream read failed; retrying",
                    extra={"error": str(exc)[:200] or type(exc).__name__, "retry_in_s": delay},
                )
                if await sleep_or_stop(delay, self._stop):
                    return
                continue
            self._backoff.reset()

    def _deliver(self, reply: Any) -> int:
        """Resolve the futures of the verdicts in one XREAD reply; ``last_id`` moves past them.
        Returns how many entries there were."""
        items = reply.items() if isinstance(reply, dict) else reply
        n = 0
        for _key, entries in items:
            for entry_id, fields in entries:
                self.last_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                self.resolve(dict(fields or {}))
                n += 1
        return n

    def resolve(self, fields: dict[bytes, bytes]) -> bool:
        """Hand one reply entry to the call waiting on it; False when nobody waits (or it is
        not a verdict)."""
        try:
            event = decode_fields(fields)
        except DecodeError as exc:
            self._replies["invalid"].inc()
            log.warning("unreadable entry on the reply stream", extra={"error": str(exc)[:200]})
            return False
        if not isinstance(event, VerdictV1):
            self._replies["invalid"].inc()
            return False
        future = self._waiting.get(event.meta.exchange_id)
        if future is None or future.done():
            self._replies["unknown"].inc()
            return False
        future.set_result(event)
        self._replies["matched"].inc()
        return True


def _analysis_failed(verdict: VerdictV1) -> bool:
    checkpoint = verdict.checkpoint
    return checkpoint is not None and checkpoint.synthetic_reason == ANALYSIS_FAILED
