"""Gateway exceptions: one base; HTTP mapping happens in the proxy handler only."""

from __future__ import annotations


class GatewayError(Exception):
    """Base of everything the gateway raises on purpose."""


class UpstreamError(GatewayError):
    """The upstream could not be reached or answered nothing usable before any response byte.

    Safe to turn into a 502: the client has received nothing yet.
    """
