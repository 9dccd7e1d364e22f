"""Fake Gemini API (Google AI, ``generativelanguage.googleapis.com``), at the root and under
``/gemini``, for API versions ``v1beta`` and ``v1`` (google-genai 3.x calls ``v1``):

- ``POST /v1beta/models/{model}:generateContent``: a pretty-printed ``GenerateContentResponse``;
- ``POST /v1beta/models/{model}:streamGenerateContent?alt=sse``: SSE, ``data: {chunk}\\r\\n\\r\\n``
  (CRLF, as Google sends it); without ``alt=sse``, a JSON array of the same chunks;
- ``GET /v1beta/models``: a short model list.

Content follows :mod:`._reply`: a thought part ``{"text": ..., "thought": true}`` when
``generationConfig.thinkingConfig.includeThoughts`` is true, a text part
``"Echo: <last user text>"`` and, when ``tools`` hold ``functionDeclarations``, a
``functionCall`` part ``{"name", "args"}`` for the first declaration. Streams send one part per
chunk (thought and text in pieces, the function call whole), ``finishReason`` on the last.
The key is ``x-goog-api-key`` or ``?key=``; errors have Google's shape (:func:`error_body`).
Request fields are read in lowerCamelCase or snake_case, as Google accepts both.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aiohttp import web

from smoltbot_testing.fake_upstream._reply import Reply, derive, last_user_text
from smoltbot_testing.fake_upstream._wire import (
    FORCED_ERROR,
    TEXT_CHUNK,
    Provider,
    RecordedResponse,
    Recorder,
    Route,
    pieces,
    send_stream,
)

__all__ = [
    "FORCED_ERROR",
    "PROVIDER",
    "array_frames",
    "build_reply",
    "error_body",
    "generate_request",
    "pretty",
    "response_json",
    "sse_frame",
    "stream_chunks",
]

API_VERSIONS = ("v1beta", "v1")
MODELS = (
    ("gemini-2.5-pro", "Gemini 2.5 Pro"),
    ("gemini-2.5-flash", "Gemini 2.5 Flash"),
    ("gemini-3-pro", "Gemini 3 Pro"),
    ("gemini-3-flash", "Gemini 3 Flash"),
)
STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
JSON_TYPE = "application/json; charset=UTF-8"
NO_KEY = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API key or other form of API consumer identity to call this API."
)


def generate_request(text: str = "x", **fields: Any) -> dict[str, Any]:
    """The smallest ``generateContent`` body: the one user turn ``text``; ``fields`` add to it
    or override (e.g. ``generationConfig={"thinkingConfig": {"includeThoughts": True}}``)."""
    return {"contents": [{"role": "user", "parts": [{"text": text}]}], **fields}


def error_body(status: int, message: str) -> dict[str, Any]:
    """The body of a Google API error, as the fake sends it (``x-fake-status``:
    ``error_body(429, FORCED_ERROR)``)."""
    return {
        "error": {"code": status, "message": message, "status": STATUSES.get(status, "UNKNOWN")}
    }


def _field(obj: object, camel: str, snake: str) -> Any:
    """A request field by its JSON (lowerCamelCase) or proto (snake_case) name."""
    if not isinstance(obj, dict):
        return None
    return obj.get(camel, obj.get(snake))


def _first_function(body: dict[str, Any]) -> str | None:
    tools = _field(body, "tools", "tools")
    for tool in tools if isinstance(tools, list) else []:
        declarations = _field(tool, "functionDeclarations", "function_declarations")
        if isinstance(declarations, list) and declarations:
            name = _field(declarations[0], "name", "name")
            return str(name) if name is not None else "tool"
    return None


def build_reply(raw_body: bytes, body: dict[str, Any], model: str) -> Reply:
    """The reply to a request for ``model`` (the ``{model}`` of the URL)."""
    config = _field(body, "generationConfig", "generation_config")
    thinking = _field(
        _field(config, "thinkingConfig", "thinking_config"), "includeThoughts", "include_thoughts"
    )
    return derive(
        raw_body,
        {**body, "model": model},
        query=last_user_text(body.get("contents"), items="parts", text_type=None),
        model=model,
        thinking=thinking is True,
        tool_name=_first_function(body),
        id_prefix="",
        tool_id_prefix="",
    )


def _parts(reply: Reply, chunk: int | None = None) -> list[dict[str, Any]]:
    """The answer's parts, texts cut every ``chunk`` characters when streaming."""

    def cut(text: str) -> list[str]:
        return pieces(text, chunk) if chunk else [text]

    parts: list[dict[str, Any]] = []
    if reply.thinking is not None:
        parts += [{"text": t, "thought": True} for t in cut(reply.thinking)]
    parts += [{"text": t} for t in cut(reply.text)]
    if reply.tool is not None:
        signature = base64.b64encode(reply.signature.encode()).decode()
        call = {"name": reply.tool["name"], "args": reply.tool["input"]}
        parts.append({"functionCall": call, "thoughtSignature": signature})
    return parts


