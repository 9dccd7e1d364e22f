"""Reading request bodies within bounds (architecture §5.3): one process's memory must survive
any mix of clients.

* a ``Content-Length`` over the cap is refused before a byte is read (413);
* all bodies held at once share one gateway-wide budget; a request that does not fit is refused
  at once with 503 and ``Retry-After`` (the SDKs retry it), instead of queueing memory;
* a body must arrive within a time limit, so a client trickling bytes cannot hold a slot (408).

A declared length reserves its bytes up front and is read into one preallocated buffer (one
copy of the body in memory, never two); a chunked body reserves as it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from litestar.types import Receive

__all__ = [
    "BodyBudget",
    "BodyTimeoutError",
    "BodyTooLargeError",
    "OverBudgetError",
    "declared_length",
    "discard_body",
    "read_body",
]


class BodyTooLargeError(ValueError):
    """The body is larger than the gateway accepts (413)."""


class OverBudgetError(RuntimeError):
    """Bodies in flight already use the gateway's budget (503 with Retry-After)."""


class BodyTimeoutError(TimeoutError):
    """The body did not arrive within the limit (408)."""


SMALL_BODY = 1024 * 1024
"""Bodies up to this size (nearly every LLM call) may use the quarter of the budget that large
bodies may not: a few huge uploads can never starve ordinary calls."""


class BodyBudget:
    """Bytes of request bodies held at once by this process. Single event loop: no lock."""

    __slots__ = ("large_limit", "limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.large_limit = limit - limit // 4
        self.used = 0

    def reserve(self, size: int, *, body_size: int | None = None) -> None:
        """Take ``size`` bytes for a body of ``body_size`` (so far; default: ``size``)."""
        ceiling = self.limit if (body_size or size) <= SMALL_BODY else self.large_limit
        if self.used + size > ceiling:
            raise OverBudgetError(f"{self.used} of {self.limit} body bytes in flight")
        self.used += size

    def release(self, size: int) -> None:
        self.used = max(0, self.used - size)


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The request's ``Content-Length``, or None when absent or unreadable."""
    for name, value in headers:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return None
            return length if length >= 0 else None
    return None


class _Reading:
    """One body being read: what it has reserved so far (released by the caller)."""

    __slots__ = ("reserved",)

    def __init__(self) -> None:
        self.reserved = 0


async def _read(
    receive: Receive, declared: int | None, max_bytes: int, budget: BodyBudget, held: _Reading
) -> bytes | bytearray:
    if declared is not None:
        budget.reserve(declared)
        held.reserved = declared
        message: Any = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError("client disconnected while sending the body")
        first: bytes = message.get("body", b"")
        if len(first) > declared:
            raise BodyTooLargeError("request body is longer than its Content-Length")
        if not message.get("more_body", False):
            return first  # the usual case: the whole body in one message, no copy
        buffer = bytearray(declared)
        view = memoryview(buffer)
        view[: len(first)] = first
        size = len(first)
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ConnectionAbortedError("client disconnected while sending the body")
            chunk = message.get("body", b"")
            end = size + len(chunk)
            if end > declared:
                raise BodyTooLargeError("request body is longer than its Content-Length")
            view[size:end] = chunk
            size = end
            if not message.get("more_body", False):
                view.release()
                return buffer if size == declared else bytes(buffer[:size])
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError("client disconnected while sending the body")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > max_bytes:
                raise BodyTooLargeError(f"request body exceeds {max_bytes} bytes")
            budget.reserve(len(chunk), body_size=size)
            held.reserved += len(chunk)
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def read_body(
    receive: Receive,
    headers: list[tuple[bytes, bytes]],
    *,
    max_bytes: int,
    budget: BodyBudget,
    timeout_s: float,
) -> tuple[bytes | bytearray, int]:
    """The whole body and the bytes it reserved from ``budget`` (release them when the body is
    no longer held). Raises the errors above, or ``ConnectionAbortedError`` when the client left;
    nothing stays reserved when it raises."""
    declared = declared_length(headers)
    if declared is not None and declared > max_bytes:
        raise BodyTooLargeError(f"request body exceeds {max_bytes} bytes")
    held = _Reading()
    try:
        async with asyncio.timeout(timeout_s):
            body = await _read(receive, declared, max_bytes, budget, held)
    except TimeoutError:
        budget.release(held.reserved)
        raise BodyTimeoutError(f"request body not received within {timeout_s:g} s") from None
    except BaseException:
        budget.release(held.reserved)
        raise
    return body, held.reserved


async def discard_body(receive: Receive, timeout_s: float) -> None:
    """Read and drop the rest of a refused body, so the client, which sends its whole body
    before it reads an answer, gets the answer instead of a broken connection. Holds no memory;
    gives up after ``timeout_s``."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            while True:
                message: Any = await receive()
                if message["type"] == "http.disconnect" or not message.get("more_body", False):
                    return
