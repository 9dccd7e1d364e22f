"""Hostile and careless clients against the real gateway process: the process keeps its memory
bounded, answers with its own clear errors, creates nothing for rejected keys, and keeps
serving ordinary calls meanwhile."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from smoltbot_contracts.codec import decode_fields
from smoltbot_contracts.ids import agent_hash, agent_id
from smoltbot_contracts.streams import AGENTS, EXCHANGES, stream_key
from smoltbot_testing import FakeUpstream
from smoltbot_testing.keys import unique_prefix

MIB = 1024 * 1024
MESSAGE = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "ordinary"}]}


@pytest.fixture(scope="module")
def hardened(
    fake: FakeUpstream,
    redis_client: redis.Redis,
    gateway_factory: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Any:
    """A gateway with the default body cap and budget, and a 10 s body timeout."""
    prefix = unique_prefix()
    process = gateway_factory.spawn(
        fake.url,
        prefix,
        tmp_path_factory.mktemp("hardened") / "gateway.log",
        SMOLTBOT_GATEWAY_BODY_TIMEOUT_S="10",
        SMOLTBOT_GATEWAY_MAX_CAPTURED_BYTES="4096",
    )
    try:
        yield process
    finally:
        gateway_factory.stop(process.proc)
        gateway_factory.delete_prefix(redis_client, prefix)


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants (granian serves from a child process)."""
    total = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            total += int(line.split()[1]) * 1024
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            total += rss_bytes(int(child))
    return total


def raw_request(url: str, head: bytes, body_pieces: list[bytes], every_s: float) -> bytes:
    """Send a request by hand (headers, then the body piece by piece) and read the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=15) as conn:
        conn.sendall(head)
        try:
            for piece in body_pieces:
                time.sleep(every_s)
                conn.sendall(piece)
        except OSError:
            pass  # the gateway answered and closed while we were still sending
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def test_twenty_bodies_at_the_cap_keep_memory_bounded_and_ordinary_calls_served(
    hardened: Any, fake: FakeUpstream
) -> None:
    pid = hardened.proc.pid
    before = rss_bytes(pid)
    body = b'{"model":"m","messages":[{"role":"user","content":"' + b"x" * (32 * MIB - 80)
    body += b'"}]}'
    assert len(body) <= 32 * MIB
    peak = before
    statuses: dict[str, list[int]] = {"big": [], "ordinary": []}

    async def storm() -> None:
        nonlocal peak
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:

            async def big(i: int) -> None:
                response = await client.post(
                    f"{hardened.anthropic_url}/v1/messages",
                    content=body,
                    headers={"x-api-key": f"k-big-{i}", "content-type": "application/json"},
                )
                statuses["big"].append(response.status_code)

            async def ordinary(i: int) -> None:
                await asyncio.sleep(0.05 * i)
                response = await client.post(
                    f"{hardened.anthropic_url}/v1/messages",
                    json=MESSAGE,
                    headers={"x-api-key": "k-ordinary"},
                )
                statuses["ordinary"].append(response.status_code)

            async def watch() -> None:
                nonlocal peak
                while True:
                    peak = max(peak, rss_bytes(pid))
                    await asyncio.sleep(0.01)

            watcher = asyncio.create_task(watch())
            await asyncio.gather(*(big(i) for i in range(20)), *(ordinary(i) for i in range(20)))
            watcher.cancel()

    asyncio.run(storm())
    fake.clear()  # the fake kept the big bodies it received
    assert statuses["ordinary"] == [200] * 20
    assert set(statuses["big"]) <= {200, 503}, statuses["big"]
    assert 200 in statuses["big"]
    assert 503 in statuses["big"]  # more than the budget at once: refused, not queued
    assert peak < 300 * MIB, f"RSS went from {before / MIB:.0f} to {peak / MIB:.0f} MiB"


def test_a_huge_declared_length_is_refused_before_any_body_arrives(hardened: Any) -> None:
    head = (
        b"POST /anthropic/v1/messages HTTP/1.1\r\nHost: gw\r\nx-api-key: k-huge\r\n"
        b"content-type: application/json\r\ncontent-length: 104857600\r\n\r\n"
    )
    started = time.monotonic()
    answer = raw_request(hardened.url, head, [], every_s=0)
    assert answer.startswith(b"HTTP/1.1 413")
    assert time.monotonic() - started < 5


def test_a_trickled_body_is_cut_off_with_408(hardened: Any, fake: FakeUpstream) -> None:
    before = len(fake.responses)
    head = (
        b"POST /anthropic/v1/messages HTTP/1.1\r\nHost: gw\r\nx-api-key: k-trickle\r\n"
        b"content-type: application/json\r\ncontent-length: 120\r\n\r\n"
    )
    started = time.monotonic()
    answer = raw_request(hardened.url, head, [b"{"] * 100, every_s=0.2)  # would take 20 s
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert time.monotonic() - started < 15
    assert len(fake.responses) == before


def test_five_hundred_rejected_random_keys_create_nothing(
    hardened: Any, redis_client: redis.Redis
) -> None:
    keys = [f"sk-random-{i}-{time.time_ns()}" for i in range(500)]

    async def flood() -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            semaphore = asyncio.Semaphore(20)

            async def one(key: str) -> int:
                async with semaphore:
                    response = await client.post(
                        f"{hardened.anthropic_url}/v1/messages",
                        json=MESSAGE,
                        headers={"x-api-key": key, "x-fake-status": "401"},
                    )
                    return response.status_code

            async def ordinary() -> int:
                response = await client.post(
                    f"{hardened.anthropic_url}/v1/messages",
                    json=MESSAGE,
                    headers={"x-api-key": "k-still-served"},
                )
                return response.status_code

            results = await asyncio.gather(*(one(k) for k in keys), ordinary())
            return list(results)

    statuses = asyncio.run(flood())
    assert statuses[:-1] == [401] * 500
    assert statuses[-1] == 200
    metrics = httpx.get(f"{hardened.url}/metrics", timeout=10).text
    assert 'smoltbot_gateway_unknown_keys_rejected_total{provider="anthropic"} 500.0' in metrics
    rejected = {agent_id(agent_hash(k)) for k in keys}
    deadline = time.monotonic() + 3  # give the publisher time to flush anything it would send
    time.sleep(max(0.0, deadline - time.monotonic()))
    agents = [decode_fields(f) for _, f in redis_client.xrange(stream_key(hardened.prefix, AGENTS))]
    exchanges = [
        decode_fields(f) for _, f in redis_client.xrange(stream_key(hardened.prefix, EXCHANGES))
    ]
    assert {a.agent_id for a in agents} & rejected == set()
    assert {e.meta.agent_id for e in exchanges} & rejected == set()
    assert any(a.agent_id == agent_id(agent_hash("k-still-served")) for a in agents)
