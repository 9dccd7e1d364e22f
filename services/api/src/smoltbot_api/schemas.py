"""Response bodies of the REST API (self-hosting.md §2.3), typed msgspec Structs.

Field names follow the table columns, so a row converts into its Struct with ``msgspec.convert``.
Free-form protocol documents (action, decision, concerns ...) stay JSON objects: the api serves
what the verifier stored and never rejects an older shape.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from smoltbot_contracts import (
    CheckpointCore,
    ContainmentStatus,
    EnforcementMode,
    NudgeStrategy,
)

__all__ = [
    "Agent",
    "AgentList",
    "Checkpoint",
    "CheckpointList",
    "Exchange",
    "ExchangeList",
    "Page",
    "Trace",
    "TraceList",
    "TraceVerification",
]

JSONValue = Any


class Agent(msgspec.Struct, kw_only=True):
    """An agent the gateway has seen, with its enforcement settings."""

    id: str
    agent_hash: str
    name: str | None
    first_seen_at: datetime
    last_seen_at: datetime
    enforcement_mode: EnforcementMode
    containment_status: ContainmentStatus
    nudge_strategy: NudgeStrategy
    auto_containment_threshold: int | None
    cfg_version: int
    created_at: datetime


class TraceVerification(msgspec.Struct, kw_only=True):
    """The AAP verification of a trace against the agent's card."""

    verified: bool
    similarity_score: float
    violations: list[JSONValue]
    warnings: list[JSONValue]


class Trace(msgspec.Struct, kw_only=True):
    """An AP-Trace; ``verification`` is null until the verifier's result was persisted."""

    trace_id: str
    exchange_id: uuid.UUID
    agent_id: str
    card_id: str
    session_id: str
    timestamp: datetime
    action: dict[str, JSONValue]
    decision: dict[str, JSONValue]
    escalation: dict[str, JSONValue] | None
    context: dict[str, JSONValue] | None
    verification: TraceVerification | None
    created_at: datetime


class Checkpoint(CheckpointCore, frozen=True, kw_only=True):
    """An AIP integrity checkpoint with its attestation columns (null until signing lands)."""

    exchange_id: uuid.UUID
    concerns: list[JSONValue]
    reasoning_summary: str
    conscience_context: dict[str, JSONValue]
    window_position: dict[str, JSONValue]
    analysis_metadata: dict[str, JSONValue]
    linked_trace_id: str | None
    synthetic: bool
    synthetic_reason: str | None
    recommended_action: str
    proceed: bool
    analyzer_verdict: str | None
    input_commitment: str | None
    chain_hash: str | None
    prev_chain_hash: str | None
    merkle_leaf_index: int | None
    issuer_signature: str | None
    signing_key_id: str | None
    certificate_id: str | None
    created_at: datetime


class Exchange(msgspec.Struct, kw_only=True):
    """Usage metadata of one proxied call (never prompts, responses or keys)."""

    exchange_id: uuid.UUID
    agent_id: str
    session_id: str
    provider: str
    model: str | None
    method: str
    path: str
    status: int
    streamed: bool
    started_at: datetime
    completed_at: datetime
    upstream_ms: float
    total_ms: float
    ttfb_ms: float | None
    input_tokens: int | None
    output_tokens: int | None
    gateway_instance: str
    created_at: datetime


class Page(msgspec.Struct, kw_only=True):
    """What every list answer carries besides its rows (a subclass's rows field comes first)."""

    total: int
    limit: int
    offset: int


class AgentList(Page):
    agents: list[Agent]


class TraceList(Page):
    traces: list[Trace]


class CheckpointList(Page):
    checkpoints: list[Checkpoint]


class ExchangeList(Page):
    exchanges: list[Exchange]
