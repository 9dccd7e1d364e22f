"""Bodies of the agent control endpoints: enforcement settings and containment
(self-hosting.md §2.3 "Enforcement", "Containment"; deviations in docs/api.md).

Request bodies forbid unknown fields, so a misspelt setting is a 400 naming it instead of a
silent no-op.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from smoltbot_contracts import ContainmentStatus, EnforcementMode, FailurePolicy, NudgeStrategy

__all__ = [
    "ContainmentChange",
    "ContainmentLogEntry",
    "ContainmentRequest",
    "ContainmentState",
    "EnforcementSettings",
    "EnforcementUpdate",
]

SettableMode = Literal["observe", "nudge", "enforce"]
Reason = Annotated[str, msgspec.Meta(max_length=500)]


class EnforcementUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``PUT /v1/agents/{id}/enforcement``: every field optional, at least one given."""

    mode: SettableMode | None = None
    nudge_strategy: NudgeStrategy | None = None
    nudge_rate: Annotated[int, msgspec.Meta(ge=0, le=100)] | None = None
    nudge_threshold: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    failure_policy: FailurePolicy | None = None
    aip_enabled: bool | None = None
    aap_enabled: bool | None = None
    auto_containment_threshold: Annotated[int, msgspec.Meta(ge=0, le=1000)] | None = None
    """0 turns auto-containment off; otherwise at least 2 (checked by the handler: a range
    with a hole cannot be one constraint)."""


class EnforcementSettings(msgspec.Struct, kw_only=True):
    """An agent's enforcement settings as the gateway and the verifier apply them."""

    agent_id: str
    enforcement_mode: EnforcementMode
    nudge_strategy: NudgeStrategy
    nudge_rate: int
    nudge_threshold: int
    failure_policy: FailurePolicy | None
    aip_enabled: bool
    aap_enabled: bool
    auto_containment_threshold: int
    cfg_version: int
    updated: bool | None = None
    """PUT only: whether this request changed the settings."""
    cfg_synced: bool | None = None
    """PUT only: whether ``cfg:{agent}`` (what gateways read) was written too; false means the
    change is committed in PostgreSQL and the reconcile loop writes it within seconds."""


class ContainmentRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST .../pause`` and ``.../kill``; ``resume`` and ``reactivate`` take it too."""

    reason: Reason | None = None


class ContainmentChange(msgspec.Struct, kw_only=True):
    """The answer of ``pause``, ``kill``, ``resume`` and ``reactivate``."""

    agent_id: str
    containment_status: ContainmentStatus
    previous_status: ContainmentStatus
    contained_at: datetime | None
    contained_by: str | None
    containment_reason: str | None
    cfg_version: int
    cfg_synced: bool


class ContainmentLogEntry(msgspec.Struct, kw_only=True):
    """One containment change: an operator's (through the api) or the verifier's auto_pause."""

    id: str
    action: str
    actor: str
    reason: str
    previous_status: ContainmentStatus | None
    new_status: ContainmentStatus
    checkpoint_id: str | None
    consecutive_violations: int | None
    threshold: int | None
    decided_at: datetime
    created_at: datetime


class ContainmentState(msgspec.Struct, kw_only=True):
    """``GET .../containment``: the status gateways enforce, and the log (newest first)."""

    agent_id: str
    status: ContainmentStatus
    contained_at: datetime | None
    contained_by: str | None
    containment_reason: str | None
    auto_containment_threshold: int
    cfg_version: int
    log: list[ContainmentLogEntry]
    total: int
    limit: int
    offset: int
