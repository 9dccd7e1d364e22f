"""The cfg:{agent} writer against real Redis: monotonic versions, compare-and-set, containment
applied once per cause, resume, write-through."""

from __future__ import annotations

import asyncio

import msgspec
from redis.asyncio import Redis
from smoltbot_agentstate import CFG_FIELD, AgentState, cause_field, decode_config, encode_config
from smoltbot_contracts import AgentConfig
from smoltbot_contracts.streams import cfg_key

AGENT = "smolt-0000aaaa"


async def stored(redis: Redis, prefix: str) -> AgentConfig:
    return decode_config(await redis.hget(cfg_key(prefix, AGENT), CFG_FIELD))  # type: ignore[misc]


async def test_contain_moves_the_version_forward_once_per_cause(redis: Redis, prefix: str) -> None:
    state = AgentState(redis, prefix)
    await redis.hset(  # type: ignore[misc]
        cfg_key(prefix, AGENT),
        CFG_FIELD,
        encode_config(AgentConfig(enforcement_mode="nudge", cfg_version=7, failure_policy=None)),
    )
    first = await state.contain(AGENT, "Auto-contained: 5", cause="ctl-1")
    assert first.outcome == "written"
    assert first.config.containment == "paused"
    assert first.config.cfg_version == 8
    assert await stored(redis, prefix) == first.config
    assert (await stored(redis, prefix)).enforcement_mode == "nudge"  # the rest is kept
    again = await state.contain(AGENT, "Auto-contained: 5", cause="ctl-1")
    assert again.outcome == "already_applied"
    assert (await stored(redis, prefix)).cfg_version == 8
    other = await state.contain(AGENT, "another streak", cause="ctl-2")
    assert other.outcome == "unchanged"  # already contained: remembered, nothing written
    assert (await stored(redis, prefix)).cfg_version == 8
    assert await state.applied(AGENT, "ctl-2")


async def test_a_resumed_agent_is_not_recontained_by_the_same_cause(
    redis: Redis, prefix: str
) -> None:
    state = AgentState(redis, prefix)
    assert (await state.contain(AGENT, "r", cause="ctl-1")).config.cfg_version == 1
    resumed = await state.resume(AGENT)
    assert resumed.outcome == "written"
    assert resumed.config.containment == "active"
    assert resumed.config.cfg_version == 2
    assert (await state.resume(AGENT)).outcome == "unchanged"
    replay = await state.contain(AGENT, "r", cause="ctl-1")
    assert replay.outcome == "already_applied"
    assert await stored(redis, prefix) == resumed.config
    fresh = await state.contain(AGENT, "r2", cause="ctl-9")
    assert fresh.outcome == "written"
    assert fresh.config.cfg_version == 3


async def test_missing_config_starts_from_the_defaults(redis: Redis, prefix: str) -> None:
    result = await AgentState(redis, prefix).contain(AGENT, "r", status="killed")
    assert result.config == AgentConfig(containment="killed", cfg_version=1)
    raw = await redis.hgetall(cfg_key(prefix, AGENT))  # type: ignore[misc]
    assert set(raw) == {CFG_FIELD}  # no cause given, none remembered


async def test_concurrent_writers_never_lose_an_update(redis: Redis, prefix: str) -> None:
    state = AgentState(redis, prefix, max_attempts=50)

    def bump(config: AgentConfig) -> AgentConfig:
        return msgspec.structs.replace(config, nudge_rate=config.nudge_rate - 1)

    await asyncio.gather(*(state.update(AGENT, bump) for _ in range(10)))
    final = await stored(redis, prefix)
    assert final.cfg_version == 10
    assert final.nudge_rate == 90


async def test_put_writes_only_newer_versions(redis: Redis, prefix: str) -> None:
    state = AgentState(redis, prefix)
    assert (await state.put(AGENT, AgentConfig(cfg_version=3))).outcome == "written"
    stale = await state.put(AGENT, AgentConfig(enforcement_mode="enforce", cfg_version=3))
    assert stale.outcome == "stale"
    assert stale.config == AgentConfig(cfg_version=3)
    newer = await state.put(AGENT, AgentConfig(enforcement_mode="enforce", cfg_version=4))
    assert newer.written
    assert await stored(redis, prefix) == AgentConfig(enforcement_mode="enforce", cfg_version=4)


async def test_cause_fields_do_not_disturb_readers(redis: Redis, prefix: str) -> None:
    state = AgentState(redis, prefix)
    await state.contain(AGENT, "why", cause="ctl-1")
    assert await redis.hget(cfg_key(prefix, AGENT), cause_field("ctl-1")) == b"why"  # type: ignore[misc]
    assert (await state.read(AGENT)).containment == "paused"
