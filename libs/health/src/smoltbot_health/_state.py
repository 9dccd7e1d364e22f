from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

Check = Callable[[], Awaitable[object]]
Report = Callable[[], dict[str, Any]]
_RESERVED = frozenset({"status", "checks"})


class ProbeResult(msgspec.Struct, frozen=True):
    status_code: int
    body: dict[str, Any]


class Health:
    """Probe state of one service process; shared by its HTTP handlers and its loops."""

    def __init__(self, service: str, *, check_timeout_s: float = 2.0) -> None:
        self.service = service
        self.check_timeout_s = check_timeout_s
        self._checks: dict[str, Check] = {}
        self._reports: dict[str, Report] = {}
        self._loops: dict[str, tuple[float, float]] = {}  # name -> (last beat, stuck after s)
        self._started = False
        self._draining = False

    def add_check(self, name: str, check: Check) -> None:
        """Register a readiness dependency; the coroutine raises (or times out) when it is down."""
        self._checks[name] = check

    def add_report(self, name: str, report: Report) -> None:
        """Show ``report()`` under ``name`` in the readiness body: information only, it never
        makes the service unready (the gateway's licence state)."""
        if name in _RESERVED:
            raise ValueError(f"{name!r} is part of every readiness body")
        self._reports[name] = report

    def register_loop(self, name: str, stuck_after_s: float) -> None:
        self._loops[name] = (time.monotonic(), stuck_after_s)

    def beat(self, name: str) -> None:
        """Called by a loop on every iteration (including idle reads) to prove it is alive."""
        _, limit = self._loops.get(name, (0.0, 60.0))
        self._loops[name] = (time.monotonic(), limit)

    def mark_started(self) -> None:
        self._started = True

    def mark_draining(self) -> None:
        self._draining = True

    @property
    def started(self) -> bool:
        return self._started

    def live(self) -> ProbeResult:
        now = time.monotonic()
        stuck = {
            name: round(now - last, 1)
            for name, (last, limit) in self._loops.items()
            if now - last > limit
        }
        if stuck:
            return ProbeResult(503, {"status": "stuck", "loops": stuck})
        return ProbeResult(200, {"status": "ok"})

    def startup(self) -> ProbeResult:
        if self._started:
            return ProbeResult(200, {"status": "ok"})
        return ProbeResult(503, {"status": "starting"})

    async def _run_check(self, check: Check) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            await asyncio.wait_for(check(), self.check_timeout_s)
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:200]}
        return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}

    async def ready(self) -> ProbeResult:
        if not self._started:
            return ProbeResult(503, {"status": "starting"})
        if self._draining:
            return ProbeResult(503, {"status": "draining"})
        names = list(self._checks)
        results = await asyncio.gather(*(self._run_check(self._checks[n]) for n in names))
        checks = dict(zip(names, results, strict=True))
        ok = all(r["ok"] for r in results)
        body: dict[str, Any] = {"status": "ok" if ok else "degraded", "checks": checks}
        body.update({name: report() for name, report in self._reports.items()})
        return ProbeResult(200 if ok else 503, body)
