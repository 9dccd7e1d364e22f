"""Small raw-ASGI helpers for the proxy path (Litestar's response machinery is bypassed there)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.types import Receive, Send

_JSON = msgspec.json.Encoder()
JSON_CONTENT_TYPE = (b"content-type", b"application/json")


class BodyTooLargeError(ValueError):
    """The request body is larger than the gateway accepts (answered with 413)."""


async def read_body(receive: Receive, max_bytes: int) -> bytes:
    """The whole request body (LLM requests are small enough to buffer; injection needs it),
    refused past ``max_bytes`` so no caller can exhaust the gateway's memory."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Any = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError("client disconnected while sending the body")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > max_bytes:
                raise BodyTooLargeError(f"request body exceeds {max_bytes} bytes")
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_json(
    send: Send,
    status: int,
    payload: dict[str, Any],
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = _JSON.encode(payload)
    headers = [JSON_CONTENT_TYPE, (b"content-length", str(len(body)).encode())]
    headers.extend(extra_headers or ())
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
