"""What differs between the providers on the wire (architecture §5): where the key is, how a
stream is asked for, and how an error looks to that provider's SDK.

Every error the gateway makes on a provider route keeps the catalogue's top-level ``type`` and
``message`` and puts the provider's own error object under ``error``: the official SDKs read
their message from it (the Anthropic and OpenAI SDKs show a bare status otherwise, and
google-genai fails on anything but an object).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import get_args
from urllib.parse import parse_qsl

from smoltbot_contracts import Provider
from smoltbot_contracts.errors import ERROR_STATUS, ErrorType
from smoltbot_web import ErrorReply

__all__ = [
    "PROVIDERS",
    "WIRES",
    "KeySources",
    "Provider",
    "ProviderWire",
    "key_sources",
    "redact_key_param",
]

PROVIDERS: tuple[Provider, ...] = get_args(Provider)

# google.rpc status names the Gemini API uses for each HTTP status we can answer.
_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
}


_KEY_PARAM = re.compile(r"([?&]key=)[^&#\s'\"]*")


def redact_key_param(text: str) -> str:
    """``text`` with any ``key=`` query value (Gemini's API key) replaced, for logs."""
    return _KEY_PARAM.sub(r"\1<redacted>", text)


class KeySources:
    """The places a client may put its provider key, read in one pass over the headers."""

    __slots__ = ("api_key", "bearer", "goog", "query")

    def __init__(self) -> None:
        self.api_key: str | None = None
        self.bearer: str | None = None
        self.goog: str | None = None
        self.query: str | None = None


def _bearer(value: str) -> str | None:
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def key_sources(headers: Iterable[tuple[bytes, bytes]], query: bytes) -> KeySources:
    """Every candidate key of a request (ASGI header names are lower-case)."""
    found = KeySources()
    for name, raw in headers:
        if name == b"x-api-key" and found.api_key is None:
            found.api_key = raw.decode("latin-1").strip() or None
        elif name == b"authorization" and found.bearer is None:
            found.bearer = _bearer(raw.decode("latin-1"))
        elif name == b"x-goog-api-key" and found.goog is None:
            found.goog = raw.decode("latin-1").strip() or None
    if b"key=" in query:
        for field, value in parse_qsl(query.decode("latin-1")):
            if field == "key" and value:
                found.query = value
                break
    return found


@dataclass(frozen=True, slots=True)
class ProviderWire:
    """One provider's conventions."""

    name: Provider
    key_header: str
    """What a 401 tells a client it forgot (the provider's own header)."""

    def key(self, sources: KeySources) -> str | None:
        """The key this provider's SDK sends, else any other place a client may have used."""
        if self.name == "openai":
            order = (sources.bearer, sources.api_key, sources.goog, sources.query)
        elif self.name == "gemini":
            order = (sources.goog, sources.query, sources.bearer, sources.api_key)
        else:
            order = (sources.api_key, sources.bearer, sources.goog, sources.query)
        return next((k for k in order if k), None)

    def streams(self, path: str, query: bytes, body_stream: bool) -> bool:
        """A streamed answer was asked for: ``"stream": true``, or Gemini's streaming method
        (``:streamGenerateContent``) or ``alt=sse``."""
        if body_stream:
            return True
        return self.name == "gemini" and (":streamGenerateContent" in path or b"alt=sse" in query)

    def error(
        self,
        error_type: ErrorType,
        message: str,
        *,
        reason: str | None = None,
        checkpoint: dict[str, object] | None = None,
    ) -> ErrorReply:
        """An error answer shaped so this provider's SDK reads ``message`` (``checkpoint``: the
        integrity checkpoint of an ``integrity_violation``, at the top level)."""
        status = ERROR_STATUS[error_type]
        error_object: dict[str, object]
        if self.name == "openai":
            error_object = {"message": message, "type": error_type, "param": None, "code": None}
        elif self.name == "gemini":
            error_object = {
                "code": status,
                "message": message,
                "status": _GOOGLE_STATUS.get(status, "UNKNOWN"),
            }
        else:
            error_object = {"type": error_type, "message": message}
        return ErrorReply(
            error_type,
            message,
            explanation=message,
            reason=reason,
            error_object=error_object,
            checkpoint=checkpoint,
        )


WIRES: dict[Provider, ProviderWire] = {
    "anthropic": ProviderWire("anthropic", "x-api-key"),
    "openai": ProviderWire("openai", "Authorization: Bearer <key>"),
    "gemini": ProviderWire("gemini", "x-goog-api-key"),
}
