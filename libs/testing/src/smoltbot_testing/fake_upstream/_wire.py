"""Wire helpers every provider module shares: recording, gzip, streaming, knobs, routing.

"On the wire" means after content-encoding (gzip) and before HTTP/1.1 chunk framing: the same
bytes an HTTP client exposes as the raw body (httpx ``iter_raw()``), so a proxy test can compare
them byte for byte.

Streams are written frame by frame, each write flushed at once (and gzip-sync-flushed). A frame
that contains a multi-byte UTF-8 character goes out as **two** writes cut inside its first such
character, so a client always sees that character straddle two network chunks
(:attr:`RecordedResponse.write_sizes` tells where the cuts were).

Knobs, as request headers, for every provider: ``x-fake-status: <4xx/5xx>`` answers that error
in the provider's shape, ``x-fake-delay-ms`` waits before answering,
``x-fake-chunk-delay-ms`` waits before each streamed frame and ``x-fake-thinking: <text>``
replaces the thinking text (see :mod:`._reply`).
"""

from __future__ import annotations

import asyncio
import hashlib
import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import web

_JSON = msgspec.json.Encoder()
FORCED_ERROR = "Forced error from the fake upstream"  # the message of every x-fake-status error
THINKING_OVERRIDE: ContextVar[str | None] = ContextVar("fake_thinking", default=None)
"""The ``x-fake-thinking`` header of the request being answered (each request is its own task)."""
TEXT_CHUNK = 12  # characters per streamed text/thinking delta, so streams have several deltas
JSON_CHUNK = 10  # characters per streamed piece of tool-call arguments
SPLIT_GAP_S = 0.002  # pause between the two halves of a split character, so they travel apart

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Route = tuple[str, str, Handler]  # (method, path without the provider prefix, handler)


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
    write_sizes: list[int] = msgspec.field(default_factory=list)
    """Byte length of each write that made up ``raw`` (one entry for a whole response)."""
    complete: bool = False

    def request_header(self, name: str) -> str | None:
        """First value of a request header (case-insensitive), or None."""
        lowered = name.lower()
        return next((v for k, v in self.request_headers if k.lower() == lowered), None)

    def response_header(self, name: str) -> str | None:
        """First value of a response header the fake sent (case-insensitive), or None."""
        lowered = name.lower()
        return next((v for k, v in self.response_headers if k.lower() == lowered), None)

    @property
    def decoded(self) -> bytes:
        """``raw`` with the gzip content-encoding undone (as much as arrived, if incomplete)."""
        if self.response_header("Content-Encoding") != "gzip":
            return self.raw
        return zlib.decompressobj(31).decompress(self.raw)

    @property
    def writes(self) -> list[bytes]:
        """``raw`` cut where the fake's writes ended (compressed pieces if gzipped)."""
        pieces, start = [], 0
        for size in self.write_sizes:
            pieces.append(self.raw[start : start + size])
            start += size
        return pieces


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


async def begin(request: web.Request, recorder: Recorder) -> tuple[RecordedResponse, bytes]:
    """Read and record the request, then honour ``x-fake-delay-ms``."""
    raw = await request.read()
    record = recorder.begin(request, raw)
    delay = ms_header(request, "x-fake-delay-ms")
    if delay:
        await asyncio.sleep(delay)
    return record, raw


def ms_header(request: web.Request, name: str) -> float:
    """A milliseconds header as seconds (0 when absent, negative or not a number)."""
    try:
        return max(0.0, float(request.headers.get(name, "0"))) / 1000.0
    except ValueError:
        return 0.0


def forced_status(request: web.Request) -> int | None:
    """The error status asked for with ``x-fake-status`` (400 or more), else None."""
    forced = request.headers.get("x-fake-status", "")
    return int(forced) if forced.isdigit() and int(forced) >= 400 else None


def fake_request_id(record: RecordedResponse) -> str:
    """``req_fake<index, 12 digits>``: the request-id header value that names the record."""
    return f"req_fake{record.index:012d}"


def record_index(request_id: str) -> int:
    """The record index inside a :func:`fake_request_id` value."""
    return int(request_id.removeprefix("req_fake"))


