"""Error answers from the contracts' catalogue, the same bytes through Litestar and raw ASGI."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandlersMap, Send
from smoltbot_contracts.errors import ERROR_STATUS, ErrorBody, ErrorType, error_type_for_status

_ENCODER = msgspec.json.Encoder()
_JSON_CONTENT_TYPE = (b"content-type", b"application/json")


class ServiceError(Exception):
    """Base of every error a service raises on purpose; the class names its catalogue type.

    ``message`` is what the client reads. ``str()`` is the log detail, which may say more
    (internal addresses, exception names) and therefore never goes into a response.
    """

    error_type: ClassVar[ErrorType] = "internal_error"

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message if detail is None else detail)
        self.message = message

    @property
    def status_code(self) -> int:
        return ERROR_STATUS[self.error_type]


class ErrorReply:
    """One error answer encoded once, so a constant answer costs no encoding per request.

    ``status`` overrides the catalogue's only for a framework error whose status the catalogue
    does not list (the client must still see the status the framework chose). ``error_object``
    replaces the message in ``error`` by a provider-shaped object (the gateway's provider routes);
    ``checkpoint`` is the integrity checkpoint an ``integrity_violation`` carries.
    """

    __slots__ = ("_headers", "body", "error_type", "status")

    def __init__(
        self,
        error_type: ErrorType,
        message: str,
        *,
        explanation: str | None = None,
        reason: str | None = None,
        status: int | None = None,
        error_object: dict[str, object] | None = None,
        checkpoint: dict[str, object] | None = None,
    ) -> None:
        self.error_type: ErrorType = error_type
        self.status = ERROR_STATUS[error_type] if status is None else status
        body = ErrorBody(
            error=message if error_object is None else error_object,
            type=error_type,
            message=explanation,
            reason=reason,
            checkpoint=checkpoint,
        )
        self.body = _ENCODER.encode(body)
        self._headers = (_JSON_CONTENT_TYPE, (b"content-length", str(len(self.body)).encode()))

    async def send(self, send: Send, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
        """Answer on a raw ASGI ``send`` (the gateway's proxy path bypasses Litestar)."""
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [*self._headers, *headers],
            }
        )
        await send({"type": "http.response.body", "body": self.body, "more_body": False})

    def response(self, headers: Mapping[str, str] | None = None) -> Response[bytes]:
        """The same answer as a Litestar response (for exception handlers)."""
        return Response(
            self.body, status_code=self.status, media_type=MediaType.JSON, headers=headers
        )


async def send_error(
    send: Send,
    error_type: ErrorType,
    message: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Encode and send an error whose message is only known now (prefer a prepared ErrorReply)."""
    await ErrorReply(error_type, message).send(send, headers)


_INTERNAL = ErrorReply("internal_error", "internal server error")


def exception_handlers(
    log: logging.Logger,
    *,
    headers: Mapping[ErrorType, Mapping[str, str]] | None = None,
    overrides: ExceptionHandlersMap | None = None,
) -> ExceptionHandlersMap:
    """The one exception -> HTTP map of an app.

    :class:`ServiceError` answers with its type, a framework ``HTTPException`` with the type of
    its status, anything else with a logged 500. ``headers`` adds response headers per type
    (``WWW-Authenticate`` on a 401); ``overrides`` win for the classes they name (Litestar picks
    the closest class in the MRO).
    """
    by_type = dict(headers or {})

    def service_error(_: Request[Any, Any, Any], exc: ServiceError) -> Response[bytes]:
        return ErrorReply(exc.error_type, exc.message).response(by_type.get(exc.error_type))

    def http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
        error_type = error_type_for_status(exc.status_code)
        reply = ErrorReply(error_type, exc.detail, status=exc.status_code)
        return reply.response(by_type.get(error_type))

    def unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
        log.exception("unhandled error", extra={"path": request.url.path}, exc_info=exc)
        return _INTERNAL.response()

    handlers: ExceptionHandlersMap = {
        ServiceError: service_error,
        HTTPException: http_exception,
        Exception: unexpected,
    }
    handlers.update(overrides or {})
    return handlers
