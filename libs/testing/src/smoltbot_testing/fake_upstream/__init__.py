"""Fake LLM providers as one real aiohttp server on loopback (one module per provider).

What it serves (each provider at the root *and* under its prefix, as the gateway forwards the
path after stripping ``/<provider>``):

- :mod:`.anthropic`, prefix ``/anthropic``: ``POST /v1/messages`` (JSON or SSE),
  ``GET /v1/models``;
- :mod:`.openai`, prefix ``/openai``: ``POST /v1/chat/completions`` (JSON or SSE, with
  ``reasoning_content`` and tool calls), ``GET /v1/models``;
- :mod:`.gemini`, prefix ``/gemini``: ``POST /v1beta/models/{model}:generateContent`` and
  ``:streamGenerateContent`` (``?alt=sse`` or a JSON array), ``GET /v1beta/models``; the same
  under ``/v1`` (the version google-genai 3.x calls by default);
- ``/__fake__``: ``GET``/``DELETE /__fake__/responses`` (the recorder over HTTP) and
  ``GET /__fake__/health``.

The root ``GET /v1/models`` is served by all three: Anthropic's when the request has
``anthropic-version`` or ``x-api-key``, else OpenAI's with ``Authorization: Bearer``, else
Gemini's with ``x-goog-api-key`` or ``?key=``, else Anthropic's (a 401: no key). Any other path
is recorded too and answered 404 in the shape of the provider it looks like.

Replies are derived from the request alone (see :mod:`._reply`): thinking
``f"The user asked: {text[:80]!r}. I will echo it back."``, answer ``f"Echo: {text}"`` (``text``:
the last user message's), a call of the first tool with input ``{"query": text[:100], "n":
len(text)}``. Every request is
recorded (method, path, query, headers, body) with the exact response bytes sent (after gzip),
readable in-process (:attr:`FakeUpstream.responses`) or over HTTP. Knobs, as request headers:
``x-fake-status``, ``x-fake-delay-ms``, ``x-fake-chunk-delay-ms``, ``x-fake-thinking`` (the
thinking text to answer with; see :mod:`._wire`).
"""

from __future__ import annotations

import base64
import sys

from aiohttp import web

from smoltbot_testing.fake_upstream import anthropic, gemini, openai
from smoltbot_testing.fake_upstream._reply import thinking_for
from smoltbot_testing.fake_upstream._wire import (
    Handler,
    Provider,
    RecordedResponse,
    Recorder,
    begin,
    json_bytes,
    record_index,
)
from smoltbot_testing.fake_upstream.anthropic import FORCED_ERROR, error_body, message_request
from smoltbot_testing.loopback import LoopbackServer

__all__ = [
    "FORCED_ERROR",
    "FakeUpstream",
    "RecordedResponse",
    "command",
    "create_app",
    "error_body",
    "message_request",
    "record_index",
    "thinking_for",
]


PROVIDERS = (anthropic.PROVIDER, openai.PROVIDER, gemini.PROVIDER)  # the first is the default


def command(port: int, host: str = "127.0.0.1") -> list[str]:
    """The argv that serves the fake as its own process (``__main__``) until SIGTERM."""
    return [sys.executable, "-m", __name__, "--host", host, "--port", str(port)]


def _provider_for(request: web.Request) -> Provider:
    """The provider a request is meant for: by path prefix, then by its credentials."""
    for provider in PROVIDERS:
        if request.path == provider.prefix or request.path.startswith(provider.prefix + "/"):
            return provider
    return next((p for p in PROVIDERS if p.owns(request)), PROVIDERS[0])


def _shared(candidates: list[tuple[Provider, Handler]]) -> Handler:
    """One root route several providers serve: the first that owns the request answers."""

    async def dispatch(request: web.Request) -> web.StreamResponse:
        handler = next((h for p, h in candidates if p.owns(request)), candidates[0][1])
        return await handler(request)

    return dispatch


def create_app(recorder: Recorder) -> web.Application:
    """The aiohttp application with every provider's routes and the ``/__fake__`` inspection API."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    at_root: dict[tuple[str, str], list[tuple[Provider, Handler]]] = {}
    for provider in PROVIDERS:
        for method, path, handler in provider.routes(recorder):
            app.router.add_route(method, provider.prefix + path, handler)
            at_root.setdefault((method, path), []).append((provider, handler))
    for (method, path), candidates in at_root.items():
        handler = candidates[0][1] if len(candidates) == 1 else _shared(candidates)
        app.router.add_route(method, path, handler)

    async def list_responses(_: web.Request) -> web.Response:
        rows = [
            {
                "index": r.index,
                "method": r.method,
                "path": r.path,
                "query": r.query,
                "status": r.status,
                "complete": r.complete,
                "request_headers": r.request_headers,
                "request_body_b64": base64.b64encode(r.request_body).decode(),
                "response_headers": r.response_headers,
                "raw_b64": base64.b64encode(r.raw).decode(),
                "write_sizes": r.write_sizes,
            }
            for r in recorder.records
        ]
        return web.Response(body=json_bytes(rows), content_type="application/json")

    async def clear_responses(_: web.Request) -> web.Response:
        recorder.clear()
        return web.Response(status=204)

    async def health(_: web.Request) -> web.Response:
        return web.Response(body=b'{"status":"ok"}', content_type="application/json")

    async def not_found(request: web.Request) -> web.StreamResponse:
        record, _ = await begin(request, recorder)
        message = f"The fake upstream serves no {request.method} {request.path}"
        return await _provider_for(request).error(request, record, 404, message)

    app.router.add_get("/__fake__/responses", list_responses)
    app.router.add_delete("/__fake__/responses", clear_responses)
    app.router.add_get("/__fake__/health", health)
    app.router.add_route("*", "/{tail:.*}", not_found)  # last: whatever nothing else matched
    return app


class FakeUpstream(LoopbackServer):
    """Start/stop the fake on a loopback port, in the running loop or in its own thread.

    ``async with FakeUpstream() as fake`` serves from the caller's event loop (fine for async
    clients); ``with FakeUpstream().in_thread() as fake`` serves from a private loop in a thread,
    so blocking clients (the sync SDKs) can call it too.
    """

    thread_name = "fake-upstream"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.recorder = Recorder()

    @property
    def responses(self) -> list[RecordedResponse]:
        return list(self.recorder.records)

    def clear(self) -> None:
        self.recorder.clear()

    def create_app(self) -> web.Application:
        return create_app(self.recorder)
