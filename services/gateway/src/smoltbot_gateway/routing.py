"""Which provider a request is for, under which agent name, and the path that goes upstream.

Provider routes are ``/anthropic/*``, ``/openai/*``, ``/gemini/*`` and, for named agents,
``/agent/{name}/{provider}/*``. The upstream path is forwarded as the client encoded it; a path
whose ``..`` segments would climb above the provider prefix (also written ``%2e%2e``, or hidden
behind an encoded slash) is refused rather than normalised, so nothing outside the provider's
API can ever be reached through the gateway.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import unquote

from smoltbot_gateway.providers import PROVIDERS, Provider

__all__ = ["BadPathError", "Target", "match_target"]

_NAME_MAX = 128
_ENCODED_SEPARATORS = re.compile(rb"%(2e|2f|5c)", re.IGNORECASE)
_DECODED = {b"2e": b".", b"2f": b"/", b"5c": b"/"}
_PREFIXES = {f"/{p}".encode(): p for p in PROVIDERS}


class BadPathError(ValueError):
    """The path is for ``provider`` but cannot be forwarded (answered with 400)."""

    def __init__(self, provider: Provider, message: str) -> None:
        super().__init__(message)
        self.provider: Provider = provider


class Target(NamedTuple):
    provider: Provider
    agent_name: str | None
    path: str
    """The path after the provider prefix, as the client encoded it ('' or '/...')."""


def _climbs_out(path: bytes) -> bool:
    """True when ``..`` segments would leave the path's root."""
    decoded = _ENCODED_SEPARATORS.sub(lambda m: _DECODED[m.group(1).lower()], path)
    depth = 0
    for segment in decoded.replace(b"\\", b"/").split(b"/"):
        if segment == b"..":
            depth -= 1
            if depth < 0:
                return True
        elif segment not in (b"", b"."):
            depth += 1
    return False


def _provider_rest(path: bytes) -> tuple[Provider, bytes] | None:
    """``/<provider>`` or ``/<provider>/...`` (a whole segment) -> (provider, rest)."""
    end = path.find(b"/", 1)
    head = path if end < 0 else path[:end]
    provider = _PREFIXES.get(head)
    if provider is None:
        return None
    return provider, b"" if end < 0 else path[end:]


def _agent_name(provider: Provider, raw: bytes) -> str:
    try:
        name = unquote(raw.decode("ascii"), errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise BadPathError(provider, "agent name must be URL-encoded UTF-8") from None
    if not name or len(name) > _NAME_MAX or not name.isprintable() or "/" in name:
        raise BadPathError(provider, f"agent name must be 1 to {_NAME_MAX} printable characters")
    return name


def match_target(raw_path: bytes) -> Target | None:
    """The provider target of ``raw_path``; None when it is no provider route.

    Raises :class:`BadPathError` for a provider route that must not be forwarded.
    """
    name: str | None = None
    path = raw_path
    if path.startswith(b"/agent/"):
        name_end = path.find(b"/", 7)
        if name_end < 0:
            return None
        name_raw, path = path[7:name_end], path[name_end:]
        found = _provider_rest(path)
        if found is None:
            return None
        name = _agent_name(found[0], name_raw)
    else:
        found = _provider_rest(path)
        if found is None:
            return None
    provider, rest = found
    suspicious = b".." in rest or b"%" in rest or b"\\" in rest  # cheap check on the hot path
    if suspicious and _climbs_out(rest):
        raise BadPathError(provider, "path leaves the provider's API ('..' segments)")
    return Target(provider, name, rest.decode("latin-1"))
