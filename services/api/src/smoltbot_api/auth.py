"""Admin bearer-token guard for every ``/v1`` route (probes and /metrics stay open)."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from smoltbot_api.errors import AuthenticationError

__all__ = ["bearer_token_guard"]

_MESSAGE = "missing or invalid bearer token"


def bearer_token_guard(admin_token: str) -> Guard:
    """A guard accepting only ``Authorization: Bearer <admin_token>``.

    The comparison is constant-time over bytes so response timing leaks nothing about the token.
    """
    expected = admin_token.encode()

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        header = connection.headers.get("authorization", "")
        scheme, _sep, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
            raise AuthenticationError(_MESSAGE)

    return guard