def _usage(reply: Reply, *, final: bool = True) -> dict[str, Any]:
    details = [{"modality": "TEXT", "tokenCount": reply.input_tokens}]
    if not final:  # what Google sends on the chunks before the last
        total = reply.input_tokens
        return {"promptTokenCount": total, "totalTokenCount": total, "promptTokensDetails": details}
    usage: dict[str, Any] = {
        "promptTokenCount": reply.input_tokens,
        "candidatesTokenCount": reply.output_tokens - reply.thinking_tokens,
        "totalTokenCount": reply.input_tokens + reply.output_tokens,
        "promptTokensDetails": details,
    }
    if reply.thinking is not None:
        usage["thoughtsTokenCount"] = reply.thinking_tokens
    return usage


def _response(reply: Reply, parts: list[dict[str, Any]], *, final: bool) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
    if final:
        candidate["finishReason"] = "STOP"
    candidate["index"] = 0
    return {
        "candidates": [candidate],
        "usageMetadata": _usage(reply, final=final),
        "modelVersion": reply.model,
        "responseId": reply.message_id,
    }


def response_json(reply: Reply) -> dict[str, Any]:
    """The non-streamed ``GenerateContentResponse``."""
    return _response(reply, _parts(reply), final=True)


def stream_chunks(reply: Reply) -> list[dict[str, Any]]:
    """The ``GenerateContentResponse`` chunks of a streamed reply, one part each."""
    parts = _parts(reply, TEXT_CHUNK)
    return [_response(reply, [p], final=i == len(parts) - 1) for i, p in enumerate(parts)]


def pretty(value: object) -> bytes:
    """JSON as Google prints whole bodies: two-space indents, UTF-8 unescaped."""
    return json.dumps(value, indent=2, ensure_ascii=False).encode()


def sse_frame(chunk: dict[str, Any]) -> bytes:
    """One SSE event as Google writes it: one-line JSON with ``": "`` and ``","``, then CRLFs."""
    line = json.dumps(chunk, separators=(",", ": "), ensure_ascii=False).encode()
    return b"data: " + line + b"\r\n\r\n"


def array_frames(chunks: list[dict[str, Any]]) -> list[bytes]:
    """The writes of a stream without ``alt=sse``: one JSON array, element by element."""
    frames = [(b"[" if i == 0 else b"\n,\r\n") + pretty(c) for i, c in enumerate(chunks)]
    return [*frames, b"\n]"]


def _has_key(request: web.Request) -> bool:
    return bool(request.headers.get("x-goog-api-key") or request.query.get("key"))


def _routes(recorder: Recorder) -> list[Route]:
    async def generate(
        request: web.Request, record: RecordedResponse, raw: bytes, body: dict[str, Any]
    ) -> web.StreamResponse:
        if not isinstance(body.get("contents"), list):
            message = "* GenerateContentRequest.contents: contents is not specified\n"
            return await PROVIDER.error(request, record, 400, message)
        model, _, action = request.match_info["target"].partition(":")
        reply = build_reply(raw, body, model)
        headers = PROVIDER.headers(record, Vary="Origin, X-Origin, Referer")
        if action == "generateContent":
            return await PROVIDER.json(request, record, response_json(reply), headers=headers)
        if request.query.get("alt") == "sse":
            frames = [sse_frame(c) for c in stream_chunks(reply)]
            content_type = "text/event-stream"
        else:
            frames = array_frames(stream_chunks(reply))
            content_type = JSON_TYPE
        return await send_stream(
            request, record, frames, content_type=content_type, headers=headers
        )

    async def models(request: web.Request, record: RecordedResponse, *_: object) -> web.Response:
        listed = [
            {
                "name": f"models/{mid}",
                "version": "001",
                "displayName": name,
                "inputTokenLimit": 1048576,
                "outputTokenLimit": 65536,
                "supportedGenerationMethods": ["generateContent", "countTokens"],
                "thinking": True,
            }
            for mid, name in MODELS
        ]
        return await PROVIDER.json(request, record, {"models": listed})

    table: list[Route] = []
    for version in API_VERSIONS:
        target = f"/{version}/models/{{target:[^/:]+:(?:generateContent|streamGenerateContent)}}"
        table += [
            PROVIDER.route(recorder, "POST", target, generate),
            PROVIDER.route(recorder, "GET", f"/{version}/models", models),
        ]
    return table


PROVIDER = Provider(
    prefix="/gemini",
    routes=_routes,
    owns=_has_key,
    has_key=_has_key,
    missing_key=(403, NO_KEY),
    bad_json="Invalid JSON payload received.",
    error_body=error_body,
    request_id_header="x-fake-request-id",  # Google sends none; this one names the record
    encode=pretty,
    content_type=JSON_TYPE,
)
