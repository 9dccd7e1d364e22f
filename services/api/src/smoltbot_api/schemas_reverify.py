"""Bodies of the re-verify endpoints (self-hosting.md §2.3 "Checkpoints and timeline";
deviations in docs/api.md "Re-verify")."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec
from smoltbot_contracts import Verdict

__all__ = [
    "AapResult",
    "AipResult",
    "ReverifyAap",
    "ReverifyAip",
    "ReverifyError",
    "ReverifyRun",
]


class ReverifyError(msgspec.Struct, kw_only=True):
    """A stored trace or checkpoint that could not be re-checked (e.g. not decodable)."""

    id: str
    error: str


class AapResult(msgspec.Struct, kw_only=True):
    trace_id: str
    previous_verified: bool | None  # what the verifier recorded (None: never verified)
    verified: bool  # against the current card
    violations: list[str]  # violation types found now


class ReverifyAap(msgspec.Struct, kw_only=True):
    """``POST /v1/agents/{id}/reverify``: the newest traces (after ``offset``) against the
    agent's current card."""

    run_id: str
    agent_id: str
    card_id: str
    total_traces_in_batch: int
    offset: int
    limit: int
    reverified: int
    still_violating: int  # failed before and fail now
    now_clean: int  # failed before, pass now
    newly_violating: int  # passed before (or never verified), fail now
    results: list[AapResult]
    errors: list[ReverifyError]
    created_at: datetime


class AipResult(msgspec.Struct, kw_only=True):
    checkpoint_id: str
    previous_verdict: Verdict
    verdict: Verdict  # the gate's verdict for the stored concerns
    changed: bool


class ReverifyAip(msgspec.Struct, kw_only=True):
    """``POST /v1/agents/{id}/reverify/aip``: the newest non-clear checkpoints (after
    ``offset``) re-gated from their stored concerns."""

    run_id: str
    agent_id: str
    card_id: str
    total_in_batch: int
    offset: int
    limit: int
    re_evaluated: int
    resolved_to_clear: int
    kept_non_clear: int
    results: list[AipResult]
    errors: list[ReverifyError]
    created_at: datetime


class ReverifyRun(msgspec.Struct, kw_only=True):
    """``GET /v1/agents/{id}/reverify/{run_id}``: a stored run; ``aap`` or ``aip`` is set."""

    run_id: str
    agent_id: str
    kind: Literal["aap", "aip"]
    created_at: datetime
    aap: ReverifyAap | None = None
    aip: ReverifyAip | None = None
