"""Agent identity from the provider key (architecture §5.1). The key itself never leaves here."""

from __future__ import annotations

from datetime import datetime

import msgspec
from smoltbot_contracts.ids import agent_hash, agent_id, session_id

__all__ = ["Identity", "identify"]


class Identity(msgspec.Struct, frozen=True, kw_only=True):
    agent_hash: str
    agent_id: str
    session_id: str


def identify(key: str, at: datetime, name: str | None = None) -> Identity:
    """Hash, id and hourly session of the agent behind ``key`` (and ``name``, for a named
    agent: the same key under two names is two agents)."""
    hashed = agent_hash(key, name)
    return Identity(agent_hash=hashed, agent_id=agent_id(hashed), session_id=session_id(hashed, at))
