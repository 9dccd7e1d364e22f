"""Shapes of the shared state kept in Redis (architecture §4)."""

from __future__ import annotations

from typing import Literal

import msgspec

from smoltbot_contracts._events import EnforcementMode, JSONObject

ContainmentStatus = Literal["active", "paused", "killed"]
NudgeStrategy = Literal["always", "sampling", "threshold", "off"]


class AgentConfig(msgspec.Struct, frozen=True, kw_only=True):
    """``cfg:{agent}``: what the gateway needs per call. Missing key = these defaults."""

    enforcement_mode: EnforcementMode = "observe"
    containment: ContainmentStatus = "active"
    nudge_strategy: NudgeStrategy = "always"
    aip_enabled: bool = True
    aap_enabled: bool = True
    cfg_version: int = 0


class ConscienceValue(msgspec.Struct, frozen=True, kw_only=True):
    type: Literal["BOUNDARY", "FEAR", "COMMITMENT", "BELIEF", "HOPE"]
    content: str
    id: str | None = None


class CardRecord(msgspec.Struct, frozen=True, kw_only=True):
    """``card:{agent}``: the active merged alignment card (AAP JSON) plus conscience values."""

    card_id: str
    card: JSONObject
    conscience_values: list[ConscienceValue] | None = None
    version: int = 0
