"""The request body: read once for what the trace needs (model, stream flag, user query).

Bodies are decoded into small typed views that skip everything else without building it (an
image's base64, a long history's tool results), which is both faster and lighter than building
the whole document. A body the views do not fit is decoded generically; a body that is not JSON
at all (bad syntax, invalid UTF-8, nesting past the decoder's limit) yields an empty
:class:`BodyInfo` and is forwarded byte for byte all the same: the gateway never rejects what the
provider might accept, and such a call is still traced.
"""

from __future__ import annotations

from typing import Any

import msgspec

USER_QUERY_MAX = 500
_GENERIC = msgspec.json.Decoder()
# What a body that is not JSON raises: DecodeError, UnicodeDecodeError (a ValueError) for
# invalid UTF-8, RecursionError for nesting past the decoder's limit.
_NOT_JSON = (msgspec.DecodeError, ValueError, RecursionError)


class Knobs(msgspec.Struct, frozen=True, kw_only=True):
    """Top-level fields the injection waves decide on (architecture §5.3), as the client sent
    them (None: absent or null). They are small in every provider's API and read in the same
    pass as the rest of the view, so finding that nothing is to be injected costs no second
    parse (:mod:`smoltbot_gateway.injection`)."""

    max_tokens: Any = None
    thinking: Any = None
    reasoning_effort: Any = None
    reasoning: Any = None
    temperature: Any = None
    top_k: Any = None
    top_p: Any = None
    tool_choice: Any = None
    generation_config: Any = msgspec.field(default=None, name="generationConfig")
    generation_config_snake: Any = msgspec.field(default=None, name="generation_config")


_NO_KNOBS = Knobs()


class BodyInfo(msgspec.Struct, frozen=True, kw_only=True):
    is_json_object: bool = False
    model: str | None = None
    stream: bool = False
    user_query: str | None = None
    knobs: Knobs = _NO_KNOBS


class _Block(msgspec.Struct):
    type: str | None = None
    text: str | None = None


class _Message(msgspec.Struct):
    role: str | None = None
    content: msgspec.Raw = msgspec.Raw()
    """Left encoded: only the last user message's is ever read, and only its first 500
    characters (a message may hold megabytes)."""


class _Part(msgspec.Struct):
    text: msgspec.Raw = msgspec.Raw()


class _Content(msgspec.Struct):
    role: str | None = None
    parts: list[_Part] | None = None


class _Request(Knobs, frozen=True):
    """Anthropic Messages, OpenAI chat completions and Gemini generateContent, as far as the
    trace and the injection waves need them (unknown fields are skipped by the decoder)."""

    model: str | None = None
    stream: bool | None = None
    messages: list[_Message] | None = None
    contents: list[_Content] | None = None


_VIEW = msgspec.json.Decoder(_Request)


def _cap(text: str | None) -> str | None:
    return text[:USER_QUERY_MAX] if text else None


_BLOCKS = msgspec.json.Decoder(list[_Block])
_TEXT = msgspec.json.Decoder(str)


def _string_head(raw: bytes | memoryview | msgspec.Raw, chars: int) -> str:
    """The first ``chars`` characters of the JSON string ``raw``, decoding only about that much
    (ValidationError when ``raw`` is not a string)."""
    limit = chars * 6 + 2  # every character could be a \uXXXX escape
    if len(raw) <= limit:
        return _TEXT.decode(raw)[:chars]
    head = bytes(raw[:limit])
    for cut in range(limit, limit - 8, -1):  # end before a partial escape or UTF-8 sequence
        try:
            return _TEXT.decode(head[:cut] + b'"')[:chars]
        except msgspec.ValidationError:
            raise
        except _NOT_JSON:
            continue
    raise msgspec.ValidationError("unreadable string")


def _message_query(raw: msgspec.Raw) -> str | None:
    encoded = bytes(raw) if len(raw) <= 4096 else memoryview(raw)
    if encoded[:1] == b'"':
        return _string_head(encoded, USER_QUERY_MAX) or None
    texts = [b.text for b in _BLOCKS.decode(encoded) if b.type == "text" and b.text]
    return _cap("\n".join(texts)) if texts else None


def _view_query(request: _Request) -> str | None:
    for message in reversed(request.messages or ()):
        if message.role != "user" or not message.content:
            continue
        text = _message_query(message.content)
        if text:
            return text
    for item in reversed(request.contents or ()):
        if item.role not in (None, "user"):
            continue
        texts = [_string_head(p.text, USER_QUERY_MAX) for p in item.parts or () if p.text]
        if any(texts):
            return _cap("\n".join(t for t in texts if t))
    return None


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
                return _cap(text)
    return None


def _generic(raw: bytes | bytearray) -> BodyInfo:
    try:
        parsed = _GENERIC.decode(raw)
    except _NOT_JSON:
        return BodyInfo()
    if not isinstance(parsed, dict):
        return BodyInfo()
    model = parsed.get("model")
    try:
        knobs = msgspec.convert(parsed, Knobs)
    except msgspec.ValidationError:  # pragma: no cover - every field takes any value
        knobs = _NO_KNOBS
    return BodyInfo(
        is_json_object=True,
        model=model if isinstance(model, str) else None,
        stream=parsed.get("stream") is True,
        user_query=extract_user_query(parsed),
        knobs=knobs,
    )


def inspect_body(raw: bytes | bytearray) -> BodyInfo:
    """What the trace needs from ``raw``; anything but a JSON object gives an empty BodyInfo."""
    if not raw:
        return BodyInfo()
    try:
        request = _VIEW.decode(raw)
        user_query = _view_query(request)
    except msgspec.ValidationError:
        return _generic(raw)  # JSON, but not in the shapes above: read it the slow way
    except _NOT_JSON:
        return BodyInfo()
    return BodyInfo(
        is_json_object=True,
        model=request.model,
        stream=request.stream is True,
        user_query=user_query,
        knobs=_knobs_of(request),
    )


def _knobs_of(request: _Request) -> Knobs:
    """The knobs alone: the view also holds message spans that keep the whole body alive."""
    return Knobs(
        max_tokens=request.max_tokens,
        thinking=request.thinking,
        reasoning_effort=request.reasoning_effort,
        reasoning=request.reasoning,
        temperature=request.temperature,
        top_k=request.top_k,
        top_p=request.top_p,
        tool_choice=request.tool_choice,
        generation_config=request.generation_config,
        generation_config_snake=request.generation_config_snake,
    )


def prepare_upstream_body(
    provider: str, raw: bytes | bytearray, info: BodyInfo
) -> bytes | bytearray:
    """The bytes sent upstream when nothing is injected: the body unchanged, so an unmodified
    request is never re-serialised (byte-identical forwarding, no key-order or float drift).
    :func:`smoltbot_gateway.injection.prepare_upstream` decides whether anything is injected
    and falls back to this.
    """
    del provider, info
    return raw
