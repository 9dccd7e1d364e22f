"""What a fake reply says, derived from the request alone (the same rules for every provider).

With ``query`` = the text of the last user message that has text (parts joined by newlines):

- thinking: ``f"The user asked: {query[:80]!r}. I will echo it back."`` (left out when the
  request turns thinking off, in each provider's own way), or the text of the request header
  ``x-fake-thinking`` when the request has one (:data:`THINKING_OVERRIDE`, set per request by
  the route handler), e.g. reasoning an integrity analysis must flag;
- text: ``f"Echo: {query}"``;
- tool call (only when the request offers tools): the **first** tool's name, with the input
  ``{"query": query[:100], "n": len(query)}``;
- ids: hashes of the request body without its stream flags, so a streamed and a whole answer to
  the same request carry the same ids and content;
- tokens: input ``max(1, len(raw body) // 4)``; output = words of text and thinking, plus 5
  for a tool call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from smoltbot_testing.fake_upstream._wire import THINKING_OVERRIDE, request_digest

TOOL_CALL_TOKENS = 5


class Reply(msgspec.Struct, kw_only=True):
    """Everything one reply contains, computed once and rendered in a provider's JSON or SSE."""

    message_id: str
    model: str
    thinking: str | None
    signature: str
    text: str
    tool: dict[str, Any] | None  # {"id", "name", "input"}
    input_tokens: int
    output_tokens: int

    @property
    def stop_reason(self) -> str:
        """Anthropic's name for why the reply ended."""
        return "tool_use" if self.tool is not None else "end_turn"

    @property
    def thinking_tokens(self) -> int:
        return len(self.thinking.split()) if self.thinking else 0


def thinking_for(query: str) -> str:
    return f"The user asked: {query[:80]!r}. I will echo it back."


def derive(
    raw_body: bytes,
    body: Mapping[str, Any],
    *,
    query: str,
    model: str,
    thinking: bool,
    tool_name: str | None,
    id_prefix: str,
    tool_id_prefix: str,
) -> Reply:
    """The reply to a request whose provider-specific parts were already read out of ``body``."""
    digest = request_digest(body)
    thought = (THINKING_OVERRIDE.get() or thinking_for(query)) if thinking else None
    tool: dict[str, Any] | None = None
    if tool_name is not None:
        tool = {
            "id": f"{tool_id_prefix}{digest[24:48]}",
            "name": tool_name,
            "input": {"query": query[:100], "n": len(query)},
        }
    text = f"Echo: {query}"
    output_tokens = len(text.split()) + (len(thought.split()) if thought else 0)
    return Reply(
        message_id=f"{id_prefix}{digest[:24]}",
        model=model,
        thinking=thought,
        signature=f"sig{digest[:40]}",
        text=text,
        tool=tool,
        input_tokens=max(1, len(raw_body) // 4),
        output_tokens=output_tokens + (TOOL_CALL_TOKENS if tool else 0),
    )


def last_user_text(
    turns: object, *, role: str = "user", items: str = "content", text_type: str | None = "text"
) -> str:
    """Text of the last ``role`` turn that has any: string ``items`` or its text parts joined by
    newlines (parts with ``type == text_type``; any part with a string ``text`` when None).
    Turns that carry only tool results are passed over."""
    if not isinstance(turns, list):
        return ""
    for turn in reversed(turns):
        if not isinstance(turn, dict) or turn.get("role", "user") != role:
            continue
        content = turn.get(items)
        if isinstance(content, str) and content:
            return content
        parts = content if isinstance(content, list) else []
        texts = [
            p["text"]
            for p in parts
            if isinstance(p, dict)
            and isinstance(p.get("text"), str)
            and (text_type is None or p.get("type") == text_type)
            and not p.get("thought")
        ]
        if texts:
            return "\n".join(texts)
    return ""
