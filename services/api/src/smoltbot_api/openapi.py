"""The api's OpenAPI document: served at ``/v1/openapi.json`` (JSON only: the HTML explorers load
their assets from a CDN, which an air-gapped deployment cannot reach) and checked in as
``contracts/openapi/api.json`` (``make openapi``; a test fails when the two drift apart).

Litestar documents its own error bodies (``status_code``/``detail``); every ``/v1`` error here
answers with the catalogue's ``{"error", "type"}`` instead (``smoltbot_contracts.errors``), so
:func:`finish_openapi` points each operation's error responses at one ``ErrorBody`` schema.
``make openapi`` writes the checked-in copy (:mod:`smoltbot_api.openapi_file`).
"""

from __future__ import annotations

import typing
from http import HTTPStatus

import msgspec
from litestar import Litestar
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Reference,
    Schema,
)
from smoltbot_contracts.errors import ErrorType

__all__ = ["OPENAPI_PATH", "finish_openapi", "render_openapi"]

OPENAPI_PATH = "/v1/openapi.json"
_ERROR_SCHEMA = "ErrorBody"
# What any /v1 operation may answer besides its own success and errors (docs/api.md).
_COMMON_ERRORS = {
    "400": "Invalid request: a path or query value the caller must fix (named in the message).",
    "401": "Missing or invalid bearer token.",
    "404": "Unknown agent, object or route.",
    "503": "The database is unreachable; retry later.",
}


def _error_schema() -> Schema:
    text = Schema(type=OpenAPIType.STRING)
    return Schema(
        type=OpenAPIType.OBJECT,
        required=["error", "type"],
        properties={
            "error": Schema(one_of=[text, Schema(type=OpenAPIType.OBJECT)]),
            "type": Schema(type=OpenAPIType.STRING, enum=list(typing.get_args(ErrorType))),
            "message": text,
            "reason": text,
            "checkpoint": Schema(type=OpenAPIType.OBJECT),
        },
        description="The error catalogue's one body (smoltbot_contracts.errors).",
    )


def _error_response(description: str) -> OpenAPIResponse:
    reference = Reference(ref=f"#/components/schemas/{_ERROR_SCHEMA}")
    return OpenAPIResponse(
        description=description, content={"application/json": OpenAPIMediaType(schema=reference)}
    )


def finish_openapi(app: Litestar) -> None:
    """Give every ``/v1`` operation the catalogue's error body for each error it may answer.

    Runs once the routes are registered (Litestar keeps the document it builds until a route is
    added), so every handler, present and future, is covered without declaring it.
    """
    document = app.openapi_schema
    schemas = document.components.schemas
    document.components.schemas = {**(schemas or {}), _ERROR_SCHEMA: _error_schema()}
    for path, item in (document.paths or {}).items():
        if not path.startswith("/v1/"):
            continue
        for method in ("get", "put", "post", "delete", "patch"):
            operation = getattr(item, method, None)
            if operation is None:
                continue
            responses = operation.responses if operation.responses is not None else {}
            for status, response in list(responses.items()):
                if status.isdigit() and int(status) >= 400:
                    # Keep what the route said (description, headers such as Retry-After).
                    said = getattr(response, "description", "")
                    if not said or said == HTTPStatus(int(status)).description:
                        said = _COMMON_ERRORS.get(status, "Error.")  # not Litestar's generic text
                    replaced = _error_response(said)
                    replaced.headers = getattr(response, "headers", None)
                    responses[status] = replaced
            for status, description in _COMMON_ERRORS.items():
                responses.setdefault(status, _error_response(description))
            operation.responses = dict(sorted(responses.items()))


def render_openapi(app: Litestar) -> bytes:
    """The document as stable, indented JSON (keys sorted; what the checked-in copy holds)."""
    encoded = msgspec.json.encode(app.openapi_schema.to_schema(), order="sorted")
    return msgspec.json.format(encoded, indent=2) + b"\n"
