"""Fake OpenAI Chat Completions API: ``POST /v1/chat/completions`` (JSON, or SSE when
``"stream": true``) and ``GET /v1/models``, at the root and under ``/openai`` (OpenAI SDK base
URL ``<fake>/v1`` or ``<fake>/openai/v1``).

Content follows :mod:`._reply`: ``reasoning_content`` (unless ``reasoning_effort == "none"``),
text ``"Echo: <last user text>"`` and, when ``tools`` are given, one ``tool_calls`` entry for the
first function (``finish_reason`` ``"tool_calls"``, else ``"stop"``). Streams send the reasoning
and the text as ``delta`` pieces, then the tool call in fragments merged by ``index`` (the first
with ``id``, ``type``, ``function.name`` and the start of ``function.arguments``; the others only
more ``arguments``), a chunk with ``finish_reason``, a ``usage`` chunk when
``stream_options.include_usage`` is true, and ``data: [DONE]``. The key is
``Authorization: Bearer``; errors have OpenAI's shape (:func:`error_body`).
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
    "DONE",
    "FORCED_ERROR",
    "PROVIDER",
    "build_reply",
    "chat_request",
    "chunk_frame",
    "completion_chunks",
    "completion_json",
    "error_body",
]

MODELS = (
    ("gpt-5", 1754425777),
    ("gpt-5-mini", 1754425867),
    ("gpt-4o", 1715367049),
    ("o3", 1744225308),
    ("o3-mini", 1737146383),
)
# status -> (error.type, error.code) as OpenAI answers them
ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}
DEFAULT_MODEL = "gpt-5"
CREATED = 1_750_000_000  # a fixed ``created``, so a whole and a streamed answer are equal
FINGERPRINT = "fp_fake0001"
DONE = b"data: [DONE]\n\n"


def chat_request(text: str = "x", **fields: Any) -> dict[str, Any]:
    """The smallest Chat Completions request: model ``gpt-5``, the one user message ``text``;
    ``fields`` add to it or override (a JSON body, or ``chat.completions.create(**...)``)."""
    return {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": text}], **fields}


def error_body(status: int, message: str, param: str | None = None) -> dict[str, Any]:
    """The body of an OpenAI error answer, as the fake sends it (``x-fake-status``:
    ``error_body(429, FORCED_ERROR)``)."""
    kind, code = ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def build_reply(raw_body: bytes, body: dict[str, Any]) -> Reply:
    model = body.get("model")
    tools = body.get("tools")
    first = tools[0] if isinstance(tools, list) and tools and isinstance(tools[0], dict) else None
    function = first.get("function") if first is not None else None
    tool_name = None
    if first is not None:
        tool_name = str(function.get("name", "tool")) if isinstance(function, dict) else "tool"
    return derive(
        raw_body,
        body,
        query=last_user_text(body.get("messages")),
        model=model if isinstance(model, str) else DEFAULT_MODEL,
        thinking=body.get("reasoning_effort") != "none",
        tool_name=tool_name,
        id_prefix="chatcmpl-",
        tool_id_prefix="call_",
    )


def _finish_reason(reply: Reply) -> str:
    return "tool_calls" if reply.tool is not None else "stop"


def _arguments(reply: Reply) -> str:
    return json_bytes(reply.tool["input"]).decode() if reply.tool is not None else ""


def _usage(reply: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.input_tokens + reply.output_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reply.thinking_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def completion_json(reply: Reply) -> dict[str, Any]:
    """The non-streamed ``chat.completion`` object."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    if reply.thinking is not None:
        message["reasoning_content"] = reply.thinking
    if reply.tool is not None:
        message["tool_calls"] = [
            {
                "id": reply.tool["id"],
                "type": "function",
                "function": {"name": reply.tool["name"], "arguments": _arguments(reply)},
            }
        ]
    message.update(refusal=None, annotations=[])
    return {
        "id": reply.message_id,
        "object": "chat.completion",
        "created": CREATED,
        "model": reply.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _finish_reason(reply),
            }
        ],
        "usage": _usage(reply),
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }


def completion_chunks(reply: Reply, *, include_usage: bool = False) -> list[dict[str, Any]]:
    """The ordered ``chat.completion.chunk`` objects of a streamed reply (without ``[DONE]``)."""

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": reply.message_id,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": reply.model,
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if include_usage:
            out["usage"] = None
        return out

    chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
    if reply.thinking is not None:
        chunks += [chunk({"reasoning_content": p}) for p in pieces(reply.thinking, TEXT_CHUNK)]
    chunks += [chunk({"content": p}) for p in pieces(reply.text, TEXT_CHUNK)]
    if reply.tool is not None:
        first, *rest = pieces(_arguments(reply), JSON_CHUNK)
        call = {
            "index": 0,
            "id": reply.tool["id"],
            "type": "function",
            "function": {"name": reply.tool["name"], "arguments": first},
        }
        chunks.append(chunk({"tool_calls": [call]}))
        chunks += [
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}) for p in rest
        ]
    chunks.append(chunk({}, _finish_reason(reply)))
    if include_usage:
        chunks.append({**chunk({}), "choices": [], "usage": _usage(reply)})
    return chunks


def chunk_frame(chunk: dict[str, Any]) -> bytes:
    return b"data: " + json_bytes(chunk) + b"\n\n"


def _has_key(request: web.Request) -> bool:
    return bearer_token(request) is not None


def _include_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _routes(recorder: Recorder) -> list[Route]:
    async def completions(
        request: web.Request, record: RecordedResponse, raw: bytes, body: dict[str, Any]
    ) -> web.StreamResponse:
        for field in ("model", "messages"):
            if field not in body:
                missing = error_body(400, f"Missing required parameter: '{field}'.", field)
                return await PROVIDER.json(request, record, missing, status=400)
        reply = build_reply(raw, body)
        headers = PROVIDER.headers(
            record, **{"openai-organization": "fake-org", "openai-version": "2020-10-01"}
        )
        if body.get("stream") is not True:
            return await PROVIDER.json(request, record, completion_json(reply), headers=headers)
        chunks = completion_chunks(reply, include_usage=_include_usage(body))
        return await send_stream(
            request,
            record,
            [*map(chunk_frame, chunks), DONE],
            content_type="text/event-stream; charset=utf-8",
            headers=headers,
        )

    async def models(request: web.Request, record: RecordedResponse, *_: object) -> web.Response:
        data = [
            {"id": mid, "object": "model", "created": created, "owned_by": "system"}
            for mid, created in MODELS
        ]
        return await PROVIDER.json(request, record, {"object": "list", "data": data})

    return [
        PROVIDER.route(recorder, "POST", "/v1/chat/completions", completions),
        PROVIDER.route(recorder, "GET", "/v1/models", models),
    ]


PROVIDER = Provider(
    prefix="/openai",
    routes=_routes,
    owns=_has_key,
    has_key=_has_key,
    missing_key=(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization "
        "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
    ),
    bad_json="We could not parse the JSON body of your request.",
    error_body=error_body,
    request_id_header="x-request-id",
)
