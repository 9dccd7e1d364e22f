"""Anthropic Messages API responses: JSON body and SSE stream (protocols.md §2.3)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from smoltbot_observer.parsing.fields import as_dict, as_int, as_list, as_str, parse_tool_input
from smoltbot_observer.parsing.model import ParsedResponse, Tally, ToolCall, join_thinking

# Native thinking blocks are the model's own reasoning: nothing is inferred.
NATIVE_THINKING_CONFIDENCE = 1.0


def _error_message(body: dict[str, Any]) -> str:
    error = as_dict(body.get("error"))
    return as_str(error.get("message")) or as_str(error.get("type")) or "unknown error"


def parse_json(body: dict[str, Any]) -> ParsedResponse:
    """A complete (non-streamed) Messages API body."""
    if body.get("type") == "error":
        return ParsedResponse(format="json", error=_error_message(body))
    usage = as_dict(body.get("usage"))
    content = body.get("content")
    thinking: list[str] = []
    texts: list[str] = []
    tools: list[ToolCall] = []
    if isinstance(content, str):
        texts.append(content)
    for item in as_list(content):
        block = as_dict(item)
        kind = block.get("type")
        if kind == "thinking":
            thinking.append(as_str(block.get("thinking")) or "")
        elif kind == "text":
            texts.append(as_str(block.get("text")) or "")
        elif kind == "tool_use" and as_str(block.get("name")):
            tools.append(ToolCall(name=block["name"], input=as_dict(block.get("input"))))
        # redacted_thinking and unknown block types carry nothing we may read.
    joined = join_thinking(thinking)
    return ParsedResponse(
        format="json",
        thinking=joined,
        thinking_confidence=NATIVE_THINKING_CONFIDENCE if joined else 0.0,
        text="\n\n".join(t for t in texts if t),
        tool_calls=tuple(tools),
        model=as_str(body.get("model")),
        input_tokens=as_int(usage.get("input_tokens")),
        output_tokens=as_int(usage.get("output_tokens")),
    )


class _Block:
    """One content block being assembled from stream deltas."""

    __slots__ = ("initial_input", "kind", "name", "parts")

    def __init__(self, kind: str, name: str | None, initial_input: dict[str, Any]) -> None:
        self.kind = kind
        self.name = name
        self.initial_input = initial_input
        self.parts: list[str] = []


def parse_sse(events: Iterable[dict[str, Any]]) -> ParsedResponse:
    """A streamed Messages API response, already split into JSON ``data:`` payloads.

    Blocks are keyed by ``index`` from ``content_block_start``; deltas for an unknown index are
    ignored. A stream cut short (no ``message_stop``) still yields the blocks seen so far.
    """
    blocks: dict[int, _Block] = {}
    tally = Tally()
    for event in events:
        tally.seen = True
        kind = event.get("type")
        if kind == "message_start":
            message = as_dict(event.get("message"))
            usage = as_dict(message.get("usage"))
            tally.note(
                model=message.get("model"),
                input_tokens=usage.get("input_tokens"),
                output_tokens=usage.get("output_tokens"),
            )
        elif kind == "content_block_start":
            index = as_int(event.get("index"))
            block = as_dict(event.get("content_block"))
            block_kind = as_str(block.get("type"))
            if index is None or block_kind is None:
                continue
            entry = _Block(block_kind, as_str(block.get("name")), as_dict(block.get("input")))
            # A start event may already carry text (rare, but allowed by the format).
            initial = as_str(block.get("text")) or as_str(block.get("thinking"))
            if initial:
                entry.parts.append(initial)
            blocks[index] = entry
        elif kind == "content_block_delta":
            index = as_int(event.get("index"))
            target = blocks.get(index) if index is not None else None
            if target is None:
                continue
            delta = as_dict(event.get("delta"))
            delta_kind = delta.get("type")
            piece: str | None = None
            if delta_kind == "thinking_delta":
                piece = as_str(delta.get("thinking"))
            elif delta_kind == "text_delta":
                piece = as_str(delta.get("text"))
            elif delta_kind == "input_json_delta":
                piece = as_str(delta.get("partial_json"))
            if piece:
                target.parts.append(piece)
        elif kind == "message_delta":
            usage = as_dict(event.get("usage"))
            tally.note(
                input_tokens=usage.get("input_tokens"), output_tokens=usage.get("output_tokens")
            )
        elif kind == "message_stop":
            tally.finished = True
        elif kind == "error":
            tally.note(error=_error_message(event))

    thinking: list[str] = []
    texts: list[str] = []
    tools: list[ToolCall] = []
    for built in blocks.values():
        if built.kind == "thinking":
            thinking.append("".join(built.parts))
        elif built.kind == "text":
            texts.append("".join(built.parts))
        elif built.kind == "tool_use" and built.name:
            tools.append(
                ToolCall(
                    name=built.name,
                    input=parse_tool_input("".join(built.parts), built.initial_input),
                )
            )
    return tally.response(
        "sse",
        thinking=join_thinking(thinking),
        confidence=NATIVE_THINKING_CONFIDENCE,
        text="\n\n".join(t for t in texts if t),
        tools=tools,
    )
