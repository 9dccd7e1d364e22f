"""Small raw-ASGI helpers for the proxy path (Litestar's response machinery is bypassed there)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.types import Receive, Send

_JSON = msgspec.json.Encoder()
JSON_CONTENT_TYPE = (b"content-type", b"application/json")


async def read_body(receive: Receive) -> bytes:
    """The whole request body (LLM requests are small enough to buffer; injection needs it)."""
    chunks: list[bytes] = []
    while True:
        message: Any = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError("client disconnected while sending the body")
        chunk = message.get("body", b"")
        if chunk:
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
