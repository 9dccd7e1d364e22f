"""Gateway exceptions: catalogue types through :class:`smoltbot_web.ServiceError`; the proxy
turns them into answers (architecture §11)."""

from __future__ import annotations

from smoltbot_web import ServiceError


class GatewayError(ServiceError):
    """Base of everything the gateway raises on purpose."""


class UpstreamError(GatewayError):
    """The upstream could not be reached or answered nothing usable before any response byte.

    Safe to turn into a 502: the client has received nothing yet. ``str()`` holds the detail for
    logs; clients get ``message``, which never reveals internal addresses.
    """

    error_type = "upstream_error"

    def __init__(self, detail: str, public_message: str = "upstream unavailable") -> None:
        super().__init__(public_message, detail=detail)
