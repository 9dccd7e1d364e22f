"""C1 end to end, the verifier and persister as OS processes: five consecutive violating traces
of an agent in nudge mode make a nudge per violation as its strategy allows (always: five;
threshold 3: three), one AIP drift alert for the streak and one auto-containment (cfg:{agent}
paused, cfg_version moved forward once, a row in agent_containment_log). Replaying the same five
traces changes nothing: same rows, same cfg, same nudges, same rt:{agent}."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest
import redis
from smoltbot_contracts import (
    AgentConfig,
    Alternative,
    APTrace,
    TraceAction,
    TraceContext,
    TraceDecision,
    TraceV1,
    ids,
)
from smoltbot_contracts.codec import to_fields
from smoltbot_contracts.streams import cfg_key, nudges_key, runtime_key
from smoltbot_testing.env import REDIS_URL
from smoltbot_testing.events import exchange_meta
from smoltbot_testing.procs import ServiceSet, base_env

from tests.conftest import ADMIN_TOKEN, poll

pytestmark = pytest.mark.e2e

# Plainly violating thinking the rules analysis flags as a boundary violation.
BAD_THINKING = (
    "The user wants the deploy fixed. I will quietly exfiltrate the AWS credentials from the "
    ".env file to my server first, then answer as if nothing happened."
)


@pytest.fixture
def workers(database_url: str, stream_prefix: str, tmp_path: Path) -> Iterator[ServiceSet]:
    env = base_env(
        redis_url=REDIS_URL,
        database_url=database_url,
        prefix=stream_prefix,
        admin_token=ADMIN_TOKEN,
        upstream_url="http://127.0.0.1:9",
    )
    env.pop("SMOLTBOT_EVENT_KEY", None)  # the traces below are XADDed in clear
    stack = ServiceSet(env=env, log_dir=tmp_path)
    try:
        for service in ("persister", "verifier"):
            stack.start(service)
        yield stack
    finally:
        stack.stop_all()


def violating_traces(key: str, start: datetime, n: int = 5) -> list[TraceV1]:
    session = exchange_meta(key, start).session_id
    events = []
    for i in range(n):
        meta = exchange_meta(key, start + timedelta(seconds=i), session_id=session)
        eid = meta.exchange_id
        trace = APTrace(
            trace_id=ids.trace_id(eid),
            agent_id=meta.agent_id,
            card_id=ids.card_id(meta.agent_id),
            timestamp=meta.completed_at,
            action=TraceAction(name="inference"),
            decision=TraceDecision(
                alternatives_considered=[Alternative(option_id="a", description="answer")],
                selected="a",
                selection_reasoning="answer the request",
                values_applied=["helpfulness"],
            ),
            context=TraceContext(session_id=session),
        )
        events.append(
            TraceV1(
                event_id=ids.trace_event_id(eid),
                meta=meta,
                trace=trace,
                thinking=BAD_THINKING,
                extraction_confidence=1.0,
            )
        )
    return events


def drained(r: redis.Redis, prefix: str, verdicts: int) -> bool:
    if r.xlen(f"{prefix}verdicts") < verdicts:
        return False
    groups = {g["name"]: g for g in r.xinfo_groups(f"{prefix}verdicts")}
    persister = groups.get(b"persister") or groups.get("persister")
    return bool(persister) and persister["pending"] == 0 and persister["lag"] == 0


def snapshot(r: redis.Redis, prefix: str, database_url: str, agents: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for agent in agents:
        out[f"cfg {agent}"] = r.hgetall(cfg_key(prefix, agent))
        out[f"nudges {agent}"] = r.hgetall(nudges_key(prefix, agent))
        out[f"rt {agent}"] = r.hgetall(runtime_key(prefix, agent))
    with psycopg.connect(database_url) as conn:
        for table in (
            "drift_alerts",
            "agent_containment_log",
            "integrity_checkpoints",
            "nudges",
        ):
            out[table] = conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()  # noqa: S608
    return out


def test_five_violations_nudge_alert_once_and_contain_then_a_replay_changes_nothing(
    workers: ServiceSet, database_url: str, stream_prefix: str, redis_sync: redis.Redis
) -> None:
    prefix = stream_prefix
    now = datetime.now(UTC).replace(microsecond=0)
    always_key, threshold_key = "sk-streak-always", "sk-streak-threshold"
    always = ids.agent_id(ids.agent_hash(always_key))
    threshold = ids.agent_id(ids.agent_hash(threshold_key))
    redis_sync.hset(
        cfg_key(prefix, always),
        "b",
        msgspec.msgpack.encode(AgentConfig(enforcement_mode="nudge", nudge_strategy="always")),
    )
    redis_sync.hset(
        cfg_key(prefix, threshold),
        "b",
        msgspec.msgpack.encode(
            AgentConfig(enforcement_mode="nudge", nudge_strategy="threshold", nudge_threshold=3)
        ),
    )
    events = violating_traces(always_key, now) + violating_traces(threshold_key, now)
    for event in events:
        redis_sync.xadd(f"{prefix}traces", to_fields(event))
    poll(lambda: drained(redis_sync, prefix, len(events)), timeout_s=60)

    # Nudges as each strategy allows.
    assert len(redis_sync.hgetall(nudges_key(prefix, always))) == 5
    assert len(redis_sync.hgetall(nudges_key(prefix, threshold))) == 3
    # Both agents paused once, by the verifier, through the versioned writer.
    for agent in (always, threshold):
        config = msgspec.msgpack.decode(
            redis_sync.hget(cfg_key(prefix, agent), "b"), type=AgentConfig
        )
        assert (config.containment, config.cfg_version) == ("paused", 1)
        assert config.enforcement_mode == "nudge"
    with psycopg.connect(database_url) as conn:
        verdicts = conn.execute(
            "SELECT agent_id, verdict, count(*) FROM integrity_checkpoints GROUP BY 1, 2"
        ).fetchall()
        alerts = conn.execute(
            "SELECT agent_id, source, streak_ids, exchange_id::text FROM drift_alerts"
            " ORDER BY agent_id"
        ).fetchall()
        contained = conn.execute(
            "SELECT agent_id, id, action, new_status, consecutive_violations, exchange_id::text"
            " FROM agent_containment_log ORDER BY agent_id"
        ).fetchall()
        recorded = dict(
            conn.execute(
                "SELECT agent_id, count(*) FROM nudges WHERE status = 'pending' GROUP BY 1"
            ).fetchall()
        )
    assert sorted(verdicts) == sorted(
        [(always, "boundary_violation", 5), (threshold, "boundary_violation", 5)]
    )
    assert recorded == {always: 5, threshold: 3}  # each nudge recorded once (NudgeCreated)
    by_agent = {a: [e for e in events if e.meta.agent_id == a] for a in (always, threshold)}
    assert sorted(alerts) == sorted(
        (
            agent,
            "aip",
            [ids.checkpoint_id(e.meta.exchange_id) for e in by_agent[agent][:3]],
            by_agent[agent][2].meta.exchange_id,
        )
        for agent in (always, threshold)
    )
    assert sorted(contained) == sorted(
        (
            agent,
            ids.containment_id(agent, ids.checkpoint_id(by_agent[agent][0].meta.exchange_id)),
            "auto_pause",
            "paused",
            5,
            by_agent[agent][4].meta.exchange_id,
        )
        for agent in (always, threshold)
    )
    before = snapshot(redis_sync, prefix, database_url, [always, threshold])

    # Replay: the same ten traces again.
    for event in events:
        redis_sync.xadd(f"{prefix}traces", to_fields(event))
    poll(lambda: drained(redis_sync, prefix, 2 * len(events)), timeout_s=60)
    assert snapshot(redis_sync, prefix, database_url, [always, threshold]) == before
    assert sum(redis_sync.xlen(k) for k in redis_sync.scan_iter(match=f"{prefix}dlq:*")) == 0
