"""Gateway exceptions: one base; HTTP mapping happens in the proxy handler only."""

from __future__ import annotations


class GatewayError(Exception):
    """Base of everything the gateway raises on purpose."""


class UpstreamError(GatewayError):
    """The upstream could not be reached or answered nothing usable before any response byte.

    Safe to turn into a 502: the client has received nothing yet. ``str()`` holds the detail for
    logs; clients get ``public_message``, which never reveals internal addresses.
    """

    def __init__(self, detail: str, public_message: str = "upstream unavailable") -> None:
        super().__init__(detail)
        self.public_message = public_message
