"""Fake Anthropic Messages API: ``POST /v1/messages`` (JSON and SSE) and ``GET /v1/models``.

Content is derived from the request only, so a test can predict every byte: the reply text is
``"Echo: <last user text>"``, ids are hashes of the request body.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import msgspec
from aiohttp import web

from smoltbot_testing.fake_upstream._wire import (
    RecordedResponse,
    Recorder,
    StreamWriter,
    json_bytes,
    send_whole,
)

MODELS = (
    ("claude-sonnet-4-20250514", "Claude Sonnet 4", "2025-05-14T00:00:00Z"),
    ("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "2025-10-01T00:00:00Z"),
    ("claude-3-5-sonnet-20241022", "Claude Sonnet 3.5", "2024-10-22T00:00:00Z"),
)
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
DEFAULT_MODEL = "claude-sonnet-4-20250514"
FORCED_ERROR = "Forced error from the fake upstream"
TEXT_CHUNK = 12  # characters per text_delta, so streams have several deltas
JSON_CHUNK = 10  # characters per input_json_delta


def message_request(text: str = "x", **fields: Any) -> dict[str, Any]:
    """The smallest Messages API request: model ``m``, 5 tokens, the one user message ``text``;
    ``fields`` add to it or override. A JSON body as it is, or ``messages.create(**...)``
    arguments of the SDKs (which also take ``extra_headers``, e.g. the ``x-fake-*`` knobs)."""
    return {
        "model": "m",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": text}],
        **fields,
    }


def error_body(status: int, message: str) -> dict[str, Any]:
    """The body of an Anthropic error answer, as the fake sends it (e.g. for ``x-fake-status``:
    ``error_body(529, FORCED_ERROR)``)."""
    return {
        "type": "error",
        "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message},
    }


def _user_text(body: dict[str, Any]) -> str:
    """Text of the last user message that has any (string content or text blocks)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str) and content:
            return content
        blocks = content if isinstance(content, list) else []
        texts = [b.get("text") for b in blocks if isinstance(b, dict) and b.get("type") == "text"]
        if any(isinstance(t, str) for t in texts):
            return "\n".join(t for t in texts if isinstance(t, str))
    return ""


class Reply(msgspec.Struct, kw_only=True):
    """Everything one reply contains, computed once and rendered as JSON or as SSE."""

    message_id: str
    model: str
    thinking: str | None
    signature: str
    text: str
    tool: dict[str, Any] | None
    input_tokens: int
    output_tokens: int

    @property
    def stop_reason(self) -> str:
        return "tool_use" if self.tool is not None else "end_turn"


def build_reply(raw_body: bytes, body: dict[str, Any]) -> Reply:
    # The stream flag does not change the content, so both shapes of one request agree.
    digest = hashlib.sha256(
        json_bytes({k: v for k, v in body.items() if k != "stream"})
    ).hexdigest()
    query = _user_text(body)
    model = body.get("model") if isinstance(body.get("model"), str) else DEFAULT_MODEL
    thinking_cfg = body.get("thinking")
    thinking_off = isinstance(thinking_cfg, dict) and thinking_cfg.get("type") == "disabled"
    thinking = None if thinking_off else f"The user asked: {query[:80]!r}. I will echo it back."
    tool: dict[str, Any] | None = None
    tools = body.get("tools")
    if isinstance(tools, list) and tools and isinstance(tools[0], dict):
        tool = {
            "id": f"toolu_{digest[24:48]}",
            "name": str(tools[0].get("name", "tool")),
            "input": {"query": query[:100], "n": len(query)},
        }
    text = f"Echo: {query}"
    output_tokens = len(text.split()) + (len(thinking.split()) if thinking else 0)
    return Reply(
        message_id=f"msg_{digest[:24]}",
        model=str(model),
        thinking=thinking,
        signature=f"sig{digest[:40]}",
        text=text,
        tool=tool,
        input_tokens=max(1, len(raw_body) // 4),
        output_tokens=output_tokens + (5 if tool else 0),
    )


def message_json(reply: Reply) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reply.thinking is not None:
        content.append(
            {"type": "thinking", "thinking": reply.thinking, "signature": reply.signature}
        )
    content.append({"type": "text", "text": reply.text})
    if reply.tool is not None:
        content.append({"type": "tool_use", **reply.tool})
    return {
        "id": reply.message_id,
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": content,
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": reply.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": reply.output_tokens,
        },
    }


