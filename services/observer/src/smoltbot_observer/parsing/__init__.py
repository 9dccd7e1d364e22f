"""Provider response parsing: bytes as captured by the gateway -> :class:`ParsedResponse`.

Pure functions, no I/O. Each provider module exposes ``parse_json`` and ``parse_sse``; this
module undoes the content-encoding, picks the wire format and never raises on bad input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from smoltbot_observer.parsing import anthropic, gemini, openai
from smoltbot_observer.parsing.decoding import decode_body
from smoltbot_observer.parsing.model import (
    THINKING_SEPARATOR,
    ParsedResponse,
    ToolCall,
)
from smoltbot_observer.parsing.sse import NOT_JSON, decode_text, iter_data, looks_like_sse

__all__ = [
    "THINKING_SEPARATOR",
    "ParsedResponse",
    "ToolCall",
    "decode_body",
    "parse_response",
]

_JSON = msgspec.json.Decoder()

JsonParser = Callable[[Any], ParsedResponse]
SseParser = Callable[[Iterable[dict[str, Any]]], ParsedResponse]

_PARSERS: dict[str, tuple[JsonParser, SseParser]] = {
    "anthropic": (anthropic.parse_json, anthropic.parse_sse),
    "openai": (openai.parse_json, openai.parse_sse),
    "gemini": (gemini.parse_json, gemini.parse_sse),
}


def _with_issues(parsed: ParsedResponse, issues: list[str]) -> ParsedResponse:
    if not issues:
        return parsed
    merged = tuple(dict.fromkeys([*issues, *parsed.issues]))
    return msgspec.structs.replace(parsed, issues=merged)


def parse_response(
    provider: str,
    body: bytes,
    *,
    content_encoding: str | None = None,
    content_type: str | None = None,
    truncated: bool = False,
) -> ParsedResponse:
    """Parse a captured response body; whatever was recoverable is returned, with ``issues``.

    Format: an ``text/event-stream`` content type, or a body that starts like one, is SSE;
    otherwise JSON is tried first and SSE second (a missing content type is common).
    ``truncated`` (cut at the gateway's capture cap) is recorded as an issue: an SSE body then
    yields its complete events, a JSON body usually nothing.
    """
    issues: list[str] = ["response_truncated"] if truncated else []
    json_parser, sse_parser = _PARSERS.get(provider, _PARSERS["anthropic"])
    if provider not in _PARSERS:
        issues.append(f"unknown_provider:{provider}")
    data, decode_issues = decode_body(body, content_encoding)
    issues.extend(decode_issues)
    if not data.strip():
        return _with_issues(ParsedResponse(format="empty"), issues)

    text = decode_text(data)
    is_sse = "event-stream" in (content_type or "").lower() or looks_like_sse(text)
    if not is_sse:
        try:
            value = _JSON.decode(data)
        except NOT_JSON:
            value = None
            # Not JSON: it may still be an event stream sent with a JSON content type.
            events = list(iter_data(text))
            if events:
                return _with_issues(sse_parser(events), issues)
            return _with_issues(ParsedResponse(format="unparsable"), [*issues, "unparsable_body"])
        if isinstance(value, dict) or (provider == "gemini" and isinstance(value, list)):
            return _with_issues(json_parser(value), issues)
        return _with_issues(ParsedResponse(format="unparsable"), [*issues, "unexpected_json"])
    return _with_issues(sse_parser(iter_data(text)), issues)
