"""Wave 3 at the gateway against real Redis: the claim script (at most five, oldest first, stale
ones expired, exactly once under concurrency), the give-back, and nudges through the whole app
into each provider's system prompt, with the headers and the exchange's ``nudge_ids``."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis
from smoltbot_contracts import ExchangeV1
from smoltbot_contracts.codec import decode_fields
from smoltbot_contracts.streams import EXCHANGES, stream_key
from smoltbot_gateway.agent_config import CFG_FIELD, ConfigReader
from smoltbot_gateway.app import create_app
from smoltbot_gateway.nudges import NOTICE_HEADER, NudgeClaim, NudgeStore
from smoltbot_testing import FakeUpstream
from smoltbot_testing.faults import SilentServer
from smoltbot_testing.keys import wait_for_entries

from services.gateway.tests.waves_testkit import (
    HOUR_MS,
    PATHS,
    add_nudge,
    agent_for,
    gateway_settings,
    key_headers,
    nudge_records,
    pending_ids,
    raw_sent,
    request_body,
    sent_bodies,
    sent_body,
    serving,
    set_config,
)

NOW_MS = 1_800_000_000_000


def fixed_clock() -> float:
    return NOW_MS / 1000


async def exchanges(redis: Redis, prefix: str, count: int) -> list[ExchangeV1]:
    entries = await wait_for_entries(redis, stream_key(prefix, EXCHANGES), count)
    out = [decode_fields(fields) for _, fields in entries]
    return [e for e in out if isinstance(e, ExchangeV1)]


# ------------------------------------------------------------------------- the claim script


async def test_the_claim_takes_at_most_five_oldest_first_and_expires_stale_ones(
    redis: Redis, prefix: str
) -> None:
    agent = await set_config(redis, prefix, "k-claim", enforcement_mode="nudge")
    store = NudgeStore(redis, prefix, clock=fixed_clock)
    await add_nudge(redis, prefix, agent, "stale-a", NOW_MS - 5 * HOUR_MS)
    await add_nudge(redis, prefix, agent, "stale-b", NOW_MS - 4 * HOUR_MS)  # exactly 4 h: out
    ages = {f"n{i}": NOW_MS - 4 * HOUR_MS + 1 + i * 60_000 for i in range(7)}
    for nudge_id, created in reversed(ages.items()):  # written newest first
        await add_nudge(redis, prefix, agent, nudge_id, created)

    first = NudgeClaim("event-1")
    raw = await store.read_and_claim(agent, first, CFG_FIELD)
    assert isinstance(raw, bytes)
    assert [n.id for n in first.nudges] == ["n0", "n1", "n2", "n3", "n4"]
    records = await nudge_records(redis, prefix, agent)
    for nudge_id in ("n0", "n1", "n2", "n3", "n4"):
        assert records[nudge_id].status == "delivered"
        assert records[nudge_id].delivered_event_id == "event-1"
        assert records[nudge_id].delivered_ms == NOW_MS
        assert records[nudge_id].text == first.nudges[0].text.replace("n0", nudge_id)
    for nudge_id in ("stale-a", "stale-b"):
        assert records[nudge_id].status == "expired"
        assert records[nudge_id].expired_ms == NOW_MS
    assert await pending_ids(redis, prefix, agent) == ["n5", "n6"]

    second = NudgeClaim("event-2")
    await store.read_and_claim(agent, second, CFG_FIELD)
    assert [n.id for n in second.nudges] == ["n5", "n6"]
    third = NudgeClaim("event-3")
    await store.read_and_claim(agent, third, CFG_FIELD)
    assert third.nudges == ()
    assert {r.status for r in (await nudge_records(redis, prefix, agent)).values()} == {
        "delivered",
        "expired",
    }


@pytest.mark.parametrize(
    ("fields", "claims"),
    [
        ({"enforcement_mode": "observe"}, False),
        ({"enforcement_mode": "off"}, False),
        ({"enforcement_mode": "nudge", "containment": "paused"}, False),
        ({"enforcement_mode": "enforce", "containment": "killed"}, False),
        ({"enforcement_mode": "nudge"}, True),
        ({"enforcement_mode": "enforce"}, True),
        (None, False),  # no config: observe
    ],
)
async def test_only_active_nudge_and_enforce_agents_claim(
    redis: Redis, prefix: str, fields: dict[str, Any] | None, claims: bool
) -> None:
    key = "k-modes"
    agent = agent_for(key)
    if fields is not None:
        await set_config(redis, prefix, key, **fields)
    await add_nudge(redis, prefix, agent, "only", NOW_MS - 1000)
    claim = NudgeClaim("event-1")
    await NudgeStore(redis, prefix, clock=fixed_clock).read_and_claim(agent, claim, CFG_FIELD)
    assert [n.id for n in claim.nudges] == (["only"] if claims else [])
    assert await pending_ids(redis, prefix, agent) == ([] if claims else ["only"])


async def test_a_garbled_config_claims_nothing_and_a_garbled_record_is_skipped(
    redis: Redis, prefix: str
) -> None:
    agent = await set_config(redis, prefix, "k-garbled", enforcement_mode="nudge")
    await add_nudge(redis, prefix, agent, "good", NOW_MS - 2000)
    await redis.hset(f"{prefix}nudges:{{{agent}}}", "bad", b"{not json")  # type: ignore[misc]
    await redis.zadd(f"{prefix}nudges:{{{agent}}}:pending", {"bad": NOW_MS - 3000})
    claim = NudgeClaim("e")
    await NudgeStore(redis, prefix, clock=fixed_clock).read_and_claim(agent, claim, CFG_FIELD)
    assert [n.id for n in claim.nudges] == ["good"]
    assert await pending_ids(redis, prefix, agent) == []
    await redis.hset(f"{prefix}cfg:{{{agent}}}", "b", b"\xc1garbage")  # type: ignore[misc]
    await add_nudge(redis, prefix, agent, "later", NOW_MS - 1000)
    claim = NudgeClaim("e2")
    await NudgeStore(redis, prefix, clock=fixed_clock).read_and_claim(agent, claim, CFG_FIELD)
    assert claim.nudges == ()


async def test_release_gives_back_only_what_one_call_claimed(redis: Redis, prefix: str) -> None:
    agent = await set_config(redis, prefix, "k-release", enforcement_mode="nudge")
    store = NudgeStore(redis, prefix, clock=fixed_clock)
    for i in range(7):
        await add_nudge(redis, prefix, agent, f"n{i}", NOW_MS - 10_000 + i)
    first, second = NudgeClaim("event-1"), NudgeClaim("event-2")
    await store.read_and_claim(agent, first, CFG_FIELD)
    await store.read_and_claim(agent, second, CFG_FIELD)
    assert await store.release(agent, "event-1", "not_injected") == 5
    assert await pending_ids(redis, prefix, agent) == ["n0", "n1", "n2", "n3", "n4"]
    records = await nudge_records(redis, prefix, agent)
    assert records["n0"].status == "pending"
    assert records["n0"].delivered_event_id is None
    assert records["n0"].delivered_ms is None
    assert records["n5"].delivered_event_id == "event-2"
    assert await store.release(agent, "event-1", "not_injected") == 0  # idempotent


async def test_concurrent_claims_never_take_a_nudge_twice(redis: Redis, prefix: str) -> None:
    agent = await set_config(redis, prefix, "k-race", enforcement_mode="enforce")
    for i in range(12):
        await add_nudge(redis, prefix, agent, f"n{i:02d}", NOW_MS - 100_000 + i)
    stores = [NudgeStore(redis, prefix, clock=fixed_clock) for _ in range(4)]
    claims = [NudgeClaim(f"event-{i}") for i in range(16)]
    await asyncio.gather(
        *(stores[i % 4].read_and_claim(agent, claim, CFG_FIELD) for i, claim in enumerate(claims))
    )
    taken = [n.id for c in claims for n in c.nudges]
    assert sorted(taken) == [f"n{i:02d}" for i in range(12)]
    assert all(len(c.nudges) <= 5 for c in claims)


# ---------------------------------------------------------------------- through the app


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


@pytest.mark.parametrize("provider", ["anthropic", "openai", "gemini"])
async def test_a_pending_nudge_reaches_the_next_call_once_with_headers_and_exchange_ids(
    fake: FakeUpstream, redis: Redis, prefix: str, tmp: Path, provider: str
) -> None:
    key = f"k-deliver-{provider}"
    agent = await set_config(redis, prefix, key, enforcement_mode="nudge")
    now = int(time.time() * 1000)
    text = "Your previous response (checkpoint ic-1) was flagged.\nConcern: deception"
    nudge = await add_nudge(redis, prefix, agent, f"nudge-{provider}", now - 60_000, text)
    app = create_app(gateway_settings(prefix, fake, tmp))
    marker = f"{prefix}{provider}"
    async with serving(app) as client:
        first = await client.post(
            PATHS[provider],
            json=request_body(provider, "first"),
            headers={**key_headers(provider, key), "x-test-id": f"{marker}-1"},
        )
        second = await client.post(
            PATHS[provider],
            json=request_body(provider, "second"),
            headers={**key_headers(provider, key), "x-test-id": f"{marker}-2"},
        )
    assert first.status_code == second.status_code == 200
    assert first.headers["x-aip-enforcement"] == "nudge"
    assert first.headers["x-aip-nudge-count"] == "1"
    assert "x-aip-enforcement" not in second.headers
    notice = f"{NOTICE_HEADER}\n{text}"
    body = sent_body(fake, f"{marker}-1")
    if provider == "anthropic":
        assert body["system"] == notice
    elif provider == "openai":
        assert body["messages"][0] == {"role": "system", "content": notice}
    else:
        assert body["systemInstruction"] == {"parts": [{"text": notice}]}
    assert NOTICE_HEADER not in str(sent_body(fake, f"{marker}-2"))
    record = (await nudge_records(redis, prefix, agent))[nudge.id]
    assert record.status == "delivered"
    assert record.delivered_event_id == first.headers["x-smoltbot-event-id"]
    by_id = {e.event_id: e for e in await exchanges(redis, prefix, 2)}
    assert by_id[first.headers["x-smoltbot-event-id"]].nudge_ids == [nudge.id]
    assert by_id[second.headers["x-smoltbot-event-id"]].nudge_ids == []


async def test_eight_concurrent_calls_deliver_three_nudges_exactly_once(
    fake: FakeUpstream, redis: Redis, prefix: str, tmp: Path
) -> None:
    key = "k-eight"
    agent = await set_config(redis, prefix, key, enforcement_mode="nudge")
    now = int(time.time() * 1000)
    ids = [f"nudge-race-{i}" for i in range(3)]
    for i, nudge_id in enumerate(ids):
        await add_nudge(redis, prefix, agent, nudge_id, now - 30_000 + i, f"notice for {nudge_id}")
    # Two gateway processes' worth of apps, each with its own config cache and Redis pool.
    apps = [create_app(gateway_settings(prefix, fake, tmp / str(i))) for i in range(2)]
    marker = f"{prefix}race"
    async with serving(apps[0]) as one, serving(apps[1]) as two:
        answers = await asyncio.gather(
            *(
                (one, two)[i % 2].post(
                    PATHS["anthropic"],
                    json=request_body("anthropic", f"call {i}"),
                    headers={**key_headers("anthropic", key), "x-test-id": marker},
                )
                for i in range(8)
            )
        )
    assert [a.status_code for a in answers] == [200] * 8
    bodies = sent_bodies(fake, marker)
    assert len(bodies) == 8
    seen = Counter(
        nudge_id for body in bodies for nudge_id in ids if f"notice for {nudge_id}" in str(body)
    )
    assert seen == dict.fromkeys(ids, 1)
    counts = sum(int(a.headers.get("x-aip-nudge-count", "0")) for a in answers)
    assert counts == 3
    delivered = [i for e in await exchanges(redis, prefix, 8) for i in e.nudge_ids]
    assert sorted(delivered) == ids
    records = await nudge_records(redis, prefix, agent)
    events = {a.headers["x-smoltbot-event-id"] for a in answers}
    assert all(r.status == "delivered" and r.delivered_event_id in events for r in records.values())


async def test_observe_agents_keep_their_nudges_and_their_cache(
    fake: FakeUpstream, redis: Redis, prefix: str, tmp: Path
) -> None:
    key = "k-observe"
    agent = await set_config(redis, prefix, key, enforcement_mode="observe")
    await add_nudge(redis, prefix, agent, "kept", int(time.time() * 1000))
    app = create_app(gateway_settings(prefix, fake, tmp))
    async with serving(app) as client:
        for _ in range(3):
            answer = await client.post(
                PATHS["anthropic"],
                json=request_body("anthropic", "observe"),
                headers=key_headers("anthropic", key),
            )
            assert "x-aip-enforcement" not in answer.headers
    assert await pending_ids(redis, prefix, agent) == ["kept"]


async def test_calls_that_cannot_carry_nudges_never_spend_them(
    fake: FakeUpstream, redis: Redis, prefix: str, tmp: Path
) -> None:
    key = "k-carry"
    agent = await set_config(redis, prefix, key, enforcement_mode="nudge")
    await add_nudge(redis, prefix, agent, "n-carry", int(time.time() * 1000) - 1000)
    app = create_app(gateway_settings(prefix, fake, tmp))
    headers = key_headers("anthropic", key)
    async with serving(app) as client:
        listed = await client.get("/anthropic/v1/models", headers=headers)
        assert listed.status_code == 200
        assert await pending_ids(redis, prefix, agent) == ["n-carry"]  # never claimed
        # Claimed with the config, but the body is no JSON object: given back.
        broken = await client.post(
            PATHS["anthropic"], content=b"{not json", headers={**headers, "x-test-id": "broken"}
        )
        assert broken.status_code == 400  # the provider's answer
        assert raw_sent(fake, "broken") == b"{not json"  # forwarded untouched
        assert "x-aip-enforcement" not in broken.headers
        odd = await client.post(
            PATHS["anthropic"], json=request_body("anthropic", "odd", system=7), headers=headers
        )
        assert "x-aip-enforcement" not in odd.headers
        for _ in range(50):
            if await pending_ids(redis, prefix, agent) == ["n-carry"]:
                break
            await asyncio.sleep(0.02)
        assert await pending_ids(redis, prefix, agent) == ["n-carry"]
        carried = await client.post(
            PATHS["anthropic"], json=request_body("anthropic", "ok"), headers=headers
        )
        assert carried.headers["x-aip-nudge-count"] == "1"
    assert (await nudge_records(redis, prefix, agent))["n-carry"].status == "delivered"


async def test_a_paused_agent_is_refused_and_keeps_its_nudges(
    fake: FakeUpstream, redis: Redis, prefix: str, tmp: Path
) -> None:
    key = "k-paused"
    agent = await set_config(redis, prefix, key, enforcement_mode="nudge", containment="paused")
    await add_nudge(redis, prefix, agent, "n-paused", int(time.time() * 1000) - 1000)
    async with serving(create_app(gateway_settings(prefix, fake, tmp))) as client:
        answer = await client.post(
            PATHS["openai"], json=request_body("openai", "x"), headers=key_headers("openai", key)
        )
    assert answer.status_code == 403
    assert await pending_ids(redis, prefix, agent) == ["n-paused"]


async def test_a_hanging_redis_costs_a_nudge_call_one_timeout_then_nothing(prefix: str) -> None:
    async with SilentServer() as silent:
        hung = Redis(host="127.0.0.1", port=silent.port, socket_timeout=5)
        now = [100.0]
        reader = ConfigReader(hung, prefix, timeout_s=0.05, backoff_s=5.0, clock=lambda: now[0])
        try:
            started = time.perf_counter()
            claim = NudgeClaim("e1")
            config = await reader.get_for_call("smolt-hang", claim)
            first_s = time.perf_counter() - started
            assert config.enforcement_mode == "observe"
            assert claim.nudges == ()
            assert first_s < 0.5
            started = time.perf_counter()
            claim = NudgeClaim("e2")
            await reader.get_for_call("smolt-hang", claim)
            assert time.perf_counter() - started < 0.01  # the breaker skips Redis
            assert not claim.attempted
        finally:
            await hung.aclose()


async def test_a_nudge_agents_last_config_is_used_while_redis_is_down(
    redis: Redis, prefix: str
) -> None:
    await set_config(redis, prefix, "k-down", enforcement_mode="nudge")
    agent = agent_for("k-down")
    reader = ConfigReader(redis, prefix, timeout_s=0.5)
    assert (await reader.get_for_call(agent, NudgeClaim("e1"))).enforcement_mode == "nudge"
    async with SilentServer() as silent:
        hung = Redis(host="127.0.0.1", port=silent.port, socket_timeout=5)
        reader._redis = hung  # noqa: SLF001 - the same reader, its Redis gone quiet
        reader.nudges = NudgeStore(hung, prefix)
        reader._timeout_s = 0.05  # noqa: SLF001
        try:
            claim = NudgeClaim("e2")
            config = await reader.get_for_call(agent, claim)
            assert config.enforcement_mode == "nudge"  # the last known config
            assert claim.nudges == ()
        finally:
            await hung.aclose()


async def test_the_encoded_record_round_trips_through_lua(redis: Redis, prefix: str) -> None:
    """cjson re-encodes the record: msgspec must still read every field, unicode included."""
    agent = await set_config(redis, prefix, "k-unicode", enforcement_mode="nudge")
    text = 'Concern: "quoted" — ünïcödé / slash \\ back\nnewline'
    created = await add_nudge(redis, prefix, agent, "u1", NOW_MS - 5, text)
    claim = NudgeClaim("e")
    await NudgeStore(redis, prefix, clock=fixed_clock).read_and_claim(agent, claim, CFG_FIELD)
    (got,) = claim.nudges
    assert got == msgspec.structs.replace(
        created, status="delivered", delivered_ms=NOW_MS, delivered_event_id="e"
    )
