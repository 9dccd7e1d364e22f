"""`make bench-gateway`: the gateway's added latency and CPU against the provider called directly.

Both paths hit the same fake upstream (a separate process on loopback) in the same run, with the
same client, request body and concurrency. Reported: client-side p50/p99 latency for each path
and their ratio, the gateway's own `gateway_overhead_seconds` histogram, and the gateway
process's CPU time per request (from /proc). Not a test: numbers vary by machine, so they are
printed with the machine's description, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from smoltbot_testing import fake_upstream
from smoltbot_testing.keys import REDIS_URL, delete_prefix_sync, unique_prefix
from smoltbot_testing.net import free_port, wait_for_http

BODY = {
    "model": "claude-bench",
    "max_tokens": 256,
    "messages": [{"role": "user", "content": "benchmark: answer briefly"}],
}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


async def drive(
    url: str, headers: dict[str, str], n: int, concurrency: int, stream: bool
) -> list[float]:
    body = {**BODY, "stream": stream}
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker() -> None:
            while True:
                try:
                    queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                started = time.perf_counter()
                async with client.stream("POST", url, json=body, headers=headers) as resp:
                    async for _ in resp.aiter_raw():
                        pass
                    if resp.status_code != 200:
                        raise RuntimeError(f"status {resp.status_code}")
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def overhead_p50(metrics_text: str, streamed: str) -> float | None:
    buckets: list[tuple[float, float]] = []
    for line in metrics_text.splitlines():
        if line.startswith("gateway_overhead_seconds_bucket") and f'streamed="{streamed}"' in line:
            le = line.split('le="', 1)[1].split('"', 1)[0]
            if le != "+Inf":
                buckets.append((float(le), float(line.rsplit(" ", 1)[1])))
    if not buckets:
        return None
    total = max(count for _, count in buckets)
    return next((le for le, count in sorted(buckets) if count >= total / 2), None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    prefix = unique_prefix()
    fake_port, gw_port = free_port(), free_port()
    logs = Path(tempfile.mkdtemp(prefix="smoltbot-bench-"))
    env = {
        **os.environ,
        "REDIS_URL": REDIS_URL,
        "SMOLTBOT_STREAM_PREFIX": prefix,
        "SMOLTBOT_GATEWAY_PORT": str(gw_port),
        "SMOLTBOT_GATEWAY_HOST": "127.0.0.1",
        "SMOLTBOT_UPSTREAM_ANTHROPIC_URL": f"http://127.0.0.1:{fake_port}",
        "SMOLTBOT_SPOOL_DIR": str(logs / "spool"),
        "LOG_LEVEL": "warning",
    }
    fake = subprocess.Popen(
        fake_upstream.command(fake_port),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    gateway = subprocess.Popen(
        [sys.executable, "-m", "smoltbot_gateway"],
        env=env,
        stdout=(logs / "gateway.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{fake_port}/__fake__/health", timeout_s=30)
        wait_for_http(f"http://127.0.0.1:{gw_port}/health/ready", timeout_s=30)
        headers = {
            "x-api-key": "sk-bench",
            "anthropic-version": "2023-06-01",
            "accept-encoding": "identity",
        }
        direct_url = f"http://127.0.0.1:{fake_port}/v1/messages"
        gateway_url = f"http://127.0.0.1:{gw_port}/anthropic/v1/messages"
        granian_pids = subprocess.run(
            ["pgrep", "-P", str(gateway.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        gw_pids = [gateway.pid, *map(int, granian_pids)]
        machine = f"{platform.platform()}, {os.cpu_count()} cpu"
        print(f"machine: {machine}, python {platform.python_version()}")
        print(f"requests per case: {args.requests}, concurrency {args.concurrency}\n")
        print(f"{'case':<22}{'p50 ms':>9}{'p99 ms':>9}{'ratio p50':>11}{'gw cpu ms/req':>15}")
        for stream in (False, True):
            asyncio.run(drive(direct_url, headers, 200, args.concurrency, stream))  # warm up
            asyncio.run(drive(gateway_url, headers, 200, args.concurrency, stream))
            direct = asyncio.run(
                drive(direct_url, headers, args.requests, args.concurrency, stream)
            )
            cpu0 = sum(cpu_seconds(p) for p in gw_pids)
            via = asyncio.run(drive(gateway_url, headers, args.requests, args.concurrency, stream))
            cpu_ms = (sum(cpu_seconds(p) for p in gw_pids) - cpu0) * 1000 / args.requests
            kind = "stream" if stream else "json"
            d50, g50 = statistics.median(direct) * 1000, statistics.median(via) * 1000
            print(
                f"{'direct ' + kind:<22}{d50:>9.2f}{pct(direct, 0.99) * 1000:>9.2f}{'':>11}{'':>15}"
            )
            print(
                f"{'gateway ' + kind:<22}{g50:>9.2f}{pct(via, 0.99) * 1000:>9.2f}"
                f"{g50 / d50:>11.2f}{cpu_ms:>15.2f}"
            )
        metrics = httpx.get(f"http://127.0.0.1:{gw_port}/metrics").text
        for streamed in ("false", "true"):
            p50 = overhead_p50(metrics, streamed)
            shown = "n/a" if p50 is None else f"<= {p50 * 1000:.2f} ms"
            print(f"gateway_overhead_seconds p50 (streamed={streamed}): {shown}")
        print("\nLiteLLM baseline: not run yet (needs litellm[proxy] in the bench environment).")
        return 0
    finally:
        for proc in (gateway, fake):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        delete_prefix_sync(prefix)


if __name__ == "__main__":
    sys.exit(main())
