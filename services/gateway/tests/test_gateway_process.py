"""Process-level behaviour of ``python -m smoltbot_gateway``: JSON logs, clean SIGTERM."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import msgspec
import redis
from smoltbot_contracts.streams import EXCHANGES, stream_key
from smoltbot_testing import FakeUpstream

MESSAGE = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "bye"}]}


def test_sigterm_exits_cleanly_and_flushes_events(
    fake: FakeUpstream, redis_client: redis.Redis, gateway_factory: Any, tmp_path: Path
) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    log_path = tmp_path / "gateway.log"
    process = gateway_factory.spawn(fake.url, prefix, log_path)
    try:
        response = httpx.post(
            f"{process.url}/anthropic/v1/messages",
            json=MESSAGE,
            headers={"x-api-key": "sk-process-test"},
            timeout=10,
        )
        assert response.status_code == 200
        event_id = response.headers["x-smoltbot-event-id"].encode()
        assert gateway_factory.stop(process.proc) == 0
        ids = [f[b"id"] for _, f in redis_client.xrange(stream_key(prefix, EXCHANGES))]
        assert event_id in ids
        lines = [line for line in log_path.read_bytes().splitlines() if line.strip()]
        records = [msgspec.json.decode(line) for line in lines]  # every line is JSON
        messages = [r["message"] for r in records]
        assert "gateway started" in messages
        assert "gateway stopped" in messages
        assert all(r["service"] == "smoltbot-gateway" for r in records)
    finally:
        gateway_factory.stop(process.proc)
        gateway_factory.delete_prefix(redis_client, prefix)
