"""The upstream HTTP client behind a small interface (architecture §5.4).

The hot path needs only: send a request, get status + raw headers, iterate raw body chunks,
close. :class:`AiohttpUpstream` implements it (benchmarked fastest for this shape); an httpx
implementation can be added behind the same Protocol without touching the proxy.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Protocol

import aiohttp
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)
from yarl import URL

from smoltbot_gateway.errors import UpstreamError
from smoltbot_gateway.providers import redact_key_param

log = logging.getLogger(__name__)

# Headers aiohttp would otherwise invent; the client's own (or none) must go upstream, or e.g. a
# client that never asked for gzip would receive gzip it cannot read.
_SKIP_AUTO_HEADERS = frozenset({"Accept", "Accept-Encoding", "User-Agent", "Content-Type"})


class UpstreamResponse(Protocol):
    status: int
    headers: list[tuple[bytes, bytes]]

    def iter_raw(self) -> AsyncIterator[bytes]:
        """Body bytes as received (still content-encoded); raises UpstreamError on failure."""
        ...

    async def aclose(self) -> None:
        """Release the connection; must be safe to call twice and after a partial read."""
        ...


class UpstreamClient(Protocol):
    async def start(self) -> None: ...

    async def send(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes | bytearray | None,
    ) -> UpstreamResponse:
        """Send a request and return once the response headers arrived.

        Raises :class:`UpstreamError` when no response could be had.
        """
        ...

    async def close(self) -> None:
        """Release everything; must be safe whether or not ``start`` ran or succeeded."""
        ...


class _AiohttpResponse:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers = list(response.raw_headers)
        self._closed = False

    async def iter_raw(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, OSError) as exc:  # OSError covers read timeouts
            raise UpstreamError(f"upstream body failed: {type(exc).__name__}") from exc

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._response.content.at_eof():
            self._response.release()  # fully read: the connection goes back to the pool
        else:
            self._response.close()  # abandoned mid-body: the connection cannot be reused


class AiohttpUpstream:
    """One long-lived ``ClientSession`` per process; never decompresses, never keeps cookies."""

    def __init__(
        self,
        *,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 600.0,
        connect_retries: int = 2,
        max_connections: int = 1000,
        pool_timeout_s: float = 10.0,
    ) -> None:
        # ``connect`` bounds waiting for a pooled connection plus connecting: with every
        # connection busy on long streams a new call fails fast instead of hanging.
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=pool_timeout_s,
            sock_connect=connect_timeout_s,
            sock_read=read_timeout_s,
        )
        self._connect_retries = connect_retries
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is not None:
            return
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, limit_per_host=0, keepalive_timeout=60.0
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            auto_decompress=False,
            # A shared jar would hand one agent's provider cookies to every other agent.
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
        )

    async def send(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes | bytearray | None,
    ) -> UpstreamResponse:
        if self._session is None:
            raise UpstreamError("upstream client is not started")
        try:
            try:
                response = await self._request(method, url, headers, body)
            except aiohttp.ClientConnectorError:
                if not self._connect_retries:
                    raise
                response = await self._retry_connect(method, url, headers, body)
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamError(
                f"cannot connect to upstream: {exc.os_error}", "upstream unreachable"
            ) from exc
        except TimeoutError as exc:
            raise UpstreamError(
                "upstream timed out before responding", "upstream timed out before responding"
            ) from exc
        except aiohttp.ClientError as exc:
            detail = redact_key_param(f"upstream failed: {type(exc).__name__}: {exc}")
            raise UpstreamError(detail) from exc
        return _AiohttpResponse(response)

    async def _request(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes | bytearray | None,
    ) -> aiohttp.ClientResponse:
        assert self._session is not None
        return await self._session.request(
            method,
            # As the client encoded it: parsing would decode %2e%2e and normalise dot segments.
            URL(url, encoded=True),
            headers=headers,
            data=body,
            allow_redirects=False,
            skip_auto_headers=_SKIP_AUTO_HEADERS,
        )

    async def _retry_connect(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes | bytearray | None,
    ) -> aiohttp.ClientResponse:
        """Only connection establishment is retried: then no byte of the request went out. The
        first attempt is made without building a retry loop (the hot path pays nothing)."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._connect_retries),
            wait=wait_exponential(multiplier=0.05, max=1.0),
            retry=retry_if_exception_type(aiohttp.ClientConnectorError),
            reraise=True,
        )
        response: aiohttp.ClientResponse = await retrying(self._request, method, url, headers, body)
        return response

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
