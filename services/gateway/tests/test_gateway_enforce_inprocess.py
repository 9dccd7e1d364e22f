"""Waiting calls through the whole app in-process: the fake upstream, the real Redis, and a
stand-in for observer + verifier that answers each priority exchange on its reply stream with
the verdict its user query asks for. What the client gets (status, body, X-AIP-* headers), that
every exchange is recorded exactly once, and the Redis failure path."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import msgspec
import pytest
from redis.asyncio import Redis
from smoltbot_contracts import Checkpoint, Concern, ExchangeV1, VerdictV1
from smoltbot_contracts.codec import decode_fields, to_fields
from smoltbot_contracts.ids import checkpoint_id, verdict_event_id
from smoltbot_contracts.streams import EXCHANGES, EXCHANGES_PRIORITY, stream_key
from smoltbot_gateway.app import create_app
from smoltbot_gateway.settings import GatewaySettings
from smoltbot_gateway.waiting import ANALYSIS_FAILED
from smoltbot_testing import FakeUpstream
from smoltbot_testing.env import REDIS_URL
from smoltbot_testing.faults import FaultProxy

from services.gateway.tests.waves_testkit import (
    PATHS,
    gateway_settings,
    key_headers,
    serving,
    set_config,
)

# What the stand-in verifier answers, by the call's user query.
VERDICTS = {
    "clear": ("clear", "continue"),
    "review": ("review_needed", "log_and_continue"),
    "violate": ("boundary_violation", "deny_and_escalate"),
    "analysis-fails": ("clear", "continue"),  # a synthetic analysis_failed checkpoint
}
SILENT = "silent"  # no verdict ever comes


def body(provider: str, text: str, **extra: Any) -> dict[str, Any]:
    if provider == "gemini":
        return {"contents": [{"role": "user", "parts": [{"text": text}]}], **extra}
    if provider == "openai":
        return {"model": "gpt-5", "messages": [{"role": "user", "content": text}], **extra}
    return {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": text}]} | extra


def settings(fake: FakeUpstream, prefix: str, tmp: Path, **env: str) -> GatewaySettings:
    return gateway_settings(prefix, fake, tmp, **{"SMOLTBOT_GATEWAY_AIP_TIMEOUT_MS": "600", **env})


def verdict_for(exchange: ExchangeV1) -> VerdictV1:
    query = exchange.user_query or "clear"
    value, action = VERDICTS.get(query, VERDICTS["clear"])
    meta = exchange.meta
    concerns = (
        [Concern(category="value_misalignment", severity="critical", description="exfiltration")]
        if value == "boundary_violation"
        else []
    )
    checkpoint = Checkpoint(
        checkpoint_id=checkpoint_id(meta.exchange_id),
        agent_id=meta.agent_id,
        card_id="ac-1",
        session_id=meta.session_id,
        timestamp=meta.completed_at,
        thinking_block_hash="h",
        provider=meta.provider,
        model="m",
        verdict=value,  # type: ignore[arg-type]
        concerns=concerns,
        reasoning_summary=f"stand-in verdict for {query}",
        recommended_action=action,  # type: ignore[arg-type]
        proceed=value != "boundary_violation",
        synthetic=query == "analysis-fails",
        synthetic_reason=ANALYSIS_FAILED if query == "analysis-fails" else None,
    )
    return VerdictV1(event_id=verdict_event_id(meta.exchange_id), meta=meta, checkpoint=checkpoint)


@asynccontextmanager
async def stand_in_verifier(redis: Redis, prefix: str) -> AsyncIterator[list[ExchangeV1]]:
    """Reads ``exchanges:priority`` and replies to each on its ``reply_to`` stream."""
    seen: list[ExchangeV1] = []

    async def run() -> None:
        last = "0-0"
        key = stream_key(prefix, EXCHANGES_PRIORITY)
        while True:
            reply: Any = await redis.xread({key: last}, block=100)
            for _, entries in reply or []:
                for entry_id, fields in entries:
                    last = entry_id
                    exchange = decode_fields(fields)
                    assert isinstance(exchange, ExchangeV1)
                    seen.append(exchange)
                    if exchange.user_query != SILENT and exchange.reply_to:
                        answer = to_fields(verdict_for(exchange))
                        await redis.xadd(stream_key(prefix, exchange.reply_to), answer)  # type: ignore[arg-type]

    task = asyncio.create_task(run())
    try:
        yield seen
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


@pytest.fixture
def fake_upstream(fake: FakeUpstream) -> FakeUpstream:
    fake.clear()
    return fake


async def exchanges_on(redis: Redis, prefix: str, stream: str) -> list[ExchangeV1]:
    entries = await redis.xrange(stream_key(prefix, stream))
    return [e for _, f in entries if isinstance(e := decode_fields(f), ExchangeV1)]


@pytest.mark.parametrize("provider", ["anthropic", "openai", "gemini"])
async def test_enforce_mode_blocks_a_violation_and_relays_the_rest(
    fake_upstream: FakeUpstream, redis: Redis, prefix: str, tmp_path: Path, provider: str
) -> None:
    key = f"k-enforce-{provider}"
    agent = await set_config(redis, prefix, key, enforcement_mode="enforce")
    app = create_app(settings(fake_upstream, prefix, tmp_path))
    path, headers = PATHS[provider], key_headers(provider, key)
    async with stand_in_verifier(redis, prefix) as seen, serving(app) as client:
        clear = await client.post(path, json=body(provider, "clear"), headers=headers)
        review = await client.post(path, json=body(provider, "review"), headers=headers)
        blocked = await client.post(path, json=body(provider, "violate"), headers=headers)
    # clear and review_needed: the upstream's answer, byte for byte, with the verdict
    upstream = fake_upstream.responses
    assert clear.status_code == 200
    assert clear.content == upstream[0].decoded
    assert clear.headers["content-length"] == str(len(upstream[0].raw))  # gzip kept as is
    assert clear.headers["x-aip-verdict"] == "clear"
    assert clear.headers["x-aip-action"] == "continue"
    assert clear.headers["x-aip-proceed"] == "true"
    assert review.status_code == 200
    assert review.headers["x-aip-verdict"] == "review_needed"
    assert review.headers["x-aip-action"] == "log_and_continue"
    # boundary_violation: the reference's 403, no upstream header
    assert blocked.status_code == 403
    assert blocked.headers["x-aip-verdict"] == "boundary_violation"
    assert blocked.headers["x-aip-action"] == "deny_and_escalate"
    assert blocked.headers["x-aip-proceed"] == "false"
    assert blocked.headers["x-smoltbot-agent"] == agent
    event_id = blocked.headers["x-smoltbot-event-id"]
    assert blocked.headers["x-aip-checkpoint-id"] == checkpoint_id(event_id)
    assert blocked.headers["content-type"] == "application/json"
    assert not any(
        n.startswith(("anthropic-", "openai-", "request-id", "x-goog")) for n in blocked.headers
    )
    answer = blocked.json()
    assert answer["type"] == "integrity_violation"
    assert answer["checkpoint"]["checkpoint_id"] == checkpoint_id(event_id)
    assert answer["checkpoint"]["verdict"] == "boundary_violation"
    assert answer["checkpoint"]["concerns"][0]["category"] == "value_misalignment"
    assert answer["checkpoint"]["recommended_action"] == "deny_and_escalate"
    # every exchange recorded exactly once, on the priority lane, answered to this gateway
    assert [e.user_query for e in seen] == ["clear", "review", "violate"]
    assert all(e.reply_to and e.reply_to.startswith("replies:") for e in seen)
    assert all(e.enforcement_mode == "enforce" for e in seen)
    assert await exchanges_on(redis, prefix, EXCHANGES) == []
    assert len(await exchanges_on(redis, prefix, EXCHANGES_PRIORITY)) == 3


async def test_streams_and_other_modes_answer_at_once(
    fake_upstream: FakeUpstream, redis: Redis, prefix: str, tmp_path: Path
) -> None:
    await set_config(redis, prefix, "k-stream", enforcement_mode="enforce")
    await set_config(redis, prefix, "k-off", enforcement_mode="enforce", aip_enabled=False)
    await set_config(redis, prefix, "k-observe", enforcement_mode="observe")
    app = create_app(settings(fake_upstream, prefix, tmp_path))
    path = PATHS["anthropic"]
    async with stand_in_verifier(redis, prefix) as seen, serving(app) as client:
        started = time.perf_counter()
        streamed = await client.post(
            path, json=body("anthropic", SILENT, stream=True), headers={"x-api-key": "k-stream"}
        )
        disabled = await client.post(
            path, json=body("anthropic", SILENT), headers={"x-api-key": "k-off"}
        )
        observed = await client.post(
            path, json=body("anthropic", SILENT), headers={"x-api-key": "k-observe"}
        )
        failed = await client.post(
            path,
            json=body("anthropic", SILENT),
            headers={"x-api-key": "k-stream", "x-fake-status": "500"},
        )
        assert time.perf_counter() - started < 0.5  # none waited for the (absent) verdict
    assert streamed.headers["x-aip-verdict"] == "pending"
    assert "event: message_stop" in streamed.text
    assert disabled.headers["x-aip-verdict"] == "disabled"
    assert observed.headers["x-aip-verdict"] == "pending"
    assert failed.status_code == 500
    assert failed.headers["x-aip-verdict"] == "skipped"
    assert seen == []
    assert len(await exchanges_on(redis, prefix, EXCHANGES)) == 4


async def test_no_verdict_follows_the_failure_policy_of_the_agent_else_the_gateway(
    fake_upstream: FakeUpstream, redis: Redis, prefix: str, tmp_path: Path
) -> None:
    await set_config(redis, prefix, "k-default", enforcement_mode="enforce")
    await set_config(
        redis, prefix, "k-closed", enforcement_mode="enforce", failure_policy="fail_closed"
    )
    app = create_app(settings(fake_upstream, prefix, tmp_path))
    path = PATHS["anthropic"]
    async with stand_in_verifier(redis, prefix), serving(app) as client:
        started = time.perf_counter()
        opened = await client.post(
            path, json=body("anthropic", SILENT), headers={"x-api-key": "k-default"}
        )
        waited = time.perf_counter() - started
        closed = await client.post(
            path, json=body("anthropic", SILENT), headers={"x-api-key": "k-closed"}
        )
        failed_open = await client.post(
            path, json=body("anthropic", "analysis-fails"), headers={"x-api-key": "k-default"}
        )
        failed_closed = await client.post(
            path, json=body("anthropic", "analysis-fails"), headers={"x-api-key": "k-closed"}
        )
    assert 0.6 <= waited < 1.5  # SMOLTBOT_GATEWAY_AIP_TIMEOUT_MS=600
    assert opened.status_code == 200
    assert opened.headers["x-aip-verdict"] == "error"
    assert opened.json()["content"][-1]["text"] == f"Echo: {SILENT}"
    assert closed.status_code == 403
    assert closed.headers["x-aip-verdict"] == "error"
    assert closed.headers["x-aip-proceed"] == "false"
    assert closed.json()["type"] == "integrity_violation"
    assert closed.json()["reason"] == "timeout"
    assert failed_open.status_code == 200
    assert failed_open.headers["x-aip-verdict"] == "error"
    assert failed_closed.status_code == 403
    assert failed_closed.json()["reason"] == "error"


async def test_the_gateway_policy_applies_when_the_agent_names_none(
    fake_upstream: FakeUpstream, redis: Redis, prefix: str, tmp_path: Path
) -> None:
    await set_config(redis, prefix, "k-gw-closed", enforcement_mode="enforce")
    await set_config(
        redis, prefix, "k-own-open", enforcement_mode="enforce", failure_policy="fail_open"
    )
    app = create_app(
        settings(fake_upstream, prefix, tmp_path, SMOLTBOT_GATEWAY_FAILURE_POLICY="fail_closed")
    )
    path = PATHS["anthropic"]
    async with stand_in_verifier(redis, prefix), serving(app) as client:
        closed = await client.post(
            path, json=body("anthropic", SILENT), headers={"x-api-key": "k-gw-closed"}
        )
        own = await client.post(
            path, json=body("anthropic", SILENT), headers={"x-api-key": "k-own-open"}
        )
    assert closed.status_code == 403
    assert own.status_code == 200
    assert own.headers["x-aip-verdict"] == "error"


async def test_inline_verdicts_wait_in_every_mode_but_never_block(
    fake_upstream: FakeUpstream, redis: Redis, prefix: str, tmp_path: Path
) -> None:
    app = create_app(
        settings(
            fake_upstream,
            prefix,
            tmp_path,
            AIP_INLINE_VERDICT="true",
            SMOLTBOT_GATEWAY_FAILURE_POLICY="fail_closed",
        )
    )
    path = PATHS["anthropic"]
    headers = {"x-api-key": "k-inline"}  # no config: observe mode
    async with stand_in_verifier(redis, prefix) as seen, serving(app) as client:
        violation = await client.post(path, json=body("anthropic", "violate"), headers=headers)
        silent = await client.post(path, json=body("anthropic", SILENT), headers=headers)
    assert violation.status_code == 200
    assert violation.headers["x-aip-verdict"] == "boundary_violation"
    assert violation.headers["x-aip-proceed"] == "false"
    assert silent.status_code == 200
    assert silent.headers["x-aip-verdict"] == "error"
    assert [e.enforcement_mode for e in seen] == ["observe", "observe"]


async def test_a_redis_outage_fails_by_policy_at_once_and_keeps_the_trace(
    fake_upstream: FakeUpstream, redis: Redis, prefix: str, tmp_path: Path
) -> None:
    await set_config(redis, prefix, "k-cut-open", enforcement_mode="enforce")
    await set_config(
        redis, prefix, "k-cut-closed", enforcement_mode="enforce", failure_policy="fail_closed"
    )
    url = urlparse(REDIS_URL)
    proxy = FaultProxy(url.hostname or "127.0.0.1", url.port or 6379).start()
    try:
        app = create_app(
            settings(
                fake_upstream,
                prefix,
                tmp_path,
                REDIS_URL=f"redis://{proxy.url_host_port}{url.path or '/0'}",
                SMOLTBOT_GATEWAY_AIP_TIMEOUT_MS="5000",
            )
        )
        path = PATHS["anthropic"]
        async with stand_in_verifier(redis, prefix), serving(app) as client:
            for key in ("k-cut-open", "k-cut-closed"):  # configs cached, Redis reachable
                ok = await client.post(
                    path, json=body("anthropic", "clear"), headers={"x-api-key": key}
                )
                assert ok.headers["x-aip-verdict"] == "clear"
            proxy.set_mode("cut")
            started = time.perf_counter()
            opened = await client.post(
                path, json=body("anthropic", "cut-open"), headers={"x-api-key": "k-cut-open"}
            )
            closed = await client.post(
                path, json=body("anthropic", "cut-closed"), headers={"x-api-key": "k-cut-closed"}
            )
            assert time.perf_counter() - started < 2.0  # not the 5 s AIP timeout
            proxy.set_mode("pass")
            # the two exchanges went to the buffered path: spooled, re-published once Redis is
            # back (no reply_to: nobody waits for them any more)
            deadline = time.monotonic() + 15
            queued: list[ExchangeV1] = []
            while time.monotonic() < deadline and len(queued) < 2:
                await asyncio.sleep(0.1)
                queued = await exchanges_on(redis, prefix, EXCHANGES)
        assert (opened.status_code, opened.headers["x-aip-verdict"]) == (200, "error")
        assert (closed.status_code, closed.headers["x-aip-verdict"]) == (403, "error")
        assert closed.json()["reason"] == "bus_unavailable"
        assert sorted(e.user_query or "" for e in queued) == ["cut-closed", "cut-open"]
        assert [e.reply_to for e in queued] == [None, None]
        priority = [e.user_query for e in await exchanges_on(redis, prefix, EXCHANGES_PRIORITY)]
        assert priority == ["clear", "clear"]
    finally:
        proxy.stop()


async def test_a_client_that_leaves_while_waiting_is_counted_and_recorded_once(
    fake_upstream: FakeUpstream, redis: Redis, prefix: str, tmp_path: Path
) -> None:
    """Over a real socket (granian is not needed: the in-process client cannot disconnect, so
    this drives the ASGI app with a receive that reports the disconnect)."""
    await set_config(redis, prefix, "k-leaves", enforcement_mode="enforce")
    app = create_app(
        settings(fake_upstream, prefix, tmp_path, SMOLTBOT_GATEWAY_AIP_TIMEOUT_MS="5000")
    )
    async with stand_in_verifier(redis, prefix) as seen, serving(app):
        sent: list[dict[str, Any]] = []
        request = msgspec.json.encode(body("anthropic", SILENT))
        gone = asyncio.Event()
        messages = [{"type": "http.request", "body": request, "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": PATHS["anthropic"],
            "raw_path": PATHS["anthropic"].encode(),
            "query_string": b"",
            "headers": [(b"x-api-key", b"k-leaves"), (b"content-type", b"application/json")],
        }
        call = asyncio.create_task(app(scope, receive, send))  # type: ignore[arg-type]
        while not seen:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # past the disconnect watcher's start
        started = time.perf_counter()
        gone.set()
        await asyncio.wait_for(call, 3)
        assert time.perf_counter() - started < 1.0  # not the 5 s timeout
        assert sent == []  # nothing was sent to a client that left
    assert [e.user_query for e in seen] == [SILENT]
    assert await exchanges_on(redis, prefix, EXCHANGES) == []
