"""Alignment cards as pure functions: the AAP -> AIP card view (protocols.md §1.4), the org
template merge (§1.3), the conscience-values layering (§4.2) and the resolution of a stored
``card:{agent}`` record into the card checks run against (architecture §4).

Tolerant on purpose: cards come from operators and older tooling, so a malformed section yields an
empty one rather than an exception — the AAP verification reports card problems, not these views.
The api (when it publishes cards) and the verifier (at resolution) share these functions.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import aip
from aip import AlignmentCard, AlignmentCardValue, AutonomyEnvelope, EscalationTrigger
from smoltbot_contracts import CardRecord, ConscienceValue


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
    else the 1-based position; a definition's description is copied when it is a string.
    ``autonomy`` (unified) wins over ``autonomy_envelope`` (legacy), like the AAP 2.0.0 verifier.
    A null ``forbidden_actions`` becomes empty and a null trigger ``reason`` None (both render as
    absent in the AIP prompt); a trigger without ``action`` reads as ``escalate``.

    Decision (§1.4 has two rules): ``agent_description`` comes from
    ``extensions.mnemom.description`` only (the gateway's rule), not from the first
    ``description`` of any extension namespace (the old observer's).
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


# --- Org template merge (protocols.md §1.3) ----------------------------------------------------

ConscienceMode = Literal["augment", "replace"]


def _value_id(entry: Any) -> str | None:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, Mapping) and isinstance(entry.get("id"), str):
        return str(entry["id"])
    return None


def _union_declared(org: list[Any], agent: list[Any]) -> list[Any]:
    """Ordered union of declared entries by value id, org entries first (first entry kept)."""
    seen: set[str] = set()
    out: list[Any] = []
    for entry in [*org, *agent]:
        key = _value_id(entry)
        if key is None:
            out.append(entry)  # unreadable entry: kept, never deduplicated, never dropped
            continue
        if key not in seen:
            seen.add(key)
            out.append(entry)
    return out


def _union(org: list[Any], agent: list[Any]) -> list[Any]:
    out: list[Any] = []
    for entry in [*org, *agent]:
        if entry not in out:
            out.append(entry)
    return out


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def _envelope_key(card: Mapping[str, Any]) -> str:
    """The autonomy section a card uses: ``autonomy`` (unified) if present, else the legacy
    ``autonomy_envelope`` (also what a card with neither gets)."""
    return "autonomy" if isinstance(card.get("autonomy"), Mapping) else "autonomy_envelope"


def merge_org_template(
    agent_card: Mapping[str, Any] | None,
    template: Mapping[str, Any] | None,
    *,
    exempt: bool = False,
) -> dict[str, Any] | None:
    """The agent card with the org template merged in (protocols.md §1.3). Pure: inputs are
    never mutated, the result is a deep copy.

    * No agent card -> None. No template, or ``exempt`` -> a copy of the agent card, unchanged.
    * ``values.declared``: ordered union by value id, org entries first, then the agent's that
      are not there yet (declared entries may be ids or ``{id, ...}`` objects).
    * ``values.definitions``: the agent's, overlaid by the org's (org wins on a key clash).
    * ``bounded_actions`` and ``forbidden_actions``: ordered unions, org first.
    * ``escalation_triggers``: org list then agent list, concatenated without dedup.
    * Everything else (principal, audit, card_id, agent_id, extensions, version, dates, modes)
      comes from the agent card. Missing ``values`` / autonomy sections are created.

    Shapes (decision, §1.1 has two): the merged autonomy section is the one the *agent* card
    uses — ``autonomy`` when present (unified), else ``autonomy_envelope`` (legacy) — and the
    template's section is read from ``autonomy`` or ``autonomy_envelope``, so a legacy template
    merges into a unified card and vice versa (the AAP verifier prefers ``autonomy`` too).
    A malformed section (not an object / not a list) counts as empty.
    """
    if agent_card is None:
        return None
    merged: dict[str, Any] = copy.deepcopy(dict(agent_card))
    if template is None or exempt:
        return merged
    org = copy.deepcopy(dict(template))

    org_values = _mapping(org.get("values"))
    values = merged.get("values")
    values = dict(values) if isinstance(values, Mapping) else {}
    values["declared"] = _union_declared(
        _list(org_values.get("declared")), _list(values.get("declared"))
    )
    org_definitions = _mapping(org_values.get("definitions"))
    if org_definitions or "definitions" in values:
        values["definitions"] = {**_mapping(values.get("definitions")), **org_definitions}
    merged["values"] = values

    key = _envelope_key(merged)
    org_envelope = _mapping(org.get("autonomy") or org.get("autonomy_envelope"))
    envelope = merged.get(key)
    envelope = dict(envelope) if isinstance(envelope, Mapping) else {}
    for field in ("bounded_actions", "forbidden_actions"):
        envelope[field] = _union(_list(org_envelope.get(field)), _list(envelope.get(field)))
    envelope["escalation_triggers"] = [
        *_list(org_envelope.get("escalation_triggers")),
        *_list(envelope.get("escalation_triggers")),
    ]
    merged[key] = envelope
    return merged


# --- Conscience values layering (protocols.md §4.2) --------------------------------------------


def default_conscience_values() -> tuple[ConscienceValue, ...]:
    """The AIP package's default conscience values (ids ``boundary-*`` / ``fear-*``)."""
    return tuple(
        ConscienceValue(type=v.type, content=v.content, id=v.id)
        for v in aip.DEFAULT_CONSCIENCE_VALUES
        if isinstance(v, aip.ConscienceValue)
    )


