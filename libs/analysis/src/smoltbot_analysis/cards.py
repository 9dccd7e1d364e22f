"""AAP card (legacy or unified shape) -> the slim AIP card view (protocols.md §1.4).

Tolerant on purpose: cards come from operators and older tooling, so a malformed section yields an
empty one rather than an exception — the AAP verification reports card problems, not this view.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aip import AlignmentCard, AlignmentCardValue, AutonomyEnvelope, EscalationTrigger


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, str)]


def _declared_ids(values: Mapping[str, Any]) -> list[str]:
    """Declared value ids; newer cards may declare ``{id, ...}`` objects instead of strings."""
    declared = values.get("declared")
    if not isinstance(declared, list):
        return []
    ids: list[str] = []
    for item in declared:
        if isinstance(item, str):
            ids.append(item)
        elif isinstance(item, Mapping) and isinstance(item.get("id"), str):
            ids.append(item["id"])
    return ids


def _agent_description(card: Mapping[str, Any]) -> str | None:
    mnemom = _mapping(_mapping(card.get("extensions")).get("mnemom"))
    description = mnemom.get("description")
    return description if isinstance(description, str) and description else None


def aip_card_view(card: Mapping[str, Any]) -> AlignmentCard:
    """Build the AIP ``AlignmentCard`` from an AAP card dict.

    Values keep declaration order; priority is ``definitions[id].priority`` when it is an int,
    else the 1-based position. ``autonomy`` (unified) wins over ``autonomy_envelope`` (legacy),
    like the AAP 2.0.0 verifier.
    """
    values = _mapping(card.get("values"))
    definitions = _mapping(values.get("definitions"))
    card_values: list[AlignmentCardValue] = []
    for position, name in enumerate(_declared_ids(values), start=1):
        definition = _mapping(definitions.get(name))
        priority = definition.get("priority")
        description = definition.get("description")
        card_values.append(
            AlignmentCardValue(
                name=name,
                priority=priority
                if isinstance(priority, int) and not isinstance(priority, bool)
                else position,
                description=description if isinstance(description, str) else None,
            )
        )

    envelope = _mapping(card.get("autonomy") or card.get("autonomy_envelope"))
    triggers: list[EscalationTrigger] = []
    raw_triggers = envelope.get("escalation_triggers")
    for raw in raw_triggers if isinstance(raw_triggers, list) else []:
        trigger = _mapping(raw)
        condition = trigger.get("condition")
        if not isinstance(condition, str):
            continue
        action = trigger.get("action")
        reason = trigger.get("reason")
        triggers.append(
            EscalationTrigger(
                condition=condition,
                action=action if isinstance(action, str) else "escalate",
                reason=reason if isinstance(reason, str) else None,
            )
        )

    card_id = card.get("card_id")
    return AlignmentCard(
        card_id=card_id if isinstance(card_id, str) else "",
        values=card_values,
        autonomy_envelope=AutonomyEnvelope(
            bounded_actions=_strings(envelope.get("bounded_actions")),
            forbidden_actions=_strings(envelope.get("forbidden_actions")),
            escalation_triggers=triggers,
        ),
        agent_description=_agent_description(card),
    )


def action_name(entry: str) -> str:
    """The matchable part of a card action entry (``"name: description"`` -> ``"name"``)."""
    head, sep, _ = entry.partition(":")
    return head.strip() if sep and head.strip() else entry.strip()
