"""Load for `make bench-gateway`: wrk runs (non-streamed) and a sequential streaming client.

wrk POSTs the same Anthropic request with a generated Lua script whose ``done`` hook prints the
exact counters and latency percentiles as one JSON line (``WRKJSON {...}``); the text report is
kept as well. CPU of the target's process tree is read from /proc right before and after.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import resource
import statistics
import subprocess
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench_targets import REQUEST, STREAM_REQUEST, Target, Upstream, count_events, tree_cpu_seconds

_LUA = """-- smoltbot bench: one Anthropic Messages request, repeated (generated)
wrk.method = "POST"
wrk.body = [==[{body}]==]
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"mean_us":%.1f,"max_us":%d}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
"""


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wrk_script(target: Target, path: Path) -> Path:
    headers = "\n".join(
        f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}"
        for k, v in target.request_headers(stream=False).items()
    )
    path.write_text(_LUA.format(body=json.dumps(REQUEST), headers=headers))
    return path


@dataclass
class WrkResult:
    target: str
    concurrency: int
    threads: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    non_2xx: int  # wrk's "status" errors: responses with status > 399
    socket_errors: dict[str, int]
    cpu_s: float  # target process tree, utime+stime during the run
    cpu_ms_per_req: float
    upstream_requests: int  # what nginx counted during the run
    redis_cpu_ms_per_req: float | None = None  # the shared redis-server, for information
    # CPU the rest of the machine used meanwhile (not wrk, nginx, target, Redis), in cores
    other_load_cores: float = 0.0
    text: str = field(default="", repr=False)

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())

    def to_json(self) -> dict[str, object]:
        out = asdict(self)
        out["errors"] = self.errors
        return out


def busy_cpu_seconds() -> float:
    """CPU time the whole machine spent busy (all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """This process and its reaped children (wrk), user + system."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def wait_quiet(max_wait_s: float, threshold_cores: float = 0.3, window_s: float = 2.0) -> float:
    """Wait (up to ``max_wait_s``) for a ``window_s`` stretch in which the machine, with the
    bench idle, is busy for less than ``threshold_cores``; the load of the last window, in
    cores (sampled each second, so a burst inside the window restarts it)."""
    deadline = time.monotonic() + max_wait_s
    quiet = 0.0
    while True:
        busy0, t0 = busy_cpu_seconds(), time.monotonic()
        time.sleep(1)
        elapsed = time.monotonic() - t0
        load = (busy_cpu_seconds() - busy0) / elapsed
        quiet = quiet + elapsed if load < threshold_cores else 0.0
        if quiet >= window_s or time.monotonic() >= deadline:
            return load


def wait_idle(upstream: Upstream, quiet_s: float = 0.6, timeout_s: float = 60) -> int:
    """Poll nginx's counter until only our own reads move it for ``quiet_s``; the reads made."""
    reads, last, quiet_since = 1, upstream.requests_served(), time.monotonic()
    deadline = quiet_since + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = upstream.requests_served()
        reads += 1
        if now - last > 1:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            break
        last = now
    return reads


def run_wrk(
    wrk: str,
    target: Target,
    script: Path,
    *,
    concurrency: int,
    threads: int,
    duration_s: float,
    upstream: Upstream,
    redis_pid: int | None,
    settle_s: float = 0.3,
) -> WrkResult:
    threads = max(1, min(threads, concurrency))
    cmd = [
        wrk,
        f"-t{threads}",
        f"-c{concurrency}",
        f"-d{duration_s:g}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        target.url,
    ]
    served0 = upstream.requests_served()
    others = [upstream.pid] if upstream.pid != target.pid else []
    others += [redis_pid] if redis_pid else []
    busy0, own0, t0 = busy_cpu_seconds(), own_cpu_seconds(), time.monotonic()
    others0 = sum(tree_cpu_seconds(pid) for pid in others)
    mine = [target.pid, *target.helper_pids]  # e.g. the observer and verifier of enforce mode
    cpu0 = sum(tree_cpu_seconds(pid) for pid in mine)
    redis0 = tree_cpu_seconds(redis_pid) if redis_pid else 0.0
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=duration_s + 60)
    # Calls still queued in the target when wrk stopped would otherwise spill into the next run:
    # wait until nginx sees no more of them, then for work done after the last byte (publishing).
    reads = wait_idle(upstream)
    time.sleep(settle_s)
    cpu_s = sum(tree_cpu_seconds(pid) for pid in mine) - cpu0
    redis_s = (tree_cpu_seconds(redis_pid) - redis0) if redis_pid else None
    ours = cpu_s + sum(tree_cpu_seconds(pid) for pid in others) - others0
    ours += own_cpu_seconds() - own0
    foreign = busy_cpu_seconds() - busy0 - ours
    other_load = max(0.0, foreign / (time.monotonic() - t0))
    served = upstream.requests_served() - served0 - reads - 1  # minus our reads of the counter
    text = proc.stdout + proc.stderr
    match = re.search(r"^WRKJSON (\{.*\})$", proc.stdout, re.MULTILINE)
    if proc.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed (exit {proc.returncode}): {text[-500:]}")
    raw = json.loads(match.group(1))
    requests = int(raw["requests"])
    # CPU per call the target proxied: after the idle wait that is wrk's completed requests plus
    # those still in flight when wrk stopped (the target did their work too).
    calls = served if served > 0 else requests
    per_req = 1000 / calls if calls else float("nan")
    return WrkResult(
        target=target.name,
        concurrency=concurrency,
        threads=threads,
        duration_s=raw["duration_us"] / 1e6,
        requests=requests,
        rps=requests / (raw["duration_us"] / 1e6),
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        mean_ms=raw["mean_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        non_2xx=int(raw["status"]),
        socket_errors={k: int(raw[k]) for k in ("connect", "read", "write", "timeout")},
        cpu_s=cpu_s,
        cpu_ms_per_req=cpu_s * per_req,
        upstream_requests=served,
        redis_cpu_ms_per_req=None if redis_s is None else redis_s * per_req,
        other_load_cores=other_load,
        text=text,
    )


# ---------------------------------------------------------------------------------------------
# Streamed case: sequential requests on one keep-alive connection, raw HTTP/1.1 over asyncio


@dataclass
class StreamResult:
    target: str
    requests: int
    ttfb_ms: list[float] = field(repr=False)
    total_ms: list[float] = field(repr=False)
    events_min: int
    events_max: int
    failures: int
    cpu_ms_per_req: float

    def pct(self, values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

    @property
    def ttfb_p50(self) -> float:
        return statistics.median(self.ttfb_ms) if self.ttfb_ms else float("nan")

    @property
    def ttfb_p99(self) -> float:
        return self.pct(self.ttfb_ms, 0.99)

    @property
    def total_p50(self) -> float:
        return statistics.median(self.total_ms) if self.total_ms else float("nan")

    @property
    def total_p99(self) -> float:
        return self.pct(self.total_ms, 0.99)

    def to_json(self) -> dict[str, object]:
        out = asdict(self)
        out.update(
            ttfb_p50_ms=self.ttfb_p50,
            ttfb_p99_ms=self.ttfb_p99,
            total_p50_ms=self.total_p50,
            total_p99_ms=self.total_p99,
        )
        return out


class _Conn:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self.reader, self.writer

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def _one_stream(conn: _Conn, request: bytes) -> tuple[float, float, bytes]:
    """(ttfb seconds, total seconds, decoded body). TTFB = first byte of the response body."""
    reader, writer = await conn.open()
    started = time.perf_counter()
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    body = bytearray()
    ttfb: float | None = None

    def mark() -> None:
        nonlocal ttfb
        if ttfb is None:
            ttfb = time.perf_counter() - started

    if "chunked" in headers.get("transfer-encoding", ""):
        while True:
            size_line = await reader.readuntil(b"\r\n")
            mark()
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # end of the (empty) trailer section
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    elif "content-length" in headers:
        length = int(headers["content-length"])
        if length:
            body += await reader.readexactly(1)
            mark()
            body += await reader.readexactly(length - 1)
    else:
        while chunk := await reader.read(65536):
            mark()
            body += chunk
        await conn.close()
    total = time.perf_counter() - started
    if headers.get("connection", "").lower() == "close":
        await conn.close()
    if status != 200:
        raise RuntimeError(f"status {status}: {bytes(body[:200])!r}")
    return (ttfb if ttfb is not None else total), total, bytes(body)


def _request_bytes(url: str, headers: dict[str, str], body: bytes) -> tuple[str, int, bytes]:
    parts = urllib.parse.urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"POST {target} HTTP/1.1", f"host: {parts.netloc}", f"content-length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    return parts.hostname or "127.0.0.1", parts.port or 80, raw


async def _stream_run(target: Target, n: int, warmup: int) -> StreamResult:
    host, port, request = _request_bytes(
        target.stream_url,
        target.request_headers(stream=True),
        json.dumps(STREAM_REQUEST).encode(),
    )
    conn = _Conn(host, port)
    ttfb: list[float] = []
    total: list[float] = []
    events: list[int] = []
    failures = 0
    try:
        for _ in range(warmup):
            await _one_stream(conn, request)
        cpu0 = tree_cpu_seconds(target.pid)
        for _ in range(n):
            try:
                t1, t2, body = await _one_stream(conn, request)
            except (OSError, RuntimeError, ValueError, asyncio.IncompleteReadError):
                failures += 1
                await conn.close()
                continue
            ttfb.append(t1 * 1000)
            total.append(t2 * 1000)
            events.append(count_events(body))
        await asyncio.sleep(0.3)
        cpu_s = tree_cpu_seconds(target.pid) - cpu0
    finally:
        await conn.close()
    done = len(ttfb)
    return StreamResult(
        target=target.name,
        requests=done,
        ttfb_ms=ttfb,
        total_ms=total,
        events_min=min(events, default=0),
        events_max=max(events, default=0),
        failures=failures,
        cpu_ms_per_req=cpu_s * 1000 / done if done else float("nan"),
    )


def run_stream(target: Target, n: int, warmup: int) -> StreamResult:
    return asyncio.run(_stream_run(target, n, warmup))
