"""One way to serve a fake dependency (an LLM provider, an analysis server) on loopback: in the
caller's event loop (``async with``) or from a private loop in a daemon thread (``in_thread``),
so blocking clients such as the sync SDKs can call it too."""

from __future__ import annotations

import abc
import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Self

from aiohttp import web

__all__ = ["LoopbackServer"]


class LoopbackServer(abc.ABC):
    """An aiohttp app on ``host:port`` (port 0: the OS picks one, read back after start).
    Subclasses say what to serve in :meth:`create_app`."""

    thread_name = "loopback-server"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @abc.abstractmethod
    def create_app(self) -> web.Application:
        """The app to serve."""

    async def start(self) -> None:
        runner = web.AppRunner(self.create_app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, self.host, self.port).start()
        self._runner = runner
        if self.port == 0:  # the OS picked one; read it back from the bound socket
            self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @contextmanager
    def in_thread(self) -> Iterator[Self]:
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
            # Handlers still sleeping (a delay knob whose client left) end here, not in GC.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(self.stop())
            loop.close()

        thread = threading.Thread(target=run, name=self.thread_name, daemon=True)
        thread.start()
        started.wait(10.0)
        if failure:
            raise failure[0]
        try:
            yield self
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10.0)
