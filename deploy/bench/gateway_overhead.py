"""`make bench-gateway`: the smoltbot gateway against LiteLLM and Portkey, same upstream, same run.

One static upstream (nginx answering a fixed Anthropic Messages reply, JSON or a 20-event SSE
stream) and, in front of it, one target at a time: nginx called directly (the baseline), the
smoltbot gateway with tracing on, LiteLLM's proxy and Portkey's gateway. Each target gets the
same wrk load (the same Anthropic request, POSTed at each concurrency after a warm-up) and the
same sequential streaming client. Reported per target and concurrency: req/s, p50/p99 latency,
added p50 over nginx direct, CPU-ms per request of the target's process tree (from /proc), errors,
and for the stream the time to first byte and its overhead. Then the enforce-mode round trip
(gateway -> observer -> verifier with the ``rules`` analyzer -> reply, every call waiting for
its verdict) at its own concurrency levels; ``--enforce-only`` runs just that part (and nginx
direct as its baseline) and, with ``--markdown``, rewrites only its section of the report.
Not a test: numbers depend on the
machine and on what else runs on it, so they are printed with the machine's description, never
asserted. What the competitors need is installed on first use, outside the repo's lock files,
into ~/.cache/smoltbot-bench (see bench_install.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bench_install
from bench_install import Tool
from bench_load import StreamResult, WrkResult, run_stream, run_wrk, wait_quiet, wrk_script
from bench_targets import (
    SSE_EVENTS,
    Target,
    UnavailableError,
    Upstream,
    direct_target,
    find_process,
    litellm_target,
    nginx_upstream,
    portkey_target,
    smoltbot_enforce_target,
    smoltbot_target,
)
from smoltbot_testing.keys import REDIS_URL

ROOT = Path(__file__).resolve().parents[2]
COMPETITORS = ("smoltbot", "litellm", "portkey")
BUSY_CORES = 0.25  # CPU used elsewhere during a row above which it counts as disturbed
LABELS = {
    "direct": "nginx direct",
    "smoltbot": "smoltbot",
    "litellm": "LiteLLM",
    "portkey": "Portkey",
    "enforce": "smoltbot, enforce mode",
}
ENFORCE_START = "<!-- enforce-mode round trip: generated, see --enforce-only -->"
ENFORCE_END = "<!-- end of the enforce-mode round trip -->"
ENFORCE_P99_TARGET_MS = 10.0  # at concurrency 16


# ---------------------------------------------------------------------------------------------
# Command line


def _concurrency(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from exc
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("concurrency levels must be integers >= 1")
    return values


def _only(text: str) -> list[str]:
    names = [v.strip().lower() for v in text.split(",") if v.strip()]
    unknown = [n for n in names if n not in COMPETITORS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown target(s) {', '.join(unknown)}; choose from {', '.join(COMPETITORS)}"
        )
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="gateway_overhead.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  make bench-gateway\n"
            '  make bench-gateway BENCH_ARGS="--only smoltbot --duration 5"\n'
            '  make bench-gateway BENCH_ARGS="--markdown"   # also rewrites docs/benchmarks.md'
        ),
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds of wrk load per target and concurrency level (default: 10)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=3.0,
        metavar="S",
        help="seconds of discarded wrk load per target, at the highest concurrency, before the "
        "measured runs (default: 3; 0 skips it)",
    )
    parser.add_argument(
        "--concurrency",
        type=_concurrency,
        default=[1, 16, 64],
        metavar="N[,N...]",
        help="comma-separated wrk connection counts, each a separate run (default: 1,16,64)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=2,
        metavar="T",
        help="wrk threads, capped at the concurrency (default: 2)",
    )
    parser.add_argument(
        "--only",
        type=_only,
        action="extend",
        metavar="NAME[,NAME...]",
        help="run only these targets besides nginx direct (always run, it is the baseline): "
        f"{', '.join(COMPETITORS)}; repeatable (default: all)",
    )
    parser.add_argument(
        "--stream-requests",
        type=int,
        default=200,
        metavar="N",
        help="sequential streamed requests per target for the TTFB table (default: 200; 0 "
        "skips the streamed case)",
    )
    parser.add_argument(
        "--stream-warmup",
        type=int,
        default=20,
        metavar="N",
        help="discarded streamed requests before those (default: 20)",
    )
    parser.add_argument(
        "--max-quiet-wait",
        type=float,
        default=60.0,
        metavar="S",
        help="before each target (and each re-run), wait up to S seconds for 2 quiet seconds "
        "in which the rest of the machine uses < 0.3 cores (other work skews every number; "
        "each row also reports the CPU used elsewhere during it) (default: 60; 0 = no wait)",
    )
    parser.add_argument(
        "--retries-when-busy",
        type=int,
        default=3,
        metavar="N",
        help=f"re-run a row up to N times when other work used >= {BUSY_CORES} cores during it, "
        "keeping the least disturbed attempt (default: 3)",
    )
    parser.add_argument(
        "--enforce-concurrency",
        type=_concurrency,
        default=[1, 16],
        metavar="N[,N...]",
        help="wrk connection counts of the enforce-mode round trip (default: 1,16)",
    )
    enforce = parser.add_mutually_exclusive_group()
    enforce.add_argument(
        "--enforce-only",
        action="store_true",
        help="run only the enforce-mode round trip (and nginx direct at its concurrency levels, "
        "its baseline); with --markdown only that section of the report is rewritten",
    )
    enforce.add_argument(
        "--no-enforce", action="store_true", help="skip the enforce-mode round trip"
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="where the raw results go (default: var/bench/gateway-overhead-<UTC time>.json)",
    )
    parser.add_argument(
        "--markdown",
        type=Path,
        nargs="?",
        const=ROOT / "docs" / "benchmarks.md",
        metavar="PATH",
        help="also write the report as Markdown (default PATH: docs/benchmarks.md)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=bench_install.default_cache_dir(),
        metavar="DIR",
        help="where LiteLLM's venv, Portkey's node_modules and install logs live "
        "(default: $XDG_CACHE_HOME/smoltbot-bench, else ~/.cache/smoltbot-bench)",
    )
    parser.add_argument(
        "--no-install",
        action="store_true",
        help="never install anything; a missing tool makes its row 'not available'",
    )
    parser.add_argument(
        "--install-only",
        action="store_true",
        help="install what the selected targets need, print the versions, and exit",
    )
    parser.add_argument(
        "--litellm-version",
        default=bench_install.LITELLM_VERSION,
        metavar="V",
        help="litellm[proxy] version to install and run "
        f"(default: {bench_install.LITELLM_VERSION})",
    )
    parser.add_argument(
        "--portkey-version",
        default=bench_install.PORTKEY_VERSION,
        metavar="V",
        help=f"@portkey-ai/gateway version (default: {bench_install.PORTKEY_VERSION})",
    )
    parser.add_argument(
        "--redis-url",
        default=REDIS_URL,
        metavar="URL",
        help=f"Redis the smoltbot gateway publishes its traces to (default: {REDIS_URL}); "
        "keys go under a unique bench-* prefix that is deleted afterwards",
    )
    args = parser.parse_args(argv)
    args.only = list(dict.fromkeys(args.only or COMPETITORS))
    if args.enforce_only:
        args.only, args.concurrency, args.stream_requests = [], args.enforce_concurrency, 0
    if args.duration <= 0:
        parser.error("--duration must be > 0")
    return args


# ---------------------------------------------------------------------------------------------
# Machine and versions


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return float("nan")


def _git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{rev} (working tree modified)" if dirty else rev


def _redis_version(url: str) -> str:
    try:
        import redis  # noqa: PLC0415

        client = redis.Redis.from_url(url, socket_timeout=2)
        try:
            return str(client.info("server")["redis_version"])
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 (only for the report)
        return f"unreachable ({type(exc).__name__})"


def machine_info(args: argparse.Namespace, tools: dict[str, Tool]) -> dict[str, Any]:
    from importlib.metadata import version  # noqa: PLC0415

    argv = shlex.join(sys.argv[1:])
    if os.environ.get("MAKELEVEL"):
        command = f'make bench-gateway BENCH_ARGS="{argv}"' if argv else "make bench-gateway"
    else:
        command = f"python deploy/bench/gateway_overhead.py {argv}".strip()
    return {
        "command": command,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(_mem_gib(), 1),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
        "versions": {
            "smoltbot-gateway": f"{version('smoltbot-gateway')} at git {_git_revision()}",
            "granian": version("granian"),
            "litellm": tools["litellm"].describe() if "litellm" in tools else "not selected",
            "portkey": tools["portkey"].describe() if "portkey" in tools else "not selected",
            "nginx": tools["nginx"].describe(),
            "wrk": tools["wrk"].describe(),
            "redis": _redis_version(args.redis_url),
        },
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "concurrency": args.concurrency,
            "wrk_threads": args.threads,
            "stream_requests": args.stream_requests,
            "stream_warmup": args.stream_warmup,
            "max_quiet_wait_s": args.max_quiet_wait,
            "retries_when_busy": args.retries_when_busy,
            "enforce_concurrency": None if args.no_enforce else args.enforce_concurrency,
        },
    }


# ---------------------------------------------------------------------------------------------
# Running


@dataclass
class TargetRun:
    name: str
    label: str
    version: str = ""
    mode: str = ""
    status: str = "ok"  # ok | not available: ... | failed: ...
    wrk: list[WrkResult] = field(default_factory=list)
    stream: StreamResult | None = None
    stream_error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def at(self, concurrency: int) -> WrkResult | None:
        return next((r for r in self.wrk if r.concurrency == concurrency), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "version": self.version,
            "mode": self.mode,
            "status": self.status,
            "wrk": [r.to_json() for r in self.wrk],
            "stream": self.stream.to_json() if self.stream else None,
            "stream_error": self.stream_error,
            "extra": self.extra,
        }


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _gateway_overhead_p50(metrics_url: str) -> dict[str, float | None]:
    """The smoltbot gateway's own ``gateway_overhead_seconds`` p50 (bucket upper bound, ms)."""
    try:
        with urllib.request.urlopen(metrics_url, timeout=5) as resp:  # noqa: S310 (loopback)
            text = resp.read().decode()
    except OSError:
        return {}
    out: dict[str, float | None] = {}
    for streamed in ("false", "true"):
        buckets: list[tuple[float, float]] = []
        for line in text.splitlines():
            if line.startswith("gateway_overhead_seconds_bucket") and (
                f'streamed="{streamed}"' in line
            ):
                le = line.split('le="', 1)[1].split('"', 1)[0]
                if le != "+Inf":
                    buckets.append((float(le), float(line.rsplit(" ", 1)[1])))
        if not buckets:
            out[streamed] = None
            continue
        total = max(count for _, count in buckets)
        p50 = next((le for le, count in sorted(buckets) if count >= total / 2), None)
        out[streamed] = None if p50 is None else p50 * 1000
    return out


