"""Talking to the smoltbot api from the CLI: where it is, the credential, one-line errors.

Commands that change what the api owns (agent settings, containment) go through it, never
around it, so PostgreSQL stays the system of record and ``cfg:{agent}`` follows it. Every
failure is one line on stderr and exit 1: unreachable (which URL, which variable), 401 (the
key), 403 (the key's scope), 404 and the api's own message otherwise.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click
import httpx

__all__ = ["ApiClient", "api_options"]

DEFAULT_API_URL = "http://127.0.0.1:8788"
_EXIT_FAILED = 1
_TIMEOUT_S = 10.0

F = TypeVar("F", bound=Callable[..., Any])

_HINTS = {
    401: "check --api-key / SMOLTBOT_API_KEY",
    403: "the API key's scope does not allow this; use a key with scope write",
}


def api_options(func: F) -> F:
    """``--api-url`` (SMOLTBOT_API_URL) and ``--api-key`` (SMOLTBOT_API_KEY) on a command."""
    func = click.option(
        "--api-key",
        envvar=["SMOLTBOT_API_KEY", "SMOLTBOT_ADMIN_TOKEN"],
        show_envvar=True,
        help="API key sent as a bearer token (default: SMOLTBOT_API_KEY, else the admin token).",
    )(func)
    return click.option(
        "--api-url",
        envvar="SMOLTBOT_API_URL",
        show_envvar=True,
        default=DEFAULT_API_URL,
        show_default=True,
        help="Base URL of the smoltbot api (without /v1).",
    )(func)


def _fail(message: str) -> NoReturn:
    click.echo(f"smoltbot: {message}", err=True)
    sys.exit(_EXIT_FAILED)


def _why(exc: httpx.TransportError) -> str:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno:
            return os.strerror(cause.errno)
        cause = cause.__cause__ or cause.__context__
    return str(exc) or type(exc).__name__


class ApiClient:
    """A blocking client for ``/v1`` that turns every failure into one line and exit 1."""

    def __init__(self, api_url: str, api_key: str | None) -> None:
        if not api_key:
            _fail("no API key: pass --api-key or set SMOLTBOT_API_KEY (or SMOLTBOT_ADMIN_TOKEN)")
        self.base = api_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"}

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            with httpx.Client(
                base_url=f"{self.base}/v1", headers=self._headers, timeout=_TIMEOUT_S
            ) as client:
                response = client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            _fail(
                f"cannot reach the api at {self.base} ({_why(exc)}); is it running? "
                "(SMOLTBOT_API_URL)"
            )
        if response.is_success:
            return response.json()
        try:
            message = str(response.json().get("error", ""))
        except ValueError:
            message = response.text[:200]
        hint = _HINTS.get(response.status_code)
        _fail(f"{response.status_code}: {message}" + (f" ({hint})" if hint else ""))

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("POST", path, json=body)
