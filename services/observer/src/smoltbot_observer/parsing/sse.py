"""Server-sent-event payload extraction shared by every provider (gateway.md §1.7)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

_DECODER = msgspec.json.Decoder()


# What a body that is not JSON raises: DecodeError, UnicodeDecodeError (a ValueError) for
# invalid UTF-8, RecursionError for nesting past the decoder's limit.
NOT_JSON = (msgspec.DecodeError, ValueError, RecursionError)


def decode_text(data: bytes) -> str:
    """UTF-8 text of the whole captured body.

    Decoding the complete buffer at once makes a multi-byte character split across network
    chunks a non-issue; a character cut by the capture cap becomes U+FFFD at the very end.
    """
    return data.decode("utf-8", errors="replace")


def iter_data(text: str) -> Iterator[dict[str, Any]]:
    """Yield each ``data:`` payload that is a JSON object.

    Split on ``\\n`` only: JSON strings may legally contain U+2028, which ``splitlines`` would
    break. ``[DONE]``, comments, other fields and unparsable payloads are skipped silently.
    """
    for raw_line in text.split("\n"):
        line = raw_line.rstrip("\r")
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if not payload or payload == "[DONE]":
            continue
        try:
            value = _DECODER.decode(payload)
        except NOT_JSON:
            continue
        if isinstance(value, dict):
            yield value


def looks_like_sse(text: str) -> bool:
    """True when the body starts like an event stream (content-type may be missing)."""
    head = text.lstrip()[:16]
    return head.startswith(("data:", "event:", ":", "id:"))