def bearer_token(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def decode_object(raw: bytes) -> dict[str, Any] | None:
    """The request body as a JSON object, or None when it is not one (also when it is not
    UTF-8 or nests deeper than the decoder goes)."""
    try:
        body = msgspec.json.decode(raw)
    except (ValueError, RecursionError):  # msgspec.DecodeError and UnicodeDecodeError are both
        return None
    return body if isinstance(body, dict) else None


def request_digest(body: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the body without its stream flags, so both shapes of a request agree."""
    return hashlib.sha256(
        json_bytes({k: v for k, v in body.items() if k not in {"stream", "stream_options"}})
    ).hexdigest()


def pieces(text: str, size: int) -> list[str]:
    """``text`` cut every ``size`` characters (the deltas of a stream)."""
    return [text[i : i + size] for i in range(0, len(text), size)]


def wants_gzip(request: web.Request) -> bool:
    """True when the client's ``Accept-Encoding`` lists gzip (q=0 is treated as a refusal)."""
    for item in request.headers.get("Accept-Encoding", "").split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() == "gzip":
            return params.replace(" ", "") not in {"q=0", "q=0.0", "q=0.00", "q=0.000"}
    return False


def _gzip_compressor() -> zlib._Compress:
    return zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31 = gzip container


def split_inside_character(data: bytes) -> list[bytes]:
    """``data`` in two pieces cut after the first byte of its first multi-byte UTF-8 character,
    or ``[data]`` when it is all ASCII."""
    for i, byte in enumerate(data):
        if byte >= 0xC0:  # a UTF-8 lead byte of a 2-, 3- or 4-byte sequence
            return [data[: i + 1], data[i + 1 :]]
    return [data]


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
    record.write_sizes = [len(body)]
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
        """One frame; written in two pieces when it holds a multi-byte character."""
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        for n, piece in enumerate(split_inside_character(data)):
            if n:
                await asyncio.sleep(SPLIT_GAP_S)
            await self._write(self._encode(piece))

    def _encode(self, data: bytes) -> bytes:
        if self._compressor is None:
            return data
        return self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)

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
        self._record.write_sizes.append(len(data))


async def send_stream(
    request: web.Request,
    record: RecordedResponse,
    frames: Iterable[bytes],
    *,
    content_type: str,
    headers: Mapping[str, str] | None = None,
) -> web.StreamResponse:
    """A 200 stream of ``frames``, each preceded by the ``x-fake-chunk-delay-ms`` pause."""
    writer = StreamWriter(request, record)
    await writer.start(content_type, headers)
    chunk_delay = ms_header(request, "x-fake-chunk-delay-ms")
    for frame in frames:
        await writer.send(frame, delay_s=chunk_delay)
    return await writer.finish()


def json_bytes(value: object) -> bytes:
    return _JSON.encode(value)


Answer = Callable[
    [web.Request, RecordedResponse, bytes, dict[str, Any]], Awaitable[web.StreamResponse]
]
"""A route's own work: ``(request, record, raw body, JSON body)`` (the JSON body ``{}`` for a
GET), called by :meth:`Provider.route` once the common cases are answered."""


@dataclass(frozen=True, kw_only=True)
class Provider:
    """How one fake provider speaks: its routes, key rule, error shape and JSON printing."""

    prefix: str
    """Where the routes are served besides the root, e.g. ``/openai``."""
    routes: Callable[[Recorder], list[Route]]
    """The route table, paths without ``prefix``."""
    owns: Callable[[web.Request], bool]
    """Whether a request to a root path several providers serve is meant for this one."""
    has_key: Callable[[web.Request], bool]
    missing_key: tuple[int, str]
    """Status and message of the answer to a request without a key."""
    bad_json: str
    """The 400 message for a POST body that is not a JSON object."""
    error_body: Callable[[int, str], dict[str, Any]]
    request_id_header: str
    """The response header that carries :func:`fake_request_id`."""
    encode: Callable[[object], bytes] = json_bytes
    content_type: str = "application/json"

    def headers(self, record: RecordedResponse, **extra: str) -> dict[str, str]:
        return {self.request_id_header: fake_request_id(record), **extra}

    async def json(
        self,
        request: web.Request,
        record: RecordedResponse,
        value: object,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> web.Response:
        """A whole JSON answer, printed the provider's way, with the request-id header."""
        return await send_whole(
            request,
            record,
            status=status,
            body=self.encode(value),
            content_type=self.content_type,
            headers={**self.headers(record), **(headers or {})},
        )

    async def error(
        self, request: web.Request, record: RecordedResponse, status: int, message: str
    ) -> web.Response:
        """An error answer in the provider's shape."""
        return await self.json(request, record, self.error_body(status, message), status=status)

    def route(self, recorder: Recorder, method: str, path: str, answer: Answer) -> Route:
        """A route whose handler records the request, waits ``x-fake-delay-ms``, answers
        ``x-fake-status``, a missing key and (for POST) a body that is not a JSON object with
        errors, and otherwise calls ``answer``."""

        async def handle(request: web.Request) -> web.StreamResponse:
            THINKING_OVERRIDE.set(request.headers.get("x-fake-thinking") or None)
            record, raw = await begin(request, recorder)
            if (status := forced_status(request)) is not None:
                return await self.error(request, record, status, FORCED_ERROR)
            if not self.has_key(request):
                return await self.error(request, record, *self.missing_key)
            body = decode_object(raw) if method == "POST" else {}
            if body is None:
                return await self.error(request, record, 400, self.bad_json)
            return await answer(request, record, raw, body)

        return (method, path, handle)
