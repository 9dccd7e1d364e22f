"""``smoltbot up``: run every service as a child process of one command.

Each service is started with its only entrypoint, ``python -m smoltbot_<service>``, exactly as the
images, compose and the chart run it. A child that crashes is restarted with backoff; a child that
exits 2 (bad configuration) stops everything, and ``up`` exits 2 too, because restarting cannot
fix it. On SIGINT/SIGTERM children are stopped in pipeline order — front doors first, then each
worker after its producer — so every worker can drain what the previous one published.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from smoltbot_config import CONFIG_ERROR_EXIT
from smoltbot_resilience import Backoff, sleep_or_stop

log = logging.getLogger("smoltbot.up")

SERVICES = ("gateway", "observer", "verifier", "persister", "notifier", "api")
# Stop order: stop accepting calls first, then drain the pipeline in the direction data flows.
STOP_ORDER = (
    "gateway",
    "api",
    "observer",
    "verifier",
    "persister",
    "notifier",
    "fake-upstream",
)
# A child that ran this long before crashing had a fresh crash, not a crash loop.
STABLE_AFTER_S = 30.0


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0
    exit_codes: list[int] = field(default_factory=list)


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to send SIGTERM when the supervisor dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def service_argv(service: str) -> list[str]:
    return [sys.executable, "-m", f"smoltbot_{service}"]


def fake_upstream_argv(port: int) -> list[str]:
    # Imported here: only `smoltbot up --fake-upstream` needs the test tooling (and aiohttp).
    from smoltbot_testing.fake_upstream import command  # noqa: PLC0415

    return command(port)


class Supervisor:
    """Starts children, restarts crashed ones, and stops them in order."""

    def __init__(
        self,
        children: Sequence[Child],
        *,
        stop_timeout_s: float = 20.0,
        max_backoff_s: float = 10.0,
    ) -> None:
        self.children = list(children)
        self.stop_timeout_s = stop_timeout_s
        self.max_backoff_s = max_backoff_s
        self._stopping = asyncio.Event()
        self.fatal: str | None = None

    async def _spawn(self, child: Child) -> None:
        # Own session: a terminal's Ctrl-C reaches only the supervisor, which then stops the
        # children in order; PDEATHSIG makes a child get SIGTERM if the supervisor dies hard.
        child.process = await asyncio.create_subprocess_exec(
            *child.argv, env=child.env, start_new_session=True, preexec_fn=_die_with_parent
        )
        child.started_at = time.monotonic()
        log.info("started", extra={"child": child.name, "pid": child.process.pid})

    async def _watch(self, child: Child) -> None:
        backoff = Backoff(0.5, self.max_backoff_s)
        while not self._stopping.is_set():
            await self._spawn(child)
            assert child.process is not None
            code = await child.process.wait()
            child.exit_codes.append(code)
            if self._stopping.is_set():
                return
            if code == CONFIG_ERROR_EXIT:
                self.fatal = f"{child.name} exited 2 (invalid configuration); see its error above"
                log.error("configuration error; stopping everything", extra={"child": child.name})
                self.request_stop()
                return
            if time.monotonic() - child.started_at > STABLE_AFTER_S:
                backoff.reset()
            delay = backoff.next()
            child.restarts += 1
            log.warning(
                "child exited; restarting",
                extra={"child": child.name, "code": code, "in_s": delay},
            )
            if await sleep_or_stop(delay, self._stopping):
                return

    def request_stop(self) -> None:
        self._stopping.set()

    async def _stop_children(self) -> dict[str, int | None]:
        order = {name: i for i, name in enumerate(STOP_ORDER)}
        codes: dict[str, int | None] = {}
        for child in sorted(self.children, key=lambda c: order.get(c.name, len(order))):
            proc = child.process
            if proc is None or proc.returncode is not None:
                codes[child.name] = None if proc is None else proc.returncode
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), self.stop_timeout_s)
            except TimeoutError:
                log.error("child did not stop in time; killing", extra={"child": child.name})
                proc.kill()
                await proc.wait()
            log.info("stopped", extra={"child": child.name, "code": proc.returncode})
            codes[child.name] = proc.returncode
        return codes

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_stop)
        watchers = [asyncio.create_task(self._watch(c), name=c.name) for c in self.children]
        await self._stopping.wait()
        codes = await self._stop_children()
        log.info("all children stopped", extra={"codes": codes})
        for task in watchers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return CONFIG_ERROR_EXIT if self.fatal else 0


def build_children(
    services: Sequence[str],
    environ: Mapping[str, str],
    *,
    fake_upstream_port: int | None,
) -> list[Child]:
    env = dict(environ)
    children: list[Child] = []
    if fake_upstream_port is not None:
        url = f"http://127.0.0.1:{fake_upstream_port}"
        for provider in ("ANTHROPIC", "OPENAI", "GEMINI"):
            env.setdefault(f"SMOLTBOT_UPSTREAM_{provider}_URL", url)
        children.append(Child("fake-upstream", fake_upstream_argv(fake_upstream_port), dict(env)))
    for service in services:
        children.append(Child(service, service_argv(service), dict(env)))
    return children


def run_supervisor(children: Sequence[Child]) -> int:
    supervisor = Supervisor(children)
    code = asyncio.run(supervisor.run())
    if supervisor.fatal:
        print(f"smoltbot up: {supervisor.fatal}", file=sys.stderr)  # noqa: T201
    return code


def default_environ() -> dict[str, str]:
    return dict(os.environ)
