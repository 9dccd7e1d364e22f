"""The provider-neutral result of parsing one response body."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from smoltbot_observer.parsing.fields import as_str, first_int

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


class Tally:
    """What every provider parser tracks besides content: model, usage, error and whether the
    stream reached its end. Later values win, as in the providers' streams."""

    __slots__ = ("error", "finished", "input_tokens", "model", "output_tokens", "seen")

    def __init__(self) -> None:
        self.model: str | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.error: str | None = None
        self.finished = False
        self.seen = False

    def note(
        self,
        *,
        model: object = None,
        input_tokens: object = None,
        output_tokens: object = None,
        error: str | None = None,
    ) -> None:
        self.model = as_str(model) or self.model
        self.input_tokens = first_int(input_tokens, self.input_tokens)
        self.output_tokens = first_int(output_tokens, self.output_tokens)
        self.error = error or self.error

    def response(
        self,
        fmt: BodyFormat,
        *,
        thinking: str | None,
        confidence: float,
        text: str,
        tools: tuple[ToolCall, ...] | list[ToolCall],
        streamed: bool = True,
    ) -> ParsedResponse:
        """The parsed response; a stream that stopped before its end is marked incomplete."""
        incomplete = streamed and self.seen and not self.finished and self.error is None
        return ParsedResponse(
            format=fmt,
            thinking=thinking,
            thinking_confidence=confidence if thinking else 0.0,
            text=text,
            tool_calls=tuple(tools),
            model=self.model,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            error=self.error,
            issues=("stream_incomplete",) if incomplete else (),
        )


def join_thinking(parts: list[str]) -> str | None:
    kept = [p for p in parts if p]
    return THINKING_SEPARATOR.join(kept) if kept else None
