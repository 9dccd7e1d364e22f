"""The batch handler: one transaction per batch, acked by the bus only after it committed."""

from __future__ import annotations

import logging
import time
from collections import Counter as Tally
from collections.abc import Sequence

import psycopg
from psycopg_pool import PoolTimeout
from redis.asyncio import Redis
from smoltbot_bus import Delivery, InvalidEvent, Output, Retryable
from smoltbot_contracts import AgentV1, ControlV1, VerdictV1, event_type
from smoltbot_db import DEFAULT_COPY_THRESHOLD, Pool
from smoltbot_logging import bind_event
from smoltbot_resilience import CircuitBreaker

from smoltbot_persister.metrics import (
    BATCH_SECONDS,
    CARD_CACHE,
    CONTROL_IGNORED,
    EVENTS,
    ROWS_WRITTEN,
)
from smoltbot_persister.sinks import (
    InvalidRow,
    WritePlan,
    active_cards,
    seed_card_cache,
    write_plan,
)

__all__ = ["Persister"]

log = logging.getLogger(__name__)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:300]


class Persister:
    """Turns a batch of ``verdicts`` / ``agents`` / ``control`` deliveries into rows.

    Safe to call again with any subset of a batch (the bus retries a failed batch entry by entry):
    every write is an idempotent upsert and the card cache is only seeded when absent.
    """

    def __init__(
        self,
        pool: Pool,
        redis: Redis,
        prefix: str,
        *,
        copy_threshold: int = DEFAULT_COPY_THRESHOLD,
        breaker_s: float = 2.0,
    ) -> None:
        self._pool = pool
        # Open after one connection failure: while PostgreSQL is down, batches are held at once
        # instead of each waiting for a pool timeout.
        self._database = CircuitBreaker(threshold=1, cooldown_s=breaker_s)
        self._redis = redis
        self._prefix = prefix
        self._copy_threshold = copy_threshold

    def _plan(self, batch: Sequence[Delivery]) -> tuple[WritePlan, Tally[str], Tally[str]]:
        plan = WritePlan()
        types: Tally[str] = Tally()
        ignored: Tally[str] = Tally()
        for delivery in batch:
            event = delivery.event
            try:
                if isinstance(event, VerdictV1):
                    plan.add_verdict(event)
                elif isinstance(event, AgentV1):
                    plan.add_agent(event)
            except InvalidRow as exc:
                raise InvalidEvent(str(exc)) from None
            if isinstance(event, ControlV1):
                ignored[event.kind] += 1
            elif not isinstance(event, VerdictV1 | AgentV1):
                raise InvalidEvent(
                    f"{event_type(event)} is not handled by the persister "
                    f"(stream {delivery.stream!r})"
                )
            types[event_type(event)] += 1
        return plan, types, ignored

    async def handle(self, batch: Sequence[Delivery]) -> Sequence[Output]:
        started = time.perf_counter()
        plan, types, ignored = self._plan(batch)
        if not self._database.allow():
            # The bus retries a failed batch entry by entry: without this, each entry would wait
            # for a pool timeout while PostgreSQL is down and stall the consume loop for minutes.
            raise Retryable("PostgreSQL unavailable (recent connection failure)")
        try:
            async with self._pool.connection() as conn, conn.transaction():
                written = await write_plan(conn, plan, copy_threshold=self._copy_threshold)
                cards = await active_cards(conn, plan.card_agents)
        except InvalidRow as exc:
            # Known-bad content found while writing (e.g. an agent id collision): alone in the
            # batch it goes to the DLQ with its reason; in a batch, let the bus isolate it.
            if len(batch) == 1:
                raise InvalidEvent(str(exc)) from exc
            raise
        except (psycopg.DataError, psycopg.IntegrityError) as exc:
            # Data the database rejects will be rejected on every retry. Alone in the batch it
            # is this entry's fault (DLQ now); in a larger batch let the bus retry one by one.
            if len(batch) == 1:
                with bind_event(getattr(batch[0].event, "event_id", None)):
                    log.warning("row rejected by PostgreSQL", extra={"error": _first_line(exc)})
                raise InvalidEvent(f"rejected by PostgreSQL: {_first_line(exc)}") from exc
            raise
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
            # The code runs ahead of the schema (rollout before `smoltbot migrate`): wait for
            # the migration instead of dead-lettering every event.
            raise Retryable(f"schema not migrated yet: {_first_line(exc)}") from exc
        except (psycopg.OperationalError, PoolTimeout) as exc:
            # A database outage is nobody's fault in the batch: hold it and retry in place
            # (no delivery counted), instead of walking good events towards the DLQ.
            self._database.failure()
            raise Retryable(f"PostgreSQL unavailable: {_first_line(exc)}") from exc
        self._database.success()
        # Committed. The cache seed may fail (Redis down): the bus then redelivers and the
        # upserts above write nothing the second time.
        seeded = await seed_card_cache(self._redis, self._prefix, cards)

        for table, n in written.items():
            ROWS_WRITTEN.labels(table).inc(n)
        for kind, n in types.items():
            EVENTS.labels(kind).inc(n)
        for kind, n in ignored.items():
            CONTROL_IGNORED.labels(kind).inc(n)
            log.info("control event acknowledged without effect", extra={"kind": kind, "n": n})
        for was_set in seeded.values():
            CARD_CACHE.labels("set" if was_set else "present").inc()
        BATCH_SECONDS.observe(time.perf_counter() - started)
        return []
