"""One exception base for the api and the one place that maps errors to HTTP responses.

Every error body is ``{"error": "<message>", "type": "<kind>"}`` (self-hosting.md §2.1), whether it
comes from our own code, from Litestar (unknown route, bad query parameter) or from the database.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import psycopg_pool
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

__all__ = [
    "ApiError",
    "AuthenticationError",
    "InvalidRequestError",
    "NotFoundError",
    "ServiceUnavailableError",
    "exception_handlers",
]

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """Base of every error the api raises on purpose; carries its HTTP status and error type."""

    status_code: int = 500
    error_type: str = "api_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequestError(ApiError):
    status_code = 400
    error_type = "invalid_request_error"


class AuthenticationError(ApiError):
    status_code = 401
    error_type = "authentication_error"


class NotFoundError(ApiError):
    status_code = 404
    error_type = "not_found"


class ServiceUnavailableError(ApiError):
    status_code = 503
    error_type = "service_unavailable"


# Error types for statuses Litestar raises itself (unknown route, wrong method, ...).
_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "service_unavailable",
}

# How each query parameter should look, for a 400 message that tells the caller the fix.
_PARAM_EXPECTATIONS = {
    "limit": "an integer from 1 to 1000",
    "offset": "an integer >= 0",
    "verdict": "one of clear, review_needed, boundary_violation",
}


def _error(status_code: int, message: str, error_type: str) -> Response[dict[str, str]]:
    headers = {"WWW-Authenticate": "Bearer"} if status_code == 401 else None
    return Response(
        {"error": message, "type": error_type},
        status_code=status_code,
        media_type=MediaType.JSON,
        headers=headers,
    )


def _api_error(_: Request[Any, Any, Any], exc: ApiError) -> Response[dict[str, str]]:
    return _error(exc.status_code, exc.message, exc.error_type)


def _validation_error(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, str]]:
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
    message = "invalid query parameter: " + "; ".join(parts) if parts else exc.detail
    return _error(400, message, "invalid_request_error")


def _http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, str]]:
    status = exc.status_code
    return _error(status, exc.detail, _TYPE_BY_STATUS.get(status, "api_error"))


def _database_unavailable(
    request: Request[Any, Any, Any], exc: psycopg.OperationalError
) -> Response[dict[str, str]]:
    logger.warning(
        "database unavailable while serving a request",
        extra={"path": request.url.path, "error": f"{type(exc).__name__}: {exc}"[:300]},
    )
    return _error(503, "database unavailable, retry later", "service_unavailable")


def _invalid_value(_: Request[Any, Any, Any], exc: psycopg.DataError) -> Response[dict[str, str]]:
    """A value PostgreSQL cannot even compare (e.g. a NUL byte in an id) is the caller's error."""
    detail = exc.diag.message_primary or str(exc)
    return _error(400, f"invalid value in request: {detail}", "invalid_request_error")


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, str]]:
    logger.exception("unhandled error", extra={"path": request.url.path}, exc_info=exc)
    return _error(500, "internal server error", "internal_error")


def exception_handlers() -> ExceptionHandlersMap:
    """The single error -> HTTP mapping of the app (Litestar picks the closest class in the MRO)."""
    return {
        ApiError: _api_error,
        ValidationException: _validation_error,
        HTTPException: _http_exception,
        psycopg.DataError: _invalid_value,
        psycopg.OperationalError: _database_unavailable,
        psycopg_pool.PoolTimeout: _database_unavailable,
        Exception: _unexpected,
    }
