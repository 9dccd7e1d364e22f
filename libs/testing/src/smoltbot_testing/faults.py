"""Fault injection for tests: a TCP proxy that can cut, blackhole or delay a connection, and a
private ``redis-server`` on a free port. Tests never stop or reconfigure the machine's shared
Redis or PostgreSQL; they put one of these between a service and its dependency instead."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from smoltbot_testing.net import free_port

Mode = Literal["pass", "cut", "blackhole", "delay"]


class FaultProxy:
    """A loopback TCP proxy, run on its own thread and event loop so sync tests can drive it.

    Modes: ``pass`` forwards bytes; ``cut`` closes every open connection and refuses new ones
    (connection reset: the client fails fast); ``blackhole`` accepts and holds connections but
    forwards nothing (the client hangs until its own timeout); ``delay`` adds ``delay_s`` to
    every chunk in both directions.
    """

    def __init__(self, target_host: str, target_port: int, *, listen_port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.port = listen_port or free_port()
        self.mode: Mode = "pass"
        self.delay_s = 0.0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url_host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(5)
        return self

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._close_all()

    def set_mode(self, mode: Mode, delay_s: float = 0.0) -> None:
        self.mode = mode
        self.delay_s = delay_s
        if mode == "cut":
            asyncio.run_coroutine_threadsafe(self._close_all(), self._loop).result(5)

    async def _close_all(self) -> None:
        for w in list(self._writers):
            with contextlib.suppress(Exception):
                w.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "cut":
            writer.transport.abort()
            return
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            self._writers.discard(writer)
            return
        self._writers.add(up_writer)
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        for w in (writer, up_writer):
            self._writers.discard(w)
            with contextlib.suppress(Exception):
                w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            while self.mode == "blackhole":  # noqa: ASYNC110 - polling a test knob is fine
                await asyncio.sleep(0.05)
            if self.mode == "cut":
                break
            if self.mode == "delay" and self.delay_s:
                await asyncio.sleep(self.delay_s)
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(Exception):
            writer.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RedisServer:
    """A private ``redis-server`` on a free loopback port, with its own data directory."""

    def __init__(self, *, port: int = 0, maxmemory: str | None = None) -> None:
        self.port = port or free_port()
        self.maxmemory = maxmemory
        self._dir = Path(tempfile.mkdtemp(prefix="smoltbot-redis-"))
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        argv = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self._dir),
        ]
        if self.maxmemory:
            argv += ["--maxmemory", self.maxmemory, "--maxmemory-policy", "noeviction"]
        self._proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"private redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def proxied_redis() -> Iterator[tuple[RedisServer, FaultProxy]]:
    """A private Redis behind a fault proxy: connect services to ``redis://127.0.0.1:<proxy>``."""
    with RedisServer() as server, FaultProxy("127.0.0.1", server.port) as proxy:
        yield server, proxy


class SilentServer:
    """A TCP server on loopback that accepts connections and never answers: a dependency that
    hangs (a Redis, a validate URL). ``async with SilentServer() as s:`` then use ``s.port``."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> SilentServer:
        async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._writers.append(writer)

        self._server = await asyncio.start_server(hold, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        for writer in self._writers:
            writer.close()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
