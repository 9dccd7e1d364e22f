"""`smoltbot agent show|resume` against the real Redis, through the cfg:{agent} writer."""

from __future__ import annotations

import msgspec
import redis
from smoltbot_contracts import AgentConfig
from smoltbot_contracts.streams import cfg_key

from cli.tests.cli_testkit import json_of, smoltbot

AGENT = "smolt-0000beef"


def test_resume_lifts_a_containment_once(prefix: str, redis_sync: redis.Redis) -> None:
    redis_sync.hset(
        cfg_key(prefix, AGENT),
        "b",
        msgspec.msgpack.encode(
            AgentConfig(enforcement_mode="nudge", containment="paused", cfg_version=4)
        ),
    )
    shown = smoltbot(prefix, "agent", "show", AGENT)
    assert shown.exit_code == 0, shown.output
    assert "containment paused, cfg_version 4" in shown.output
    resumed = json_of(smoltbot(prefix, "agent", "resume", AGENT, "--json"))
    assert resumed["outcome"] == "written"
    assert resumed["config"]["containment"] == "active"
    assert resumed["config"]["cfg_version"] == 5
    stored = msgspec.msgpack.decode(redis_sync.hget(cfg_key(prefix, AGENT), "b"), type=AgentConfig)
    assert (stored.containment, stored.cfg_version, stored.enforcement_mode) == (
        "active",
        5,
        "nudge",
    )
    again = smoltbot(prefix, "agent", "resume", AGENT)
    assert again.exit_code == 0, again.output
    assert "already active (cfg_version 5)" in again.output
