"""Readers for provider JSON fields: provider bodies are untrusted, so a field of the wrong type
reads as empty instead of failing the whole parse."""

from __future__ import annotations

from typing import Any

import msgspec


def as_dict(value: object) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (provider fields are untrusted)."""
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def as_int(value: object) -> int | None:
    """A non-negative token count, rejecting bools and junk."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def first_int(value: object, fallback: int | None) -> int | None:
    """``value`` as a token count when valid, else ``fallback`` (later stream events win)."""
    parsed = as_int(value)
    return fallback if parsed is None else parsed


def parse_tool_input(raw: str, default: dict[str, Any] | None = None) -> dict[str, Any]:
    """Tool arguments accumulated as JSON text; anything but a JSON object yields ``{}``."""
    if not raw.strip():
        return dict(default or {})
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return {}
    return value if isinstance(value, dict) else {}
