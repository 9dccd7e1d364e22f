"""Gemini generateContent responses: JSON body (or a JSON array of chunks) and SSE stream.

Thought parts (``thought: true``) are thinking; other ``text`` parts are the answer;
``functionCall`` parts are tool calls (protocols.md §2.3, gateway.md §1.7).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from smoltbot_observer.parsing.fields import as_dict, as_int, as_list, as_str
from smoltbot_observer.parsing.model import (
    BodyFormat,
    ParsedResponse,
    Tally,
    ToolCall,
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
    tally = Tally()
    for chunk in chunks:
        tally.seen = True
        usage = as_dict(chunk.get("usageMetadata"))
        tally.note(
            model=chunk.get("modelVersion"),
            input_tokens=usage.get("promptTokenCount"),
            output_tokens=_output_tokens(usage),
            error=_error(chunk),
        )
        candidate = as_dict(next(iter(as_list(chunk.get("candidates"))), None))
        if candidate.get("finishReason"):
            tally.finished = True
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
    return tally.response(
        fmt,
        thinking=("".join(thoughts) or None) if streamed else join_thinking(thoughts),
        confidence=THOUGHT_CONFIDENCE,
        text="".join(texts) if streamed else "\n\n".join(t for t in texts if t),
        tools=tools,
        streamed=streamed,
    )


def parse_json(body: dict[str, Any] | list[Any]) -> ParsedResponse:
    """A body from generateContent, or the JSON array streamGenerateContent returns without SSE."""
    if isinstance(body, list):
        return _parse_chunks((as_dict(c) for c in body), "json", streamed=True)
    return _parse_chunks([body], "json", streamed=False)


def parse_sse(events: Iterable[dict[str, Any]]) -> ParsedResponse:
    return _parse_chunks(events, "sse", streamed=True)
