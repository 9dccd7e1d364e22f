"""Notifier metric catalogue (never labelled by agent id)."""

from __future__ import annotations

from smoltbot_metrics import Counter

EVENTS = Counter(
    "smoltbot_notifier_events_total",
    "Events the notifier consumed, by event type (verdict.v1, control.v1) and AIP verdict "
    "(clear, review_needed, boundary_violation; none for control events and verdicts "
    "without a checkpoint).",
    ["type", "verdict"],
)