def measure(
    run: TargetRun,
    *,
    target: Target,
    args: argparse.Namespace,
    wrk: Tool,
    upstream: Upstream,
    tmp: Path,
) -> None:
    run.version, run.mode = target.version, target.mode
    if args.max_quiet_wait > 0:
        load = wait_quiet(args.max_quiet_wait)
        run.extra["other_load_before_cores"] = round(load, 3)
        if load >= 0.3:
            log(f"{run.label}: machine still busy ({load:.2f} cores elsewhere), measuring anyway")
    script = wrk_script(target, tmp / f"{target.name}.lua")
    redis_pid = find_process("redis-server")
    common = {"threads": args.threads, "upstream": upstream, "redis_pid": redis_pid}
    if args.warmup > 0:
        top = max(args.concurrency)
        log(f"{run.label}: warm-up {args.warmup:g}s at c={top}")
        run_wrk(wrk.path, target, script, concurrency=top, duration_s=args.warmup, **common)
    for conc in args.concurrency:
        best: WrkResult | None = None
        for attempt in range(1 + max(0, args.retries_when_busy)):
            if attempt and args.max_quiet_wait > 0:
                wait_quiet(args.max_quiet_wait)
            result = run_wrk(
                wrk.path, target, script, concurrency=conc, duration_s=args.duration, **common
            )
            log(
                f"{run.label}: c={conc} {result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms, "
                f"p99 {result.p99_ms:.2f} ms, {result.cpu_ms_per_req:.3f} CPU-ms/req, "
                f"{result.errors} errors, nginx saw {result.upstream_requests}/{result.requests}, "
                f"{result.other_load_cores:.2f} cores busy elsewhere"
            )
            if best is None or result.other_load_cores < best.other_load_cores:
                best = result
            if best.other_load_cores < BUSY_CORES:
                break
            log(f"{run.label}: c={conc} disturbed by other work, measuring again")
        assert best is not None
        run.wrk.append(best)
    if args.stream_requests > 0:
        if args.max_quiet_wait > 0:
            wait_quiet(args.max_quiet_wait)
        try:
            run.stream = run_stream(target, args.stream_requests, args.stream_warmup)
            log(
                f"{run.label}: stream TTFB p50 {run.stream.ttfb_p50:.2f} ms, total p50 "
                f"{run.stream.total_p50:.2f} ms, events {run.stream.events_min}-"
                f"{run.stream.events_max}, {run.stream.failures} failures"
            )
        except Exception as exc:  # noqa: BLE001 (reported in the table, the run goes on)
            run.stream_error = f"{type(exc).__name__}: {exc}"
            log(f"{run.label}: streamed case failed: {run.stream_error}")


