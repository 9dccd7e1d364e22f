"""OpenAI chat-completions responses: JSON body and SSE stream (protocols.md §2.3).

Only ``reasoning_content`` counts as thinking (what compatible servers such as vLLM emit);
OpenAI's own models do not return their reasoning text.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from smoltbot_observer.parsing.fields import as_dict, as_int, as_list, as_str, parse_tool_input
from smoltbot_observer.parsing.model import ParsedResponse, Tally, ToolCall

# reasoning_content is the server's rendering of the model's reasoning, not the raw tokens.
REASONING_CONFIDENCE = 0.9


def _content_text(content: object) -> str:
    """``content`` is a string, or a list of parts of which ``text`` parts count."""
    if isinstance(content, str):
        return content
    parts = [as_str(as_dict(p).get("text")) or "" for p in as_list(content)]
    return "\n\n".join(p for p in parts if p)


def _error(body: dict[str, Any]) -> str | None:
    if "error" not in body:
        return None
    error = body["error"]
    if isinstance(error, str):
        return error
    return as_str(as_dict(error).get("message")) or "unknown error"


def parse_json(body: dict[str, Any]) -> ParsedResponse:
    """A complete chat-completions body: ``choices[0].message``."""
    error = _error(body)
    if error is not None:
        return ParsedResponse(format="json", error=error)
    choice = as_dict(next(iter(as_list(body.get("choices"))), None))
    message = as_dict(choice.get("message"))
    usage = as_dict(body.get("usage"))
    tools: list[ToolCall] = []
    for call in as_list(message.get("tool_calls")):
        function = as_dict(as_dict(call).get("function"))
        name = as_str(function.get("name"))
        if name:
            arguments = function.get("arguments")
            tool_input = (
                parse_tool_input(arguments) if isinstance(arguments, str) else as_dict(arguments)
            )
            tools.append(ToolCall(name=name, input=tool_input))
    thinking = as_str(message.get("reasoning_content")) or None
    return ParsedResponse(
        format="json",
        thinking=thinking,
        thinking_confidence=REASONING_CONFIDENCE if thinking else 0.0,
        text=_content_text(message.get("content")),
        tool_calls=tuple(tools),
        model=as_str(body.get("model")),
        input_tokens=as_int(usage.get("prompt_tokens")),
        output_tokens=as_int(usage.get("completion_tokens")),
    )


def parse_sse(events: Iterable[dict[str, Any]]) -> ParsedResponse:
    """Streamed chunks: ``choices[0].delta`` accumulated; tool calls merged by ``index``."""
    text: list[str] = []
    reasoning: list[str] = []
    calls: dict[int, tuple[str, list[str]]] = {}
    tally = Tally()
    for chunk in events:
        tally.seen = True
        usage = as_dict(chunk.get("usage"))
        tally.note(
            model=chunk.get("model"),
            input_tokens=usage.get("prompt_tokens"),
            output_tokens=usage.get("completion_tokens"),
            error=_error(chunk),
        )
        choice = as_dict(next(iter(as_list(chunk.get("choices"))), None))
        if choice.get("finish_reason"):
            tally.finished = True
        delta = as_dict(choice.get("delta"))
        text.append(as_str(delta.get("content")) or "")
        reasoning.append(as_str(delta.get("reasoning_content")) or "")
        for item in as_list(delta.get("tool_calls")):
            fragment = as_dict(item)
            index = as_int(fragment.get("index")) or 0
            function = as_dict(fragment.get("function"))
            name, arguments = calls.get(index, ("", []))
            name = name or as_str(function.get("name")) or ""
            arguments.append(as_str(function.get("arguments")) or "")
            calls[index] = (name, arguments)
    tools = [
        ToolCall(name=name, input=parse_tool_input("".join(arguments)))
        for name, arguments in calls.values()
        if name
    ]
    return tally.response(
        "sse",
        thinking="".join(reasoning) or None,
        confidence=REASONING_CONFIDENCE,
        text="".join(text),
        tools=tools,
    )
