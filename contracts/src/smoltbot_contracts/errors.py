"""The HTTP error catalogue: every error type a smoltbot service answers, with its one status.

A body is ``{"error": <message>, "type": <type>}`` (self-hosting.md §2.1 plus the ``type`` the
gateway reference adds), with ``message`` or ``reason`` only where the gateway reference puts
them. Services build bodies only from here, so a type can never drift from its status or be
spelled two ways.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal

import msgspec

__all__ = ["ERROR_STATUS", "ErrorBody", "ErrorType", "error_type_for_status"]

ErrorType = Literal[
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "containment_error",
    "integrity_violation",
    "license_error",
    "not_found",
    "method_not_allowed",
    "request_timeout",
    "conflict",
    "request_too_large",
    "validation_error",
    "rate_limit_error",
    "internal_error",
    "not_implemented",
    "upstream_error",
    "service_unavailable",
]

# Where two types share a status, the first listed is the generic one (what a framework error
# with that status gets); the later one is the specific answer a service gives on purpose.
ERROR_STATUS: Final[Mapping[ErrorType, int]] = MappingProxyType(
    {
        "invalid_request_error": 400,
        "authentication_error": 401,
        "permission_error": 403,
        "containment_error": 403,  # a paused or killed agent (gateway reference §1.3)
        "integrity_violation": 403,  # enforce mode blocked the answer (gateway reference §2.4)
        "license_error": 403,  # the gateway's licence is invalid (gateway reference §4.3)
        "not_found": 404,
        "method_not_allowed": 405,
        "request_timeout": 408,  # the request body did not arrive in time
        "conflict": 409,  # the request clashes with what is stored (e.g. a card id reused)
        "request_too_large": 413,
        "validation_error": 422,  # a well-formed body of the wrong shape (names the field)
        "rate_limit_error": 429,
        "internal_error": 500,
        "not_implemented": 501,
        "upstream_error": 502,  # the provider could not be reached; nothing was sent yet
        "service_unavailable": 503,
    }
)

_TYPE_BY_STATUS: Final[Mapping[int, ErrorType]] = MappingProxyType(
    {status: error_type for error_type, status in reversed(list(ERROR_STATUS.items()))}
)


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The one error body; optional fields are left out when unset (field order is wire order)."""

    error: str | dict[str, object]
    """The message; on a provider route, the provider's own error object instead (the official
    SDKs read their message from it, and google-genai fails on anything but an object)."""
    type: ErrorType
    message: str | None = None  # a longer explanation (the gateway's 404 lists its routes)
    reason: str | None = None  # why a 403 happened: agent_paused / agent_killed, or what failed
    checkpoint: dict[str, object] | None = None
    """The integrity checkpoint behind an ``integrity_violation`` (gateway reference §2.4):
    ``checkpoint_id``, ``verdict``, ``concerns``, ``reasoning_summary``, ``recommended_action``."""


def error_type_for_status(status: int) -> ErrorType:
    """The catalogue type for a status a framework raised (unknown route, wrong method ...).

    A status outside the catalogue gets the generic client or server type, so a body never
    carries a type the catalogue does not list.
    """
    found = _TYPE_BY_STATUS.get(status)
    if found is not None:
        return found
    return "invalid_request_error" if status < 500 else "internal_error"
