"""The api's exceptions and its one exception -> HTTP map (architecture §11).

Every body comes from the shared catalogue (``smoltbot_contracts.errors`` through
``smoltbot_web``), whether the error is ours, Litestar's (unknown route, bad query parameter) or
the database's; only the api's own wording and its database mapping live here.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import psycopg_pool
from litestar import Request, Response
from litestar.exceptions import ValidationException
from litestar.types import ExceptionHandlersMap
from smoltbot_web import ErrorReply, ServiceError
from smoltbot_web import exception_handlers as shared_exception_handlers

__all__ = [
    "ApiError",
    "AuthenticationError",
    "ConflictError",
    "InvalidRequestError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ServiceUnavailableError",
    "ValidationError",
    "exception_handlers",
]

logger = logging.getLogger(__name__)


class ApiError(ServiceError):
    """Base of every error the api raises on purpose; a subclass names its catalogue type."""


class AuthenticationError(ApiError):
    error_type = "authentication_error"


class NotFoundError(ApiError):
    error_type = "not_found"


class ServiceUnavailableError(ApiError):
    error_type = "service_unavailable"


class InvalidRequestError(ApiError):
    """A query the caller must fix (400), e.g. ``since`` not before ``until``."""

    error_type = "invalid_request_error"


class PermissionDeniedError(ApiError):
    """A valid credential whose scope does not cover the route (403; docs/api.md)."""

    error_type = "permission_error"


class RateLimitedError(ApiError):
    """The credential used up its rate limit (429 with ``Retry-After``; docs/api.md)."""

    error_type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, retry_after_s)


def _rate_limited(_: Request[Any, Any, Any], exc: RateLimitedError) -> Response[bytes]:
    return ErrorReply("rate_limit_error", exc.message).response(
        {"Retry-After": str(exc.retry_after_s)}
    )


class ValidationError(ApiError):
    """A JSON body of the wrong shape (422); the message names the field, e.g. ``card.values``."""

    error_type = "validation_error"


class ConflictError(ApiError):
    """The request clashes with what is stored (409), e.g. a card id another version has."""

    error_type = "conflict"


# How each query parameter should look, for a 400 message that tells the caller the fix.
_PARAM_EXPECTATIONS = {
    "limit": "an integer from 1 to 1000",
    "offset": "an integer >= 0",
    "verdict": "one of clear, review_needed, boundary_violation",
    "since": "an ISO 8601 date-time, e.g. 2026-11-01T12:00:00Z",
    "until": "an ISO 8601 date-time, e.g. 2026-11-01T12:00:00Z",
    "source": "one of aap, aip",
    "kind": "one of trace, checkpoint, drift_alert, containment",
}


_DATABASE_DOWN = ErrorReply("service_unavailable", "database unavailable, retry later")


def _validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[bytes]:
    """Litestar's parameter validation, reworded as one line naming each bad parameter."""
    parts: list[str] = []
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if not isinstance(item, dict):
            continue
        key = str(item.get("key", "")) or "request"
        expected = _PARAM_EXPECTATIONS.get(key)
        got = request.query_params.get(key)
        if expected is not None:
            shown = f" (got {got!r})" if got is not None else ""
            parts.append(f"{key} must be {expected}{shown}")
        else:
            parts.append(f"{key}: {item.get('message', 'invalid value')}")
    body = any(isinstance(item, dict) and item.get("source") == "body" for item in extra)
    what = "invalid request body" if body else "invalid query parameter"
    message = f"{what}: " + "; ".join(parts) if parts else exc.detail
    return ErrorReply("invalid_request_error", message).response()


def _database_unavailable(
    request: Request[Any, Any, Any], exc: psycopg.OperationalError
) -> Response[bytes]:
    logger.warning(
        "database unavailable while serving a request",
        extra={"path": request.url.path, "error": f"{type(exc).__name__}: {exc}"[:300]},
    )
    return _DATABASE_DOWN.response()


def _invalid_value(_: Request[Any, Any, Any], exc: psycopg.DataError) -> Response[bytes]:
    """A value PostgreSQL cannot even compare (e.g. a NUL byte in an id) is the caller's error."""
    detail = exc.diag.message_primary or str(exc)
    return ErrorReply("invalid_request_error", f"invalid value in request: {detail}").response()


def exception_handlers() -> ExceptionHandlersMap:
    """The shared mapping plus the api's own: query-parameter wording and database errors."""
    return shared_exception_handlers(
        logger,
        headers={"authentication_error": {"WWW-Authenticate": "Bearer"}},
        overrides={
            ValidationException: _validation_error,
            psycopg.DataError: _invalid_value,
            RateLimitedError: _rate_limited,
            psycopg.OperationalError: _database_unavailable,
            psycopg_pool.PoolTimeout: _database_unavailable,
        },
    )
