"""The analysis base URL must never point at this gateway (architecture §6).

A conscience analysis sent through the gateway would be traced, observed and verified in turn:
one call per analysis, forever. Two checks refuse it:

1. **At start** (:func:`gateway_url_problem`, applied by the verifier's settings): a base URL whose
   path starts with a gateway provider route (``/anthropic``, ``/openai``, ``/gemini``, or the
   named-agent ``/agent/...``), or whose port is the gateway's default 8787, is refused. The rule
   is deliberately simple; a gateway on another port without a provider path slips through it and
   is caught by the second check.
2. **At run time**: every answer of the gateway carries ``x-smoltbot-event-id``. An analysis answer
   with that header is an ``AnalysisError`` and opens the backend's circuit at once.
"""

from __future__ import annotations

from urllib.parse import urlsplit

GATEWAY_EVENT_HEADER = "x-smoltbot-event-id"
GATEWAY_DEFAULT_PORT = 8787
GATEWAY_ROUTES = ("anthropic", "openai", "gemini", "agent")
SELF_LOOP_MESSAGE = "analysis base URL points at the smoltbot gateway"


def gateway_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be an analysis base URL, or None. Never echoes the URL (it may hold a
    userinfo password)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    first = parts.path.strip("/").split("/", 1)[0].lower()
    if first in GATEWAY_ROUTES:
        return (
            f"points at the smoltbot gateway (a /{first} route); give the analysis server itself, "
            "not the gateway in front of it"
        )
    if port == GATEWAY_DEFAULT_PORT:
        return (
            f"points at the smoltbot gateway (port {GATEWAY_DEFAULT_PORT}); give the analysis "
            "server itself, not the gateway in front of it"
        )
    return None
