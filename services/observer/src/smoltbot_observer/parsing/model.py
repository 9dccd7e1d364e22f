"""The provider-neutral result of parsing one response body."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

BodyFormat = Literal["empty", "json", "sse", "unparsable"]

# Joins several thinking blocks of one response (protocols.md §2.3).
THINKING_SEPARATOR = "\n\n---\n\n"


class ToolCall(msgspec.Struct, frozen=True, kw_only=True):
    """A tool the model asked to call; ``input`` is ``{}`` when the arguments were not JSON."""

    name: str
    input: dict[str, Any] = msgspec.field(default_factory=dict)


class ParsedResponse(msgspec.Struct, frozen=True, kw_only=True):
    """What the observer needs from a response, whatever the provider or wire format.

    ``issues`` names every problem met on the way (corrupt gzip, truncated stream...) so the
    trace can say its content may be partial instead of the worker failing.
    """

    format: BodyFormat = "empty"
    thinking: str | None = None
    thinking_confidence: float = 0.0
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    error: str | None = None
    issues: tuple[str, ...] = ()

    @property
    def has_content(self) -> bool:
        """True when anything a trace can describe was recovered."""
        return bool(self.thinking or self.text or self.tool_calls)


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


def join_thinking(parts: list[str]) -> str | None:
    kept = [p for p in parts if p]
    return THINKING_SEPARATOR.join(kept) if kept else None
