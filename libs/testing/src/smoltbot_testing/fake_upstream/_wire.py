"""Writing responses while recording the exact body bytes that went on the wire.

"On the wire" means after content-encoding (gzip) and before HTTP/1.1 chunk framing: the same
bytes an HTTP client exposes as the raw body (httpx ``iter_raw()``), so a proxy test can compare
them byte for byte.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Mapping

import msgspec
from aiohttp import web

_JSON = msgspec.json.Encoder()


class RecordedResponse(msgspec.Struct, kw_only=True):
    """One request the fake answered and the raw body bytes it sent (compressed if gzipped)."""

    index: int
    method: str
    path: str
    query: str
    request_headers: list[tuple[str, str]]
    request_body: bytes
    status: int = 0
    response_headers: list[tuple[str, str]] = msgspec.field(default_factory=list)
    raw: bytes = b""
    complete: bool = False

    def request_header(self, name: str) -> str | None:
        """First value of a request header (case-insensitive), or None."""
        lowered = name.lower()
        return next((v for k, v in self.request_headers if k.lower() == lowered), None)


class Recorder:
    """Append-only log of answered requests, shared by every provider module of one server."""

    def __init__(self) -> None:
        self.records: list[RecordedResponse] = []

    def begin(self, request: web.Request, body: bytes) -> RecordedResponse:
        record = RecordedResponse(
            index=len(self.records),
            method=request.method,
            path=request.path,
            query=request.query_string,
            request_headers=[(str(k), v) for k, v in request.headers.items()],
            request_body=body,
        )
        self.records.append(record)
        return record

    def clear(self) -> None:
        self.records.clear()


def wants_gzip(request: web.Request) -> bool:
    """True when the client's ``Accept-Encoding`` lists gzip (q=0 is treated as a refusal)."""
    for item in request.headers.get("Accept-Encoding", "").split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() == "gzip":
            return params.replace(" ", "") not in {"q=0", "q=0.0", "q=0.00", "q=0.000"}
    return False


def _gzip_compressor() -> zlib._Compress:
    return zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31 = gzip container


async def send_whole(
    request: web.Request,
    record: RecordedResponse,
    *,
    status: int,
    body: bytes,
    content_type: str = "application/json",
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """A complete (non-streaming) response, gzipped when the client accepts it."""
    out_headers = {"Content-Type": content_type, **(headers or {})}
    if wants_gzip(request):
        compressor = _gzip_compressor()
        body = compressor.compress(body) + compressor.flush()
        out_headers["Content-Encoding"] = "gzip"
    out_headers["Content-Length"] = str(len(body))
    record.status = status
    record.response_headers = list(out_headers.items())
    record.raw = body
    record.complete = True
    return web.Response(status=status, body=body, headers=out_headers)


class StreamWriter:
    """An incremental response: each ``send`` is flushed (and gzip-sync-flushed) immediately."""

    def __init__(self, request: web.Request, record: RecordedResponse, status: int = 200) -> None:
        self._request = request
        self._record = record
        self._status = status
        self._raw = bytearray()
        self._compressor = _gzip_compressor() if wants_gzip(request) else None
        self._response = web.StreamResponse(status=status)

    async def start(self, content_type: str, headers: Mapping[str, str] | None = None) -> None:
        self._response.headers["Content-Type"] = content_type
        self._response.headers["Cache-Control"] = "no-cache"
        for name, value in (headers or {}).items():
            self._response.headers[name] = value
        if self._compressor is not None:
            self._response.headers["Content-Encoding"] = "gzip"
        self._record.status = self._status
        self._record.response_headers = [(str(k), v) for k, v in self._response.headers.items()]
        await self._response.prepare(self._request)

    async def send(self, data: bytes, *, delay_s: float = 0.0) -> None:
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        if self._compressor is not None:
            data = self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        await self._write(data)

    async def finish(self) -> web.StreamResponse:
        if self._compressor is not None:
            await self._write(self._compressor.flush(zlib.Z_FINISH))
        await self._response.write_eof()
        self._record.complete = True
        return self._response

    async def _write(self, data: bytes) -> None:
        if not data:
            return
        await self._response.write(data)
        # Record only after the write succeeded, so a client that went away is not counted.
        self._raw.extend(data)
        self._record.raw = bytes(self._raw)


def json_bytes(value: object) -> bytes:
    return _JSON.encode(value)
