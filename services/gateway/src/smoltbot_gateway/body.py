"""The request body: parsed once, inspected, and (later) rewritten before forwarding.

A body that is not a JSON object is forwarded byte for byte and simply yields no model, no
stream flag and no user query; the gateway never rejects what the provider might accept.
"""

from __future__ import annotations

from typing import Any

import msgspec

USER_QUERY_MAX = 500
_DECODER = msgspec.json.Decoder()


class BodyInfo(msgspec.Struct, frozen=True, kw_only=True):
    parsed: dict[str, Any] | None = None
    model: str | None = None
    stream: bool = False
    user_query: str | None = None


def _message_text(content: object) -> str | None:
    if isinstance(content, str):
        return content or None
    if isinstance(content, list):
        texts = [
            block["text"]
            for block in content
            if isinstance(block, dict)
            and block.get("type") == "text"
            and isinstance(block.get("text"), str)
            and block["text"]
        ]
        return "\n".join(texts) if texts else None
    return None


def extract_user_query(body: dict[str, Any]) -> str | None:
    """Text of the last ``role=user`` message that has text, at most 500 characters.

    Anthropic and OpenAI chat shapes: string content or ``type=text`` items; user turns that carry
    only tool results are skipped (protocols.md §2.3 "User query").
    """
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            text = _message_text(message.get("content"))
            if text is not None:
                return text[:USER_QUERY_MAX]
    return None


def inspect_body(raw: bytes) -> BodyInfo:
    """Parse ``raw`` once; anything but a JSON object gives an empty :class:`BodyInfo`."""
    if not raw:
        return BodyInfo()
    try:
        parsed = _DECODER.decode(raw)
    except msgspec.DecodeError:
        return BodyInfo()
    if not isinstance(parsed, dict):
        return BodyInfo()
    model = parsed.get("model")
    return BodyInfo(
        parsed=parsed,
        model=model if isinstance(model, str) else None,
        stream=parsed.get("stream") is True,
        user_query=extract_user_query(parsed),
    )


def prepare_upstream_body(provider: str, raw: bytes, info: BodyInfo) -> bytes:
    """The bytes sent upstream. Seam for thinking and nudge injection (a later issue).

    Until injection lands the body goes out unchanged, so an unmodified request is never
    re-serialised (byte-identical forwarding, no key-order or float drift).
    """
    del provider, info
    return raw
