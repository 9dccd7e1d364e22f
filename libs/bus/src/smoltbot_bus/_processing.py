"""Handling one batch (architecture §3.2): decode, run the handler under heartbeat, then commit,
or do what :class:`~smoltbot_bus._policy.FailurePolicy` decides for the failure."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from smoltbot_contracts.codec import DecodeError, decode_fields
from smoltbot_logging import bind_event
from smoltbot_resilience import Backoff, sleep_or_stop

from smoltbot_bus._commit import Committer
from smoltbot_bus._crypto import EventCipher
from smoltbot_bus._dlq import DeadLetters
from smoltbot_bus._entries import Entry
from smoltbot_bus._heartbeat import Heartbeat
from smoltbot_bus._metrics import BATCH_SECONDS, ENTRIES
from smoltbot_bus._policy import Action, Decision, FailurePolicy, LastErrors
from smoltbot_bus._types import Delivery, Handler, Output

log = logging.getLogger(__name__)


class Processor:
    """Turns entries into handler calls and their outcome into commits or dead letters."""

    def __init__(
        self,
        handler: Handler,
        *,
        policy: FailurePolicy,
        heartbeat: Heartbeat,
        committer: Committer,
        dead_letters: DeadLetters,
        cipher: EventCipher,
        stop: asyncio.Event,
    ) -> None:
        self._handler = handler
        self._policy = policy
        self._heartbeat = heartbeat
        self._committer = committer
        self._dead_letters = dead_letters
        self._cipher = cipher
        self._stop = stop
        self.last_errors = LastErrors()

    async def process(self, entries: Sequence[Entry]) -> None:
        """Handle a batch; undecodable entries go to the dead-letter queue first."""
        deliveries: list[Delivery] = []
        for entry in entries:
            try:
                event = decode_fields(entry.fields, self._cipher.open(entry.fields))
            except DecodeError as exc:
                await self._dead_letter(entry, self._policy.undecodable(exc).reason)
                continue
            deliveries.append(
                Delivery(
                    stream=entry.stream,
                    entry_id=entry.entry_id,
                    event=event,
                    deliveries=entry.deliveries,
                )
            )
        if deliveries:
            started = time.perf_counter()
            if await self._handle(deliveries):
                BATCH_SECONDS.observe(time.perf_counter() - started)

    async def dead_letter_exhausted(self, entries: Sequence[Entry]) -> None:
        """Entries the reaper found delivered ``max_deliveries`` times, with their last error."""
        for entry in entries:
            reason = self._policy.exhausted_reason(self.last_errors.pop(entry.entry_id))
            await self._dead_letter(entry, reason)

    async def _handle(self, deliveries: Sequence[Delivery]) -> bool:
        """True when the batch was committed as it is (not held, isolated or failed)."""
        try:
            outputs = await self._heartbeat.run(deliveries, self._handler(deliveries))
        except Exception as exc:  # noqa: BLE001 - the failure policy decides what follows
            await self._follow(self._decide(deliveries, exc), deliveries)
            return False
        await self._commit(outputs, deliveries)
        return True

    def _decide(
        self, deliveries: Sequence[Delivery], exc: Exception, *, held: bool = False
    ) -> Decision:
        return self._policy.on_error(
            exc, deliveries=deliveries[0].deliveries, batch_size=len(deliveries), held=held
        )

    async def _follow(self, decision: Decision, deliveries: Sequence[Delivery]) -> None:
        if decision.action is Action.HOLD:
            await self._hold(deliveries, decision)
        elif decision.action is Action.ISOLATE:
            log.warning(
                "batch failed; retrying entries one by one",
                extra={"n": len(deliveries), "error": decision.reason[:300]},
            )
            for delivery in deliveries:
                await self._handle([delivery])
        elif decision.action is Action.DEAD_LETTER:
            await self._dead_letters.delivery(deliveries[0], decision.reason)
            self.last_errors.forget([deliveries[0].entry_id])
        else:
            self._leave_pending(deliveries[0], decision.reason)

    async def _hold(self, deliveries: Sequence[Delivery], decision: Decision) -> None:
        """A dependency is down: keep the batch claimed and retry it in place, pausing longer
        each time, until it passes, fails differently or the consumer stops."""
        backoff = Backoff(0.5, 5.0)
        while not self._stop.is_set():
            delay = backoff.next()
            ENTRIES.labels(deliveries[0].stream, "dependency_wait").inc(len(deliveries))
            log.warning(
                "dependency unavailable; holding the batch and retrying",
                extra={"n": len(deliveries), "in_s": delay, "error": decision.reason[:200]},
            )
            await self._heartbeat.run(deliveries, sleep_or_stop(delay, self._stop))
            if self._stop.is_set():
                return  # entries stay pending: re-handled on restart or claimed by a peer
            try:
                outputs = await self._heartbeat.run(deliveries, self._handler(deliveries))
            except Exception as exc:  # noqa: BLE001 - the failure policy decides what follows
                decision = self._decide(deliveries, exc, held=True)
                if decision.action is Action.HOLD:
                    continue
                await self._follow(decision, deliveries)
                return
            await self._commit(outputs, deliveries)
            return

    def _leave_pending(self, delivery: Delivery, reason: str) -> None:
        with bind_event(getattr(delivery.event, "event_id", None)):
            log.warning(
                "handler failed; entry stays pending for redelivery",
                extra={
                    "stream": delivery.stream,
                    "deliveries": delivery.deliveries,
                    "error": reason,
                },
            )
        ENTRIES.labels(delivery.stream, "retry_pending").inc()
        self.last_errors.remember(delivery.entry_id, reason)

    async def _commit(self, outputs: Sequence[Output], deliveries: Sequence[Delivery]) -> None:
        await self._committer.commit(outputs, deliveries)
        self.last_errors.forget(d.entry_id for d in deliveries)

    async def _dead_letter(self, entry: Entry, reason: str) -> None:
        await self._dead_letters.entry(entry, reason)
        self.last_errors.forget([entry.entry_id])
