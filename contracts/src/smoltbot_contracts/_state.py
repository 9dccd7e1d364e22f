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
