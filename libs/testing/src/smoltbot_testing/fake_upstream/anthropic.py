"""Fake Anthropic Messages API: ``POST /v1/messages`` (JSON, or SSE when ``"stream": true``)
and ``GET /v1/models``, at the root and under ``/anthropic``.

Content follows :mod:`._reply`: thinking block (unless ``thinking.type == "disabled"``), text
``"Echo: <last user text>"``, a ``tool_use`` block for the first of ``tools``. The key is
``x-api-key`` or ``Authorization: Bearer``; errors have Anthropic's shape (:func:`error_body`).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from smoltbot_testing.fake_upstream._reply import Reply, derive, last_user_text
from smoltbot_testing.fake_upstream._wire import (
    FORCED_ERROR,
    JSON_CHUNK,
    TEXT_CHUNK,
    Provider,
    RecordedResponse,
    Recorder,
    Route,
    bearer_token,
    json_bytes,
    pieces,
    send_stream,
)

__all__ = [
    "FORCED_ERROR",
    "PROVIDER",
    "Reply",
    "build_reply",
    "error_body",
    "message_json",
    "message_request",
    "sse_events",
    "sse_frame",
]

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


def build_reply(raw_body: bytes, body: dict[str, Any]) -> Reply:
    model = body.get("model")
    thinking_cfg = body.get("thinking")
    tools = body.get("tools")
    first_tool = tools[0] if isinstance(tools, list) and tools else None
    return derive(
        raw_body,
        body,
        query=last_user_text(body.get("messages")),
        model=model if isinstance(model, str) else DEFAULT_MODEL,
        thinking=not (isinstance(thinking_cfg, dict) and thinking_cfg.get("type") == "disabled"),
        tool_name=str(first_tool.get("name", "tool")) if isinstance(first_tool, dict) else None,
        id_prefix="msg_",
        tool_id_prefix="toolu_",
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
            {"type": "thinking_delta", "thinking": piece}
            for piece in pieces(reply.thinking, TEXT_CHUNK)
        ]
        thinking_deltas.append({"type": "signature_delta", "signature": reply.signature})
        block({"type": "thinking", "thinking": "", "signature": ""}, thinking_deltas)
    block(
        {"type": "text", "text": ""},
        [{"type": "text_delta", "text": piece} for piece in pieces(reply.text, TEXT_CHUNK)],
    )
    if reply.tool is not None:
        partial = json_bytes(reply.tool["input"]).decode()
        block(
            {"type": "tool_use", "id": reply.tool["id"], "name": reply.tool["name"], "input": {}},
            [
                {"type": "input_json_delta", "partial_json": piece}
                for piece in pieces(partial, JSON_CHUNK)
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


def _has_key(request: web.Request) -> bool:
    return bool(request.headers.get("x-api-key")) or bearer_token(request) is not None


def _owns(request: web.Request) -> bool:
    return "anthropic-version" in request.headers or "x-api-key" in request.headers


def _routes(recorder: Recorder) -> list[Route]:
    async def messages(
        request: web.Request, record: RecordedResponse, raw: bytes, body: dict[str, Any]
    ) -> web.StreamResponse:
        if not isinstance(body.get("messages"), list):
            return await PROVIDER.error(request, record, 400, "messages: field required")
        reply = build_reply(raw, body)
        headers = PROVIDER.headers(record, **{"anthropic-organization-id": "fake-org"})
        if body.get("stream") is not True:
            return await PROVIDER.json(request, record, message_json(reply), headers=headers)
        return await send_stream(
            request,
            record,
            (sse_frame(name, data) for name, data in sse_events(reply)),
            content_type="text/event-stream; charset=utf-8",
            headers=headers,
        )

    async def models(request: web.Request, record: RecordedResponse, *_: object) -> web.Response:
        data = [
            {"type": "model", "id": mid, "display_name": name, "created_at": created}
            for mid, name, created in MODELS
        ]
        page = {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"],
            "last_id": data[-1]["id"],
        }
        return await PROVIDER.json(request, record, page)

    return [
        PROVIDER.route(recorder, "POST", "/v1/messages", messages),
        PROVIDER.route(recorder, "GET", "/v1/models", models),
    ]


PROVIDER = Provider(
    prefix="/anthropic",
    routes=_routes,
    owns=_owns,
    has_key=_has_key,
    missing_key=(401, "x-api-key header is required"),
    bad_json="Request body is not valid JSON",
    error_body=error_body,
    request_id_header="request-id",
)
