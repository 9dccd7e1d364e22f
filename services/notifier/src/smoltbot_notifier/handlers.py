"""What the notifier does with each event.

Webhook delivery (signed, retried from PostgreSQL) lands with issue D; until then the notifier
is a real consumer group that keeps its position on ``verdicts`` and ``control`` and counts what
it would have notified, so the group exists and its lag is meaningful from day one.
"""

from __future__ import annotations

from collections.abc import Sequence

from smoltbot_bus import Delivery, Output
from smoltbot_contracts import ControlV1, VerdictV1

from smoltbot_notifier.metrics import EVENTS


async def handle(batch: Sequence[Delivery]) -> Sequence[Output]:
    for delivery in batch:
        event = delivery.event
        if isinstance(event, VerdictV1):
            verdict = event.checkpoint.verdict if event.checkpoint else "none"
            EVENTS.labels("verdict.v1", verdict).inc()
        elif isinstance(event, ControlV1):
            EVENTS.labels("control.v1", "none").inc()
        else:
            EVENTS.labels(type(event).__name__, "none").inc()
    return []
