"""Reading the request on the proxy path (raw ASGI; error answers go through smoltbot_web)."""

from __future__ import annotations

from typing import Any

from litestar.types import Receive


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
