"""The OpenAPI side of ``auth.py``: the bearer scheme's description, and the 401/403/429 answers
added to every ``/v1`` operation (Litestar has no router-wide ``responses``)."""

from __future__ import annotations

from litestar import Litestar
from litestar.openapi.spec import (
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Reference,
    Schema,
    SecurityScheme,
)

__all__ = ["BEARER_SCHEME", "document_auth"]

BEARER_SCHEME = SecurityScheme(
    type="http",
    scheme="bearer",
    description=(
        "`Authorization: Bearer <token>`: `SMOLTBOT_ADMIN_TOKEN` (scope admin, not rate "
        "limited) or an API key (`sk-smolt-...`, made with `POST /v1/api-keys` or "
        "`smoltbot api-keys create`). Scopes: read < write < admin; GET routes need read, "
        "changes to agents, cards and containment write, API keys and webhooks admin. "
        "401 authentication_error: missing, unknown or revoked credential (with "
        "`WWW-Authenticate: Bearer`); 403 permission_error: the key's scope is too low; "
        "429 rate_limit_error: the key's rate limit is used up (with `Retry-After`). "
        "Errors are `{error, type}` (docs/api.md)."
    ),
)

_ERROR_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["error", "type"],
    properties={
        "error": Schema(type=OpenAPIType.STRING, description="What went wrong."),
        "type": Schema(type=OpenAPIType.STRING, description="The catalogue's error type."),
    },
)
_SHARED_SCHEMA = "ErrorBody"  # openapi.py registers the catalogue's body under this name


def _error(
    body: Schema | Reference,
    description: str,
    headers: dict[str, OpenAPIHeader | Reference] | None = None,
) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=description,
        content={"application/json": OpenAPIMediaType(schema=body)},
        headers=headers,
    )


def _auth_responses(body: Schema | Reference) -> dict[str, OpenAPIResponse]:
    return {
        "401": _error(
            body,
            "authentication_error: no bearer token, or an unknown or revoked one.",
            {
                "WWW-Authenticate": OpenAPIHeader(
                    schema=Schema(type=OpenAPIType.STRING), description="`Bearer`"
                )
            },
        ),
        "403": _error(body, "permission_error: the API key's scope does not cover this route."),
        "429": _error(
            body,
            "rate_limit_error: the API key's rate limit is used up.",
            {
                "Retry-After": OpenAPIHeader(
                    schema=Schema(type=OpenAPIType.INTEGER),
                    description="Seconds until the key may call again.",
                )
            },
        ),
    }


def document_auth(app: Litestar, prefix: str = "/v1/") -> None:
    """Give every operation under ``prefix`` of ``app``'s schema the guard's 401/403/429 answers
    (run after ``openapi.finish_openapi``, whose ``ErrorBody`` schema they point at)."""
    spec = app.openapi_schema
    schemas = spec.components.schemas or {}
    body: Schema | Reference = (
        Reference(ref=f"#/components/schemas/{_SHARED_SCHEMA}")
        if _SHARED_SCHEMA in schemas
        else _ERROR_SCHEMA
    )
    answers = _auth_responses(body)
    for path, item in (spec.paths or {}).items():
        if not path.startswith(prefix):
            continue
        for method in ("get", "put", "post", "delete", "patch"):
            operation = getattr(item, method, None)
            if operation is None:
                continue
            responses = dict(operation.responses or {})
            responses.update(answers)
            operation.responses = dict(sorted(responses.items()))
