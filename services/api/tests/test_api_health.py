"""Probes while PostgreSQL is unreachable at start: serve 503s, keep retrying, recover."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import urllib.parse
from typing import Any

from litestar.testing import AsyncTestClient
from smoltbot_api import ApiSettings, create_app
from smoltbot_api.app import api_context

TOKEN = "test-admin-token-0123456789abcdef"


class TcpForwarder:
    """Listens on ``port`` only after ``start()``, forwarding to PostgreSQL: a DB that comes up.

    Runs on threads so it keeps forwarding while the test client blocks the test's event loop.
    """

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port = port
        self.target = target
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._stopped = threading.Event()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def stop(self) -> None:
        self._stopped.set()
        for sock in [self._listener, *self._sockets]:
            if sock is not None:
                # shutdown() wakes threads blocked in recv(); close() alone would not.
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _poll(client: Any, path: str, status: int, timeout_s: float) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        response = await client.get(path)
        if response.status_code == status or asyncio.get_running_loop().time() > deadline:
            return response
        await asyncio.sleep(0.1)


async def test_unreachable_db_gives_503_then_recovers(database_url: str, db: Any) -> None:
    port = _free_port()  # nothing listens here until the forwarder starts
    parts = urllib.parse.urlsplit(database_url)
    unreachable = urllib.parse.urlunsplit(parts._replace(netloc=f"postgres@127.0.0.1:{port}"))
    app = create_app(ApiSettings(database_url=unreachable, admin_token=TOKEN))
    forwarder = TcpForwarder(port, (parts.hostname or "127.0.0.1", parts.port or 5432))
    try:
        async with AsyncTestClient(app=app) as client:
            await asyncio.sleep(1.0)  # several connection attempts fail meanwhile
            assert not api_context(app).db.connected

            startup = await client.get("/health/startup")
            assert startup.status_code == 503
            assert startup.json() == {"status": "starting"}
            assert (await client.get("/health/ready")).status_code == 503
            assert (await client.get("/health/live")).status_code == 200
            api = await client.get("/v1/agents", headers={"Authorization": f"Bearer {TOKEN}"})
            assert api.status_code == 503
            assert api.json() == {
                "error": "database not connected yet, retry later",
                "type": "service_unavailable",
            }

            forwarder.start()  # the database "comes up"

            assert (await _poll(client, "/health/startup", 200, 20.0)).status_code == 200
            assert api_context(app).db.connected
            ready = await _poll(client, "/health/ready", 200, 10.0)
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"]["postgres"]["ok"] is True
            api = await client.get("/v1/agents", headers={"Authorization": f"Bearer {TOKEN}"})
            assert api.status_code == 200

            forwarder.stop()  # and goes away again: readiness follows, the process stays up

            not_ready = await _poll(client, "/health/ready", 503, 10.0)
            assert not_ready.status_code == 503
            assert not_ready.json()["status"] == "degraded"
            assert (await client.get("/health/live")).status_code == 200
            down = await client.get("/v1/agents", headers={"Authorization": f"Bearer {TOKEN}"})
            assert down.status_code == 503
            assert down.json()["type"] == "service_unavailable"
    finally:
        forwarder.stop()


async def test_shutdown_while_db_never_reached_is_clean() -> None:
    port = _free_port()
    app = create_app(
        ApiSettings(database_url=f"postgresql://postgres@127.0.0.1:{port}/x", admin_token=TOKEN)
    )
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/health/startup")).status_code == 503
        assert (await client.get("/health/live")).status_code == 200
    assert not api_context(app).db.connected
