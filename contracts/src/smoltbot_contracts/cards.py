"""The default alignment card an agent gets on first sight (protocols.md §1.2)."""

from __future__ import annotations

from datetime import datetime

from smoltbot_contracts._events import JSONObject
from smoltbot_contracts.ids import card_id

DEFAULT_DECLARED_VALUES = (
    "transparency",
    "accuracy",
    "helpfulness",
    "safety",
    "autonomy",
    "honesty",
    "quality",
)


def default_card(agent: str, issued_at: datetime) -> JSONObject:
    """The legacy-shape AAP card smoltbot issues to a new agent (bounds only ``inference``)."""
    return {
        "aap_version": "0.1.0",
        "card_id": card_id(agent),
        "agent_id": agent,
        "issued_at": issued_at.isoformat().replace("+00:00", "Z"),
        "principal": {"type": "human", "relationship": "delegated_authority"},
        "values": {"declared": list(DEFAULT_DECLARED_VALUES)},
        "autonomy_envelope": {
            "bounded_actions": ["inference"],
            "escalation_triggers": [],
            "forbidden_actions": [],
        },
        "audit_commitment": {"retention_days": 365, "queryable": True},
    }
