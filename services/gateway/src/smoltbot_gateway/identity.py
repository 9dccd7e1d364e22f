"""Agent identity from the provider key (architecture §5.1). The key itself never leaves here."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import msgspec
from smoltbot_contracts import Provider
from smoltbot_contracts.ids import agent_hash, agent_id, session_id

__all__ = ["MISSING_KEY_HEADER", "Identity", "Provider", "extract_key", "identify"]

# What a client is told it forgot, per provider (mirrors the provider's own header name).
MISSING_KEY_HEADER: dict[str, str] = {
    "anthropic": "x-api-key",
    "openai": "Authorization: Bearer <key>",
    "gemini": "x-goog-api-key",
}


class Identity(msgspec.Struct, frozen=True, kw_only=True):
    agent_hash: str
    agent_id: str
    session_id: str


def _bearer(value: str) -> str | None:
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def extract_key(provider: str, headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The provider API key from ASGI request headers (lower-case names), or None.

    Anthropic: ``x-api-key``, else ``Authorization: Bearer``. OpenAI: bearer, else ``x-api-key``.
    Gemini: ``x-goog-api-key`` (``?key=`` is handled by the Gemini route when it lands).
    """
    api_key: str | None = None
    bearer: str | None = None
    goog: str | None = None
    for name, raw in headers:
        if name == b"x-api-key" and api_key is None:
            api_key = raw.decode("latin-1").strip() or None
        elif name == b"authorization" and bearer is None:
            bearer = _bearer(raw.decode("latin-1"))
        elif name == b"x-goog-api-key" and goog is None:
            goog = raw.decode("latin-1").strip() or None
    if provider == "gemini":
        return goog
    if provider == "openai":
        return bearer or api_key
    return api_key or bearer


def identify(key: str, at: datetime, name: str | None = None) -> Identity:
    """Hash, id and hourly session of the agent behind ``key``."""
    hashed = agent_hash(key, name)
    return Identity(agent_hash=hashed, agent_id=agent_id(hashed), session_id=session_id(hashed, at))