def _verdict_waits(metrics_url: str) -> dict[str, Any]:
    """The gateway's verdict waits by outcome, and its wait histogram (cumulative buckets)."""
    try:
        with urllib.request.urlopen(metrics_url, timeout=5) as resp:  # noqa: S310 (loopback)
            text = resp.read().decode()
    except OSError:
        return {}
    outcomes: dict[str, float] = {}
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("smoltbot_gateway_verdict_waits_total{"):
            outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
            outcomes[outcome] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("smoltbot_gateway_verdict_wait_seconds_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            bound = math.inf if le == "+Inf" else float(le)
            buckets[bound] = buckets.get(bound, 0.0) + float(line.rsplit(" ", 1)[1])
    return {"outcomes": outcomes, "buckets": sorted(buckets.items())}


def _bucket_quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """The upper bound (ms) of the bucket holding quantile ``q`` of a cumulative histogram."""
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return None
    bound = next((le for le, count in buckets if count >= q * total), math.inf)
    return bound * 1000


def measure_enforce(
    upstream: Upstream, args: argparse.Namespace, tools: dict[str, Tool], tmp: Path
) -> TargetRun:
    """The enforce-mode round trip at ``--enforce-concurrency`` (no streamed case: streams never
    wait), with the gateway's own count of how each wait ended."""
    run = TargetRun("enforce", LABELS["enforce"])
    log(f"{run.label}: starting")
    enforce_args = argparse.Namespace(
        **{**vars(args), "concurrency": args.enforce_concurrency, "stream_requests": 0}
    )
    try:
        with smoltbot_enforce_target(upstream, tmp, args.redis_url) as target:
            metrics_url = target.url.split("/anthropic/", 1)[0] + "/metrics"
            before = _verdict_waits(metrics_url).get("outcomes", {})
            measure(
                run, target=target, args=enforce_args, wrk=tools["wrk"], upstream=upstream, tmp=tmp
            )
            after = _verdict_waits(metrics_url)
            run.extra["verdict_waits"] = {
                k: int(v - before.get(k, 0.0)) for k, v in after.get("outcomes", {}).items()
            }
            buckets = after.get("buckets", [])
            run.extra["gateway_wait_p50_ms"] = _bucket_quantile(buckets, 0.5)
            run.extra["gateway_wait_p99_ms"] = _bucket_quantile(buckets, 0.99)
            log(f"{run.label}: verdict waits {run.extra['verdict_waits']}")
    except UnavailableError as exc:
        run.status = f"not available: {exc}"
        log(f"{run.label}: {run.status}")
    except Exception as exc:  # noqa: BLE001
        run.status = f"failed: {type(exc).__name__}: {exc}"
        log(f"{run.label}: {run.status}\n{traceback.format_exc()}")
    return run


def run_all(
    args: argparse.Namespace, tools: dict[str, Tool], tmp: Path
) -> tuple[list[TargetRun], TargetRun | None]:
    """Every target's run (nginx direct first), and the enforce-mode round trip's."""
    runs: list[TargetRun] = []
    enforce: TargetRun | None = None
    with nginx_upstream(tools["nginx"], tmp) as upstream:
        log(f"nginx upstream at {upstream.base} (pid {upstream.pid})")
        factories: dict[str, Callable[[], AbstractContextManager[Target]]] = {
            "smoltbot": lambda: smoltbot_target(upstream, tmp, args.redis_url),
            "litellm": lambda: litellm_target(upstream, tools["litellm"], tmp),
            "portkey": lambda: portkey_target(upstream, tools["portkey"], tmp),
        }
        direct = TargetRun("direct", LABELS["direct"])
        runs.append(direct)
        ctx = {"args": args, "wrk": tools["wrk"], "upstream": upstream, "tmp": tmp}
        try:
            measure(direct, target=direct_target(upstream, tools["nginx"]), **ctx)
        except Exception as exc:  # noqa: BLE001
            direct.status = f"failed: {type(exc).__name__}: {exc}"
            log(f"nginx direct: {direct.status}")
        for name in args.only:
            run = TargetRun(name, LABELS[name])
            runs.append(run)
            log(f"{run.label}: starting")
            try:
                with factories[name]() as target:
                    measure(run, target=target, **ctx)
                    if name == "smoltbot":
                        metrics_url = target.url.split("/anthropic/", 1)[0] + "/metrics"
                        run.extra["gateway_overhead_p50_ms"] = _gateway_overhead_p50(metrics_url)
            except UnavailableError as exc:
                run.status = f"not available: {exc}"
                log(f"{run.label}: {run.status}")
            except Exception as exc:  # noqa: BLE001
                run.status = f"failed: {type(exc).__name__}: {exc}"
                log(f"{run.label}: {run.status}\n{traceback.format_exc()}")
            time.sleep(1)  # let the machine settle between targets
        if not args.no_enforce:
            enforce = measure_enforce(upstream, args, tools, tmp)
    return runs, enforce


# ---------------------------------------------------------------------------------------------
# Tables


def _f(value: float | None, digits: int = 2, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _errors(r: WrkResult) -> str:
    if not r.errors:
        return "0"
    parts = [f"{r.non_2xx} non-2xx"] if r.non_2xx else []
    parts += [f"{n} {k}" for k, n in r.socket_errors.items() if n]
    return f"{r.errors} ({', '.join(parts)})"


Table = tuple[str, list[str], list[list[str]]]  # title, header, rows


def _short(status: str) -> str:
    """A table cell for a status whose full text is listed below the tables."""
    for word in ("not available", "failed"):
        if status.startswith(word):
            return f"{word} (see below)"
    return status.split(":", 1)[0][:40] + " (see below)"


def wrk_table(runs: list[TargetRun], args: argparse.Namespace) -> Table:
    header = [
        "target",
        "conc",
        "req/s",
        "p50 ms",
        "p99 ms",
        "added p50 ms",
        "CPU-ms/req",
        "errors",
        "nginx saw",
        "other CPU",
    ]
    direct = runs[0]
    rows: list[list[str]] = []
    for run in runs:
        if run.status != "ok" and not run.wrk:
            rows.append([run.label, "-", _short(run.status), *[""] * 7])
            continue
        for r in run.wrk:
            base = direct.at(r.concurrency)
            added = None if base is None or run is direct else r.p50_ms - base.p50_ms
            seen = f"{r.upstream_requests / r.requests:.0%}" if r.requests else "n/a"
            rows.append(
                [
                    run.label,
                    str(r.concurrency),
                    f"{r.rps:,.0f}",
                    _f(r.p50_ms),
                    _f(r.p99_ms),
                    "-" if run is direct else _f(added, sign=True),
                    _f(r.cpu_ms_per_req, 3),
                    _errors(r),
                    seen,
                    f"{r.other_load_cores:.2f}",
                ]
            )
    title = (
        f"Non-streamed: wrk, {args.duration:g} s per row, {_threads_note(args)}, "
        "same Anthropic request; CPU = target process tree"
    )
    return title, header, rows


def _threads_note(args: argparse.Namespace) -> str:
    return f"up to {args.threads} thread{'s' if args.threads > 1 else ''}"


def stream_table(runs: list[TargetRun], args: argparse.Namespace) -> Table:
    header = [
        "target",
        "requests",
        "TTFB p50 ms",
        "TTFB p99 ms",
        "added TTFB p50 ms",
        "total p50 ms",
        "added total p50 ms",
        "CPU-ms/req",
        "events/response",
    ]
    base = runs[0].stream
    rows: list[list[str]] = []
    for run in runs:
        s = run.stream
        if s is None:
            why = run.stream_error or run.status
            rows.append([run.label, "-", _short(why) if why != "ok" else "not run", *[""] * 6])
            continue
        is_base = run is runs[0] or base is None
        events = (
            str(s.events_min) if s.events_min == s.events_max else f"{s.events_min}-{s.events_max}"
        )
        if s.failures:
            events += f" ({s.failures} failed)"
        rows.append(
            [
                run.label,
                str(s.requests),
                _f(s.ttfb_p50),
                _f(s.ttfb_p99),
                "-" if is_base else _f(s.ttfb_p50 - base.ttfb_p50, sign=True),
                _f(s.total_p50),
                "-" if is_base else _f(s.total_p50 - base.total_p50, sign=True),
                _f(s.cpu_ms_per_req, 3),
                events,
            ]
        )
    title = (
        f"Streamed: {SSE_EVENTS}-event SSE, {args.stream_requests} sequential requests on one "
        "keep-alive connection; TTFB = first body byte"
    )
    return title, header, rows


def ratio_table(runs: list[TargetRun], args: argparse.Namespace) -> Table | None:
    by_name = {r.name: r for r in runs}
    ours = by_name.get("smoltbot")
    if ours is None or not ours.wrk:
        return None
    header = [
        "vs",
        "conc",
        "req/s: smoltbot ÷ them",
        "CPU-ms/req: them ÷ smoltbot",
        "added p50 ms: smoltbot / them",
    ]
    rows: list[list[str]] = []
    direct = runs[0]
    for name in ("litellm", "portkey"):
        them = by_name.get(name)
        if them is None:
            continue
        if not them.wrk:
            rows.append([them.label, "-", _short(them.status), "", ""])
            continue
        for conc in args.concurrency:
            a, b, d = ours.at(conc), them.at(conc), direct.at(conc)
            if a is None or b is None:
                continue
            added = (
                "n/a" if d is None else f"{a.p50_ms - d.p50_ms:+.2f} / {b.p50_ms - d.p50_ms:+.2f}"
            )
            cpu = b.cpu_ms_per_req / a.cpu_ms_per_req if a.cpu_ms_per_req > 0 else float("nan")
            rows.append([them.label, str(conc), f"{a.rps / b.rps:.2f}x", f"{_f(cpu)}x", added])
        if ours.stream and them.stream and runs[0].stream:
            base = runs[0].stream.ttfb_p50
            rows.append(
                [
                    them.label,
                    "stream",
                    "",
                    "",
                    f"TTFB {ours.stream.ttfb_p50 - base:+.2f} / {them.stream.ttfb_p50 - base:+.2f}",
                ]
            )
    return "smoltbot compared with the others (same run; > 1x favours smoltbot)", header, rows


def enforce_table(direct: TargetRun, enforce: TargetRun) -> Table:
    """The enforce-mode round trip per concurrency level, against nginx direct."""
    header = [
        "conc",
        "req/s",
        "p50 ms",
        "p99 ms",
        "added p50 ms",
        "added p99 ms",
        "CPU-ms/req",
        "errors",
        "other CPU",
    ]
    rows: list[list[str]] = []
    if not enforce.wrk:
        rows.append(["-", _short(enforce.status), *[""] * 7])
    for r in enforce.wrk:
        base = direct.at(r.concurrency)
        rows.append(
            [
                str(r.concurrency),
                f"{r.rps:,.0f}",
                _f(r.p50_ms),
                _f(r.p99_ms),
                "n/a" if base is None else _f(r.p50_ms - base.p50_ms, sign=True),
                "n/a" if base is None else _f(r.p99_ms - base.p99_ms, sign=True),
                _f(r.cpu_ms_per_req, 3),
                _errors(r),
                f"{r.other_load_cores:.2f}",
            ]
        )
    title = (
        "Enforce mode: wrk against the gateway, each call waiting for its verdict "
        "(gateway -> observer -> verifier, rules -> reply); CPU = gateway + observer + verifier"
    )
    return title, header, rows


def enforce_markdown(
    info: dict[str, Any], enforce: TargetRun, table: Table, json_path: Path
) -> str:
    """The report's enforce-mode section, between markers so ``--enforce-only`` can replace it."""
    at16 = enforce.at(16)
    if at16 is None:
        verdict = "not measured at concurrency 16"
    else:
        met = "met" if at16.p99_ms <= ENFORCE_P99_TARGET_MS else "**not met**"
        verdict = (
            f"p99 {at16.p99_ms:.2f} ms at concurrency 16 against a target of "
            f"{ENFORCE_P99_TARGET_MS:g} ms: {met}"
        )
    if at16 is not None and at16.rps > 0:
        verdict += (
            f". At 16 calls in flight a call takes about 16 ÷ {at16.rps:,.0f} req/s = "
            f"{16000 / at16.rps:.1f} ms (Little's law): the rate is bounded by "
            f"{at16.cpu_ms_per_req:.2f} CPU-ms per call in the three processes (plus Redis, "
            f"wrk and nginx) on {info['cores']} cores, and a p99 of "
            f"{ENFORCE_P99_TARGET_MS:g} ms at 16 needs well over "
            f"{16000 / ENFORCE_P99_TARGET_MS:,.0f} req/s"
        )
    waits = enforce.extra.get("verdict_waits") or {}
    waits_text = ", ".join(f"{n:,} {k}" for k, n in sorted(waits.items())) or "not read"
    out = [
        ENFORCE_START,
        "## Enforce mode: the round trip of a waiting call",
        "",
        "A non-streamed call of an agent in `enforce` mode holds its answer until its verdict "
        "arrives (architecture §3.3): the gateway XADDs the exchange to `exchanges:priority`, "
        "the observer turns it into a trace on `traces:priority`, the verifier analyses it "
        "(`rules` backend) and XADDs the verdict to the gateway's `replies:<instance>` stream, "
        "where the gateway's reply reader resolves the waiting call. Measured with wrk like the "
        "table above, against the same nginx (whose answer here carries a thinking block, so the "
        "verifier really analyses it: verdict `clear`), one process per service on this "
        f"{info['cores']}-core machine, together with wrk, nginx and Redis.",
        "",
        f"- **Command:** `{info['command']}`; **date:** {info['date']}; **raw results:** "
        f"`{_rel(json_path)}`",
        f"- **Result:** {verdict}.",
        f"- **How the waits ended** (the gateway's `smoltbot_gateway_verdict_waits_total` over "
        f"the rows and their warm-up): {waits_text}. The gateway's own wait histogram puts the "
        f"p50 at ≤ {_f(enforce.extra.get('gateway_wait_p50_ms'))} ms and the p99 at ≤ "
        f"{_f(enforce.extra.get('gateway_wait_p99_ms'))} ms (bucket bounds).",
        "",
        markdown_table(table),
        "",
        "Added = the row minus nginx direct at the same concurrency; CPU-ms/req counts the three "
        "processes (not Redis). Without enforce mode a call does none of this wait (the "
        "smoltbot rows above).",
    ]
    if enforce.status != "ok":
        out += ["", f"The enforce-mode round trip was not measured: {enforce.status}"]
    return "\n".join([*out, ENFORCE_END, ""])


def splice_enforce(report: Path, section: str) -> None:
    """Put ``section`` in place of the report's enforce-mode section (before the notes when the
    report has none yet)."""
    text = report.read_text() if report.exists() else "# Gateway benchmarks\n\n"
    if ENFORCE_START in text and ENFORCE_END in text:
        head, rest = text.split(ENFORCE_START, 1)
        tail = rest.split(ENFORCE_END, 1)[1].lstrip("\n")
        text = head + section + "\n" + tail
    elif "## Notes and limitations" in text:
        head, tail = text.split("## Notes and limitations", 1)
        text = head + section + "\n## Notes and limitations" + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    report.write_text(text)


def print_tables(tables: list[Table]) -> None:
    try:
        from rich.console import Console  # noqa: PLC0415
        from rich.table import Table as RichTable  # noqa: PLC0415
    except ImportError:
        for title, header, rows in tables:
            print(f"\n{title}")
            widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
            print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
            for row in rows:
                print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        return
    console = Console(width=max(140, Console().width))
    for title, header, rows in tables:
        table = RichTable(title=title, title_justify="left")
        for i, h in enumerate(header):
            table.add_column(h, justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*row)
        console.print(table)


def markdown_table(table: Table) -> str:
    _, header, rows = table
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Markdown report


def markdown(
    info: dict[str, Any],
    runs: list[TargetRun],
    tables: list[Table],
    json_path: Path,
    enforce_section: str | None = None,
) -> str:
    v = info["versions"]
    by_name = {r.name: r for r in runs}
    out: list[str] = [
        "# Gateway benchmarks",
        "",
        "How much the smoltbot gateway adds in front of an LLM provider, measured against "
        "LiteLLM's proxy and Portkey's gateway in the same run, on the same machine, against the "
        "same static upstream. This file is generated by `deploy/bench/gateway_overhead.py`: "
        "re-run the command below to refresh it; do not edit the numbers by hand.",
        "",
        f"- **Command:** `{info['command']}`",
        f"- **Date:** {info['date']}",
        f"- **Machine:** {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB RAM, "
        f"kernel {info['kernel']}, Python {info['python']}; load average at start "
        f"{' '.join(info['loadavg_start'])}",
        f"- **smoltbot-gateway:** {v['smoltbot-gateway']} (granian {v['granian']})",
        f"- **LiteLLM:** {v['litellm']}",
        f"- **Portkey:** {v['portkey']}",
        f"- **nginx:** {v['nginx']}; **wrk:** {v['wrk']}; **Redis:** {v['redis']}",
        f"- **Raw results:** `{_rel(json_path)}` (JSON, not committed)",
        "",
        "## Setup",
        "",
        "- **Upstream:** nginx, 1 worker, access log off, answering `POST /v1/messages` with a "
        f"fixed {_size('json')} Anthropic Messages JSON body, or a {SSE_EVENTS}-event Anthropic "
        f"SSE stream ({_size('sse')}, sent chunked) under `/sse/...` or with `?stream=1`. Every "
        "target calls this same nginx; the *nginx saw* column is nginx's own request counter "
        "(stub_status) over the run divided by the requests wrk completed, so ~100% proves the "
        "target really proxied every call (a little above 100% at high concurrency: calls still "
        "in flight when wrk stopped, which the target served all the same).",
        "- **Targets:**",
    ]
    for run in runs:
        mode = run.mode or "—"
        line = f"  - **{run.label}**: {mode}"
        if run.status != "ok":
            line += f" — **{run.status}**"
        out.append(line)
    out += [
        "- **Load:** wrk POSTs the same Anthropic request (`x-api-key`, `anthropic-version`, "
        f"`content-type`) for {info['settings']['duration_s']:g} s per concurrency level "
        f"({', '.join(map(str, info['settings']['concurrency']))}), "
        f"{_threads_note_info(info)}, after a {info['settings']['warmup_s']:g} s warm-up at the "
        "highest level. p50/p99 are wrk's (`--latency`).",
        "- **Added p50** = target p50 - nginx-direct p50 at the same concurrency.",
        "- **other CPU** = cores' worth of CPU the rest of the machine used during the row (from "
        "`/proc/stat`, minus wrk, nginx, the target and Redis): near 0 means nothing else "
        f"disturbed it. A row disturbed by >= {BUSY_CORES} cores is measured again (up to "
        f"{info['settings']['retries_when_busy']} times, after waiting for 2 quiet seconds) and "
        "the least disturbed attempt is kept.",
        "- **CPU-ms/req** = utime+stime of the target's whole process tree (`/proc/<pid>/stat`, "
        "children included) from the start of the run until the target is idle again, divided "
        "by the calls it proxied in that time (nginx's count: wrk's completed requests plus the "
        "few still in flight when wrk stopped, which the target also served). For nginx direct "
        "it is nginx's own cost; for the gateways it excludes nginx, wrk and Redis.",
        f"- **Streamed:** {info['settings']['stream_requests']} sequential requests (after "
        f"{info['settings']['stream_warmup']} discarded) on one keep-alive connection, from a "
        "small asyncio HTTP/1.1 client; TTFB is the first byte of the response body.",
        "",
    ]
    for table in tables:
        out += [f"## {table[0]}", "", markdown_table(table), ""]
    smolt = by_name.get("smoltbot")
    if smolt and smolt.extra.get("gateway_overhead_p50_ms"):
        own = smolt.extra["gateway_overhead_p50_ms"]
        out += [
            "The gateway's own `gateway_overhead_seconds` histogram over the whole run (p50 as a "
            f"bucket bound): non-streamed ≤ {_f(own.get('false'))} ms, streamed ≤ "
            f"{_f(own.get('true'))} ms.",
            "",
        ]
    if smolt and smolt.wrk:
        redis = [r.redis_cpu_ms_per_req for r in smolt.wrk if r.redis_cpu_ms_per_req is not None]
        if redis:
            out += [
                "smoltbot's trace publishing also costs Redis CPU, not counted in its row: "
                f"{' / '.join(_f(x, 3) for x in redis)} CPU-ms/req of the shared redis-server at "
                f"c={'/'.join(str(r.concurrency) for r in smolt.wrk)} (other users of that Redis "
                "add to it).",
                "",
            ]
    if enforce_section is not None:
        out += [enforce_section]
    out += ["## Notes and limitations", ""]
    out += [f"- {note}" for note in notes(info, runs)]
    out.append("")
    return "\n".join(out)


def _threads_note_info(info: dict[str, Any]) -> str:
    t = info["settings"]["wrk_threads"]
    return f"wrk with up to {t} thread{'s' if t > 1 else ''} (never more than connections)"


def _size(kind: str) -> str:
    from bench_targets import message_json, sse_body  # noqa: PLC0415

    return f"{len(message_json() if kind == 'json' else sse_body())}-byte"


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def notes(info: dict[str, Any], runs: list[TargetRun]) -> list[str]:
    by_name = {r.name: r for r in runs}
    out = [
        f"Everything shares one {info['cores']}-core machine: wrk, nginx, the target (and Redis "
        "for smoltbot) compete for the same cores, so at high concurrency req/s is bounded by "
        "the CPU of the whole setup, not only the target's. Compare rows of one run; compare "
        "runs only on the same machine and load (see the load average above; other work running "
        "at the same time skews everything).",
        "Each target runs as its projects ship it for one process: smoltbot on granian with 1 "
        "worker, LiteLLM on uvicorn with 1 worker (`--num_workers 1`), Portkey as one node "
        "process. More workers would raise every gateway's req/s on more cores; CPU-ms/req is "
        "the number that carries over.",
        "At concurrency above 1 a single-process gateway is saturated, so its p50 there is "
        "mostly queueing (about concurrency ÷ req/s) and its added p50 says how fast it drains "
        "the queue; the c=1 row is the per-call latency one client sees.",
        "The upstream answers at once: real providers take hundreds of ms to seconds, so added "
        "latency matters as a share of that, while CPU-ms/req is what a gateway costs per call.",
    ]
    if "litellm" in by_name:
        out.append(
            "LiteLLM: its Anthropic pass-through route (`/anthropic/{endpoint}`, forwarding to "
            "`ANTHROPIC_API_BASE`) was chosen over a `model_list` entry on `/v1/messages` as "
            "the mode with the least work per call: it skips the router and the translation "
            "through its unified model layer and forwards the request as is (the other mode was "
            "not measured). No database, `callbacks`/"
            "`success_callback` empty, no master key (so no auth step; LiteLLM needs "
            "`dangerously_permit_weak_or_unset_master_key: true` to start that way), price list "
            "from the package (`LITELLM_LOCAL_MODEL_COST_MAP`). It still runs its built-in "
            "pass-through logging (parsing the reply for usage and cost), as it does in any "
            "deployment. The *nginx saw* column confirms it proxied every call to nginx."
        )
    if "portkey" in by_name:
        out.append(
            "Portkey: `/v1/messages` with `x-portkey-provider: anthropic` and "
            "`x-portkey-custom-host` set to nginx (`.../v1` for JSON, `.../sse/v1` for the "
            "stream, since Portkey builds the upstream URL itself and drops the query string). "
            "Its stream handler waits 25 ms before relaying the first event (a fixed "
            "`setTimeout(25)` in its SSE reader), which shows in its TTFB. Its `^1.3.3` range "
            "for `@hono/node-server` resolves to the newest 1.x, and from 1.14 on every streamed "
            "call fails with HTTP 500 (`TypeError: immutable` in `updateHeaders`, Portkey-AI/"
            f"gateway issues 1389 and 1550); the harness pins {bench_install.PORTKEY_NODE_SERVER}, "
            "the newest release that streams, with npm `overrides`."
        )
    noisy = [
        f"{run.label} c={r.concurrency} ({r.other_load_cores:.2f})"
        for run in runs
        for r in run.wrk
        if r.other_load_cores >= BUSY_CORES
    ]
    if noisy:
        out.append(
            "Other work used a noticeable share of the machine during these rows (cores in "
            f"brackets), so treat them with care: {', '.join(noisy)}."
        )
    for run in runs:
        if run.status != "ok":
            out.append(f"{run.label} was not measured here: {run.status}")
        elif run.stream_error:
            out.append(f"{run.label}'s streamed case failed: {run.stream_error}")
    return out


# ---------------------------------------------------------------------------------------------


def ensure_tools(args: argparse.Namespace) -> dict[str, Tool]:
    install = not args.no_install
    tools = bench_install.apt_tools(args.cache_dir, install=install)
    if "litellm" in args.only:
        tools["litellm"] = bench_install.litellm_tool(
            args.cache_dir, args.litellm_version, install=install
        )
    if "portkey" in args.only:
        tools["portkey"] = bench_install.portkey_tool(
            args.cache_dir, args.portkey_version, install=install
        )
    return tools


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tools = ensure_tools(args)
    for tool in tools.values():
        log(f"{tool.name}: {tool.describe()}" + (f" ({tool.path})" if tool.ok else ""))
    if args.install_only:
        return 0 if all(t.ok for t in tools.values()) else 1
    for needed in ("nginx", "wrk"):
        if not tools[needed].ok:
            log(f"cannot run without {needed}: {tools[needed].reason}")
            return 1
    info = machine_info(args, tools)
    tmp = Path(tempfile.mkdtemp(prefix="smoltbot-bench-"))
    log(f"logs and generated configs in {tmp}")
    runs, enforce = run_all(args, tools, tmp)
    info["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]

    tables = [wrk_table(runs, args)]
    if args.stream_requests > 0:
        tables.append(stream_table(runs, args))
    ratios = ratio_table(runs, args)
    if ratios is not None:
        tables.append(ratios)
    extra = [] if enforce is None else [enforce_table(runs[0], enforce)]
    print()
    print_tables(tables + extra)
    for run in [*runs, *([enforce] if enforce else [])]:
        if run.status != "ok":
            print(f"{run.label}: {run.status}")
        elif run.stream_error:
            print(f"{run.label} (streamed): {run.stream_error}")

    json_path = args.json or (
        ROOT / "var" / "bench" / f"gateway-overhead-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    )
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(
        json.dumps(
            {
                "machine": info,
                "targets": [r.to_json() for r in runs],
                "enforce": enforce.to_json() if enforce else None,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nraw results: {json_path}")
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        section = None if enforce is None else enforce_markdown(info, enforce, extra[0], json_path)
        if args.enforce_only:
            assert section is not None
            splice_enforce(args.markdown, section)
            print(f"markdown report: {args.markdown} (enforce-mode section only)")
        else:
            args.markdown.write_text(markdown(info, runs, tables, json_path, section))
            print(f"markdown report: {args.markdown}")
    ok = runs[0].status == "ok" and (enforce is None or enforce.status == "ok")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
