"""Bodies of the card, org card template and conscience-value endpoints (docs/api.md, "Cards
and conscience values"). Cards and templates are free-form AAP JSON objects: the api checks
their shape (``card_shape``) and stores them as given."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec
from smoltbot_contracts import ConscienceValue

from smoltbot_api.schemas import Page

__all__ = [
    "AgentConscienceValues",
    "CacheOutcome",
    "CardHistory",
    "CardLayers",
    "CardPublished",
    "CardVersion",
    "CardView",
    "ConscienceMode",
    "ConscienceValuesReset",
    "OrgCardExempt",
    "OrgCardTemplate",
    "OrgConscienceValues",
]

JSONObject = dict[str, Any]
ConscienceMode = Literal["augment", "replace"]

CacheOutcome = Literal["written", "same", "stale", "failed"]
"""What the write-through did to ``card:{agent}``: ``written``; ``same`` (that version was
there); ``stale`` (a newer one was there); ``failed`` (Redis did not answer: PostgreSQL holds the
change and the next card read or write of the agent repairs the key)."""


class CardLayers(msgspec.Struct, kw_only=True):
    """The layers ``card:{agent}`` keeps apart and readers merge (architecture §4)."""

    org_template: JSONObject | None
    """The org template applied to this agent (None: disabled, unset or the agent is exempt)."""
    org_template_enabled: bool
    org_card_exempt: bool
    conscience_values: list[ConscienceValue] | None
    """The agent's own values (None: none of its own)."""
    org_conscience_values: list[ConscienceValue] | None
    """The org's values (None: the org has custom values disabled)."""
    conscience_mode: ConscienceMode


class CardView(msgspec.Struct, kw_only=True):
    """``GET /v1/agents/{id}/card``: the active card, the merged view and the raw layers."""

    agent_id: str
    card_id: str
    version: int
    """The card's version (the default card is 0, each publish adds 1)."""
    record_version: int
    """The version of the whole record (card, agent and org layers) ``card:{agent}`` carries."""
    is_default: bool
    """True while the agent has the default card the gateway issued on first sight."""
    issued_at: datetime | None
    card: JSONObject
    """The agent's own card, as published."""
    merged: JSONObject
    """The card the verifier and observer check against (org template merged in)."""
    effective_conscience_values: list[ConscienceValue]
    """The conscience values the analysis uses (defaults, org and own values layered)."""
    layers: CardLayers
    cache: CacheOutcome | None = None
    """Set when this read repaired ``card:{agent}`` (missing or older than PostgreSQL)."""


class CardPublished(msgspec.Struct, kw_only=True):
    agent_id: str
    card_id: str
    version: int
    record_version: int
    cache: CacheOutcome


class CardVersion(msgspec.Struct, kw_only=True):
    card_id: str
    version: int
    is_active: bool
    issued_at: datetime
    created_at: datetime
    conscience_values: list[ConscienceValue] | None
    card: JSONObject


class CardHistory(Page):
    """An agent's card versions, newest first."""

    agent_id: str
    cards: list[CardVersion]


class OrgCardTemplate(msgspec.Struct, kw_only=True):
    enabled: bool
    template: JSONObject | None
    version: int
    updated_at: datetime | None
    exempt_agents: list[str]
    agents_rewritten: int | None = None
    """On a change: how many agents' ``card:{agent}`` were rewritten."""


class OrgConscienceValues(msgspec.Struct, kw_only=True):
    enabled: bool
    mode: ConscienceMode
    values: list[ConscienceValue]
    version: int
    updated_at: datetime | None
    agents_rewritten: int | None = None


class AgentConscienceValues(msgspec.Struct, kw_only=True):
    agent_id: str
    conscience_values: list[ConscienceValue]
    """The agent's own values (empty: none of its own)."""
    is_default: bool
    """True when the agent has none of its own (the defaults / org layers apply)."""
    effective_conscience_values: list[ConscienceValue]
    cache: CacheOutcome | None = None


class ConscienceValuesReset(msgspec.Struct, kw_only=True):
    agent_id: str
    reset_to_defaults: bool
    cache: CacheOutcome


class OrgCardExempt(msgspec.Struct, kw_only=True):
    agent_id: str
    org_card_exempt: bool
    cache: CacheOutcome
