"""Response bodies of the nudge endpoint (docs/api.md, "Nudges")."""

from __future__ import annotations

from datetime import datetime

import msgspec
from smoltbot_contracts import NudgeStatus

from smoltbot_api.schemas import Page

__all__ = ["NudgeList", "NudgeRecord"]


class NudgeRecord(msgspec.Struct, kw_only=True):
    """A conscience nudge the verifier made after a boundary violation, and whether the gateway
    put it into one of the agent's later calls.

    ``checkpoint_id``, ``created_at`` and ``text`` are null while only the delivery has been
    recorded (the verdict that created the nudge has not reached the persister yet).
    ``status`` only moves forward: ``pending`` → ``delivered`` (or ``expired``).
    """

    id: str
    agent_id: str
    checkpoint_id: str | None
    created_at: datetime | None
    text: str | None
    status: NudgeStatus
    delivered_at: datetime | None
    delivered_event_id: str | None
    """The gateway's ``exchange.v1`` event id of the call the nudge was injected into."""


class NudgeList(Page):
    nudges: list[NudgeRecord]
