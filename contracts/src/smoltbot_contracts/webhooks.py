"""Org webhook event types and filters (self-hosting.md §3 A; docs/api.md "Webhooks").

Shared by the api (which validates an endpoint's ``event_types``) and the notifier (which picks
the endpoints an event goes to with :func:`subscribed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

__all__ = ["EVENT_TYPES", "TEST_EVENT", "WILDCARDS", "is_valid_filter", "subscribed"]

#: The synthetic event ``POST /v1/webhooks/{id}/test`` enqueues (sent whatever the filter).
TEST_EVENT: Final = "webhook.test"

#: Event types an endpoint may subscribe to: the AIP (gateway/verifier), AAP (observer) and
#: the platform events a single-tenant deployment can emit. Reputation, team and subscription
#: events of the hosted product are not part of it.
EVENT_TYPES: Final[tuple[str, ...]] = (
    "integrity.checkpoint",
    "integrity.violation",
    "drift.detected",
    "drift.resolved",
    "conscience.escalation",
    "conscience.values_updated",
    "agent.paused",
    "agent.resumed",
    "agent.killed",
    "trace.created",
    "trace.verified",
    "trace.failed",
    "trace.escalation_required",
    "policy.violation",
    "quota.warning",
    "quota.exceeded",
)

#: Filters matching several types: every ``trace.*`` event, or every event.
WILDCARDS: Final[tuple[str, ...]] = ("trace.*", "*")


def is_valid_filter(entry: str) -> bool:
    return entry in EVENT_TYPES or entry in WILDCARDS


def subscribed(event_types: Sequence[str], event_type: str) -> bool:
    """Whether an endpoint with these filters receives ``event_type`` (empty = everything)."""
    if not event_types or event_type == TEST_EVENT:
        return True
    for entry in event_types:
        if entry in ("*", event_type):
            return True
        if entry.endswith(".*") and event_type.startswith(entry[:-1]):
            return True
    return False
