"""A fake LLM provider as a real aiohttp server on loopback (one module per provider).

Anthropic routes are served at the root (``/v1/messages``) and under ``/anthropic``; later
providers get their own prefix (``/openai``, ``/gemini``) so one server can fake all of them.
Every answered request is recorded with the exact body bytes sent, readable in-process
(:attr:`FakeUpstream.responses`) or over HTTP (``GET /__fake__/responses``).
"""

from __future__ import annotations

import asyncio
import base64
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from smoltbot_testing.fake_upstream import anthropic
from smoltbot_testing.fake_upstream._wire import RecordedResponse, Recorder, json_bytes
from smoltbot_testing.fake_upstream.anthropic import FORCED_ERROR, error_body, message_request

__all__ = [
    "FORCED_ERROR",
    "FakeUpstream",
    "RecordedResponse",
    "command",
    "create_app",
    "error_body",
    "message_request",
]


def command(port: int, host: str = "127.0.0.1") -> list[str]:
    """The argv that serves the fake as its own process (``__main__``) until SIGTERM."""
    return [sys.executable, "-m", __name__, "--host", host, "--port", str(port)]


def create_app(recorder: Recorder) -> web.Application:
    """The aiohttp application with every provider's routes and the ``/__fake__`` inspection API."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    anthropic.add_routes(app, recorder)
    anthropic.add_routes(app, recorder, prefix="/anthropic")

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
            }
            for r in recorder.records
        ]
        return web.Response(body=json_bytes(rows), content_type="application/json")

    async def clear_responses(_: web.Request) -> web.Response:
        recorder.clear()
        return web.Response(status=204)

    async def health(_: web.Request) -> web.Response:
        return web.Response(body=b'{"status":"ok"}', content_type="application/json")

    app.router.add_get("/__fake__/responses", list_responses)
    app.router.add_delete("/__fake__/responses", clear_responses)
    app.router.add_get("/__fake__/health", health)
    return app


class FakeUpstream:
    """Start/stop the fake on a loopback port, in the running loop or in its own thread.

    ``async with FakeUpstream() as fake`` serves from the caller's event loop (fine for async
    clients); ``with FakeUpstream().in_thread() as fake`` serves from a private loop in a thread,
    so blocking clients (the sync SDKs) can call it too.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.recorder = Recorder()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def responses(self) -> list[RecordedResponse]:
        return list(self.recorder.records)

    def clear(self) -> None:
        self.recorder.clear()

    async def start(self) -> None:
        runner = web.AppRunner(create_app(self.recorder), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        if self.port == 0:  # the OS picked one; read it back from the bound socket
            self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeUpstream:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @contextmanager
    def in_thread(self) -> Iterator[FakeUpstream]:
        """Serve from a daemon thread with its own event loop until the block exits."""
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except Exception as exc:  # noqa: BLE001 (re-raised in the caller's thread below)
                failure.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        thread = threading.Thread(target=run, name="fake-upstream", daemon=True)
        thread.start()
        started.wait(10.0)
        if failure:
            raise failure[0]
        try:
            yield self
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10.0)
