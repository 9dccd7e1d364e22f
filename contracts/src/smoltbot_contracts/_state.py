"""Shapes of the shared state kept in Redis (architecture §4)."""

from __future__ import annotations

from typing import ClassVar, Literal

import msgspec

from smoltbot_contracts._events import EnforcementMode, JSONObject, Verdict

ContainmentStatus = Literal["active", "paused", "killed"]
NudgeStrategy = Literal["always", "sampling", "threshold", "off"]
FailurePolicy = Literal["fail_open", "fail_closed"]
NudgeStatus = Literal["pending", "delivered", "expired"]


class AgentConfig(msgspec.Struct, frozen=True, kw_only=True):
    """``cfg:{agent}``: what the gateway needs per call. Missing key = these defaults."""

    enforcement_mode: EnforcementMode = "observe"
    containment: ContainmentStatus = "active"
    nudge_strategy: NudgeStrategy = "always"
    aip_enabled: bool = True
    aap_enabled: bool = True
    cfg_version: int = 0
    failure_policy: FailurePolicy | None = None
    """What a waiting call gets when its verdict does not come (timeout, Redis, analysis
    failure): ``fail_open`` relays the answer, ``fail_closed`` answers 403. None = the
    gateway's ``SMOLTBOT_GATEWAY_FAILURE_POLICY``."""
    nudge_rate: int = 100
    """``sampling`` strategy: the share of boundary violations (percent, 0-100) that become a
    nudge, chosen by a hash of the exchange id (so a redelivery decides the same)."""
    nudge_threshold: int = 3
    """``threshold`` strategy: a boundary violation becomes a nudge once the session has had
    this many of them (this one included)."""
    auto_containment_threshold: int = 5
    """Agents in ``nudge``/``enforce`` mode are paused by the verifier after this many
    consecutive (non-synthetic) boundary violations; 0 turns auto-containment off."""


class ConscienceValue(msgspec.Struct, frozen=True, kw_only=True):
    type: Literal["BOUNDARY", "FEAR", "COMMITMENT", "BELIEF", "HOPE"]
    content: str
    id: str | None = None


ConscienceMode = Literal["augment", "replace"]


class CardRecord(msgspec.Struct, frozen=True, kw_only=True):
    """``card:{agent}``: the agent's active alignment card (AAP JSON, legacy or unified shape),
    its conscience values, and the org-level layers the api resolved for this agent.

    The record keeps the layers apart and readers merge them at resolution
    (``smoltbot_analysis.cards.resolve_record``; protocols.md §1.3, §4.2), so one stored card
    always shows where each rule came from and an org change is one rewrite of the org fields:

    * ``card`` / ``card_id``: the agent's own card (the persister seeds the default card).
    * ``conscience_values``: the agent's own conscience values; None or empty = none of its own.
    * ``org_template``: the org card template, written only while the org has the template
      enabled and the agent is not exempt (``org_card_exempt``); None = no template applies.
    * ``org_conscience_values``: the org's custom conscience values, written only while the org
      has them enabled; None = the org has none (the agent's own, else the AIP defaults, apply).
    * ``conscience_mode``: how org values combine with the AIP defaults: ``augment`` (defaults
      then org values) or ``replace`` (org values only). The agent's own are appended either way.

    Records written before these fields existed decode with the defaults (no org layers).
    """

    card_id: str
    card: JSONObject
    conscience_values: list[ConscienceValue] | None = None
    version: int = 0
    org_template: JSONObject | None = None
    org_conscience_values: list[ConscienceValue] | None = None
    conscience_mode: ConscienceMode = "augment"


class Nudge(msgspec.Struct, frozen=True, kw_only=True):
    """One conscience nudge (architecture §4, gateway reference §2.3): a field of the hash
    ``nudges:{agent}`` (nudge id -> this struct as JSON), indexed while pending by the sorted set
    ``nudges:{agent}:pending`` (score ``created_ms``). The verifier writes it once (HSETNX on the
    derived id); the gateway's claim script marks it ``delivered`` (or ``expired``) in place.

    ``text`` is this nudge's paragraph of the notice the gateway injects (concerns and verdict,
    never the thinking itself); ``created_ms`` is the exchange's completion time, so a replayed
    trace writes the same record.
    """

    CLAIM_LIMIT: ClassVar[int] = 5
    """At most this many nudges go into one request, oldest first."""
    MAX_AGE_MS: ClassVar[int] = 4 * 3_600_000
    """Pending nudges older than this are never delivered: the claim marks them expired."""
    RETENTION_MS: ClassVar[int] = 24 * 3_600_000
    """Records (any status) are pruned this long after their creation; the keys expire this
    long after the last write."""

    id: str
    agent_id: str
    checkpoint_id: str
    exchange_id: str
    session_id: str
    verdict: Verdict = "boundary_violation"
    text: str
    created_ms: int
    status: NudgeStatus = "pending"
    delivered_ms: int | None = None
    delivered_event_id: str | None = None
    """The gateway event (exchange) id of the request the nudge was injected into."""
    expired_ms: int | None = None