def sse_events(reply: Reply) -> list[tuple[str, dict[str, Any]]]:
    """The ordered ``(event name, data)`` pairs of a streamed reply."""
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": reply.message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": reply.model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": reply.input_tokens, "output_tokens": 1},
                },
            },
        )
    ]
    index = 0

    def block(start: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
        nonlocal index
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
        )
        events.extend(
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in deltas
        )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1

    if reply.thinking is not None:
        thinking_deltas = [
            {"type": "thinking_delta", "thinking": reply.thinking[i : i + TEXT_CHUNK]}
            for i in range(0, len(reply.thinking), TEXT_CHUNK)
        ]
        thinking_deltas.append({"type": "signature_delta", "signature": reply.signature})
        block({"type": "thinking", "thinking": "", "signature": ""}, thinking_deltas)
    block(
        {"type": "text", "text": ""},
        [
            {"type": "text_delta", "text": reply.text[i : i + TEXT_CHUNK]}
            for i in range(0, len(reply.text), TEXT_CHUNK)
        ],
    )
    if reply.tool is not None:
        partial = json_bytes(reply.tool["input"]).decode()
        block(
            {"type": "tool_use", "id": reply.tool["id"], "name": reply.tool["name"], "input": {}},
            [
                {"type": "input_json_delta", "partial_json": partial[i : i + JSON_CHUNK]}
                for i in range(0, len(partial), JSON_CHUNK)
            ],
        )
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": reply.output_tokens},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def sse_frame(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + json_bytes(data) + b"\n\n"


def _request_id(record: RecordedResponse) -> str:
    return f"req_fake{record.index:012d}"


def _ms_header(request: web.Request, name: str) -> float:
    try:
        return max(0.0, float(request.headers.get(name, "0"))) / 1000.0
    except ValueError:
        return 0.0


async def _error(
    request: web.Request, record: RecordedResponse, status: int, message: str
) -> web.Response:
    return await send_whole(
        request,
        record,
        status=status,
        body=json_bytes(error_body(status, message)),
        headers={"request-id": _request_id(record)},
    )


def _has_key(request: web.Request) -> bool:
    auth = request.headers.get("Authorization", "")
    return bool(request.headers.get("x-api-key")) or auth.lower().startswith("bearer ")


async def _preamble(request: web.Request, recorder: Recorder) -> tuple[RecordedResponse, bytes]:
    raw = await request.read()
    record = recorder.begin(request, raw)
    delay = _ms_header(request, "x-fake-delay-ms")
    if delay:
        await asyncio.sleep(delay)
    return record, raw


def add_routes(app: web.Application, recorder: Recorder, prefix: str = "") -> None:
    """Register the Anthropic routes on a fake server, under ``prefix`` (e.g. ``/anthropic``)."""

    async def messages(request: web.Request) -> web.StreamResponse:
        record, raw = await _preamble(request, recorder)
        forced = request.headers.get("x-fake-status")
        if forced and forced.isdigit() and int(forced) >= 400:
            return await _error(request, record, int(forced), FORCED_ERROR)
        if not _has_key(request):
            return await _error(request, record, 401, "x-api-key header is required")
        try:
            body = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            return await _error(request, record, 400, "Request body is not valid JSON")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return await _error(request, record, 400, "messages: field required")
        reply = build_reply(raw, body)
        headers = {"request-id": _request_id(record), "anthropic-organization-id": "fake-org"}
        if body.get("stream") is not True:
            return await send_whole(
                request, record, status=200, body=json_bytes(message_json(reply)), headers=headers
            )
        writer = StreamWriter(request, record)
        await writer.start("text/event-stream; charset=utf-8", headers)
        chunk_delay = _ms_header(request, "x-fake-chunk-delay-ms")
        for name, data in sse_events(reply):
            await writer.send(sse_frame(name, data), delay_s=chunk_delay)
        return await writer.finish()

    async def models(request: web.Request) -> web.StreamResponse:
        record, _ = await _preamble(request, recorder)
        forced = request.headers.get("x-fake-status")
        if forced and forced.isdigit() and int(forced) >= 400:
            return await _error(request, record, int(forced), FORCED_ERROR)
        data = [
            {"type": "model", "id": mid, "display_name": name, "created_at": created}
            for mid, name, created in MODELS
        ]
        body = {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"],
            "last_id": data[-1]["id"],
        }
        return await send_whole(
            request,
            record,
            status=200,
            body=json_bytes(body),
            headers={"request-id": _request_id(record)},
        )

    app.router.add_post(f"{prefix}/v1/messages", messages)
    app.router.add_get(f"{prefix}/v1/models", models)