def layer_conscience_values(
    agent_values: Sequence[ConscienceValue] | None,
    org_values: Sequence[ConscienceValue] | None,
    mode: ConscienceMode = "augment",
) -> tuple[ConscienceValue, ...] | None:
    """The conscience values an agent's analysis uses (protocols.md §4.2); None = AIP defaults.

    * Org values enabled (``org_values`` not None): ``replace`` -> org values only; ``augment``
      -> the AIP defaults, then the org values. The agent's own values are appended after.
    * No org values: the agent's own values alone when it has any, else None (the defaults).

    Decisions: an empty agent list counts as "none of its own" (so it never silences the
    defaults by accident); an enabled but empty org list in ``replace`` mode is the one way to
    run with no conscience values at all. Values are not deduplicated (the reference appends).
    """
    own = tuple(agent_values or ())
    if org_values is None:
        return own or None
    base = () if mode == "replace" else default_conscience_values()
    return (*base, *org_values, *own)


@dataclass(frozen=True, slots=True)
class EffectiveCard:
    """A ``CardRecord`` with its layers applied: the card checks run against."""

    card_id: str
    card: dict[str, Any]
    conscience_values: tuple[ConscienceValue, ...] | None
    """None = the AIP default conscience values."""


def resolve_record(record: CardRecord) -> EffectiveCard:
    """Merge a stored ``card:{agent}`` record's layers (org template, conscience values).

    ``card_id`` stays the agent card's: the merged card is the same card with org rules added,
    so traces that reference it keep matching (AAP ``card_reference`` check).
    """
    merged = merge_org_template(record.card, record.org_template)
    return EffectiveCard(
        card_id=record.card_id,
        card=merged if merged is not None else {},
        conscience_values=layer_conscience_values(
            record.conscience_values, record.org_conscience_values, record.conscience_mode
        ),
    )


# --- AIP provider names (protocols.md §4.6, §8.4) ----------------------------------------------

AIP_PROVIDERS: Mapping[str, str] = {
    "anthropic": "anthropic",
    "openai": "openai",
    "gemini": "google",
}
"""Our provider names -> the AIP adapter registry's keys. The registry knows ``google``, not
``gemini``; the reference gateway passed ``gemini`` and silently got the fallback adapter
(§8.4). Decision: map it. Unknown providers go to ``fallback``."""


def aip_provider(provider: str) -> str:
    """The AIP adapter registry key for one of our provider names."""
    return AIP_PROVIDERS.get(provider, "fallback")
