"""Gemini generateContent responses: JSON body (or a JSON array of chunks) and SSE stream.

Thought parts (``thought: true``) are thinking; other ``text`` parts are the answer;
``functionCall`` parts are tool calls (protocols.md §2.3, gateway.md §1.7).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from smoltbot_observer.parsing.model import (
    BodyFormat,
    ParsedResponse,
    ToolCall,
    as_dict,
    as_int,
    as_list,
    as_str,
    first_int,
    join_thinking,
)

# Thought summaries are what the model chose to reveal of its reasoning.
THOUGHT_CONFIDENCE = 0.9


def _error(body: dict[str, Any]) -> str | None:
    if "error" not in body:
        return None
    return as_str(as_dict(body["error"]).get("message")) or "unknown error"


def _output_tokens(usage: dict[str, Any]) -> int | None:
    """Candidates plus thoughts: both are generated (and billed) output."""
    candidates = as_int(usage.get("candidatesTokenCount"))
    thoughts = as_int(usage.get("thoughtsTokenCount"))
    if candidates is None and thoughts is None:
        return None
    return (candidates or 0) + (thoughts or 0)


def _parse_chunks(
    chunks: Iterable[dict[str, Any]], fmt: BodyFormat, *, streamed: bool
) -> ParsedResponse:
    """Each chunk is one GenerateContentResponse; a JSON body is a single chunk."""
    thoughts: list[str] = []
    texts: list[str] = []
    tools: list[ToolCall] = []
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    error: str | None = None
    finished = False
    seen = False
    for chunk in chunks:
        seen = True
        error = _error(chunk) or error
        model = as_str(chunk.get("modelVersion")) or model
        usage = as_dict(chunk.get("usageMetadata"))
        input_tokens = first_int(usage.get("promptTokenCount"), input_tokens)
        output_tokens = _output_tokens(usage) if usage else output_tokens
        candidate = as_dict(next(iter(as_list(chunk.get("candidates"))), None))
        if candidate.get("finishReason"):
            finished = True
        for item in as_list(as_dict(candidate.get("content")).get("parts")):
            part = as_dict(item)
            text = as_str(part.get("text"))
            call = as_dict(part.get("functionCall"))
            if text is not None and part.get("thought") is True:
                thoughts.append(text)
            elif text is not None:
                texts.append(text)
            elif as_str(call.get("name")):
                tools.append(ToolCall(name=call["name"], input=as_dict(call.get("args"))))
    # Streamed thought text is one thought cut into pieces; separate parts of a body are blocks.
    thinking = ("".join(thoughts) or None) if streamed else join_thinking(thoughts)
    return ParsedResponse(
        format=fmt,
        thinking=thinking,
        thinking_confidence=THOUGHT_CONFIDENCE if thinking else 0.0,
        text="".join(texts) if streamed else "\n\n".join(t for t in texts if t),
        tool_calls=tuple(tools),
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        error=error,
        issues=("stream_incomplete",) if streamed and seen and not finished and not error else (),
    )


def parse_json(body: dict[str, Any] | list[Any]) -> ParsedResponse:
    """A body from generateContent, or the JSON array streamGenerateContent returns without SSE."""
    if isinstance(body, list):
        return _parse_chunks((as_dict(c) for c in body), "json", streamed=True)
    return _parse_chunks([body], "json", streamed=False)


def parse_sse(events: Iterable[dict[str, Any]]) -> ParsedResponse:
    return _parse_chunks(events, "sse", streamed=True)
