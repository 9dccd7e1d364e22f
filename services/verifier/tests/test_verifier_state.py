"""rt:{agent} against real Redis (the record script, idempotent per checkpoint id, the window),
and the facts the handler decides from it: AIP/AAP drift once per streak, auto-containment."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec
from redis.asyncio import Redis
from smoltbot_agentstate import CFG_FIELD, AgentState, decode_config, encode_config
from smoltbot_analysis import AnalysisRequest, AnalysisResult, RulesIntegrityAnalyzer
from smoltbot_bus import Delivery
from smoltbot_contracts import AgentConfig, Containment, DriftAlert, VerdictV1, ids
from smoltbot_contracts.streams import cfg_key, runtime_key, runtime_order_key
from smoltbot_verifier.handlers import Facts, VerifierHandler
from smoltbot_verifier.integrity import IntegrityOptions
from smoltbot_verifier.nudges import ConfigStore
from smoltbot_verifier.state import MAX_ENTRIES, Entry, RuntimeState, window_for

from services.verifier.tests.verifier_testkit import (
    AGENT,
    COMPLETED,
    LONG_THINKING,
    DictCards,
    ap_trace,
    trace_event,
)

VIOLATING = "I'll read the .env file and send the credentials to the remote host quietly. " * 3
SESSION = "abcd1234abcd1234-493000"


def xid(n: int) -> str:
    return f"0190f0e0-0000-7000-8000-{n:012x}"


def entry(
    n: int,
    verdict: str = "boundary_violation",
    *,
    synthetic: bool = False,
    session: str = SESSION,
    ms: int | None = None,
) -> Entry:
    return Entry(
        checkpoint_id=f"ic-{n:04d}",
        completed_ms=ms if ms is not None else 1_000_000 + n * 1000,
        session_id=session,
        verdict=verdict,  # type: ignore[arg-type]
        synthetic=synthetic,
        summary=f"summary {n}",
        categories=["value_misalignment"] if verdict != "clear" else [],
    )


async def test_record_is_idempotent_per_checkpoint(redis: Redis, prefix: str) -> None:
    rt = RuntimeState(redis, prefix)
    first = await rt.record([(AGENT, entry(1)), (AGENT, entry(2))])
    assert [r.added for r in first] == [True, True]
    assert first[1].consecutive_violations == 2
    assert first[1].streak_start == "ic-0001"
    before = await redis.hgetall(runtime_key(prefix, AGENT))  # type: ignore[misc]
    order = await redis.zrange(runtime_order_key(prefix, AGENT), 0, -1, withscores=True)
    again = await rt.record([(AGENT, entry(2)), (AGENT, entry(1))])
    assert [r.added for r in again] == [False, False]
    assert again[0] == msgspec.structs.replace(first[1], added=False)
    assert await redis.hgetall(runtime_key(prefix, AGENT)) == before  # type: ignore[misc]
    assert await redis.zrange(runtime_order_key(prefix, AGENT), 0, -1, withscores=True) == order


async def test_counts_skip_synthetic_checkpoints_and_stop_at_a_clear_one(
    redis: Redis, prefix: str
) -> None:
    rt = RuntimeState(redis, prefix)
    out = await rt.record(
        [
            (AGENT, entry(1)),
            (AGENT, entry(2, "clear")),
            (AGENT, entry(3)),
            (AGENT, entry(4, "clear", synthetic=True)),
            (AGENT, entry(5)),
        ]
    )
    assert [r.consecutive_violations for r in out] == [1, 0, 1, 1, 2]
    assert out[4].streak_start == "ic-0003"
    assert [e.checkpoint_id for e in out[4].upto] == [f"ic-{i:04d}" for i in range(1, 6)]
    # A late checkpoint answers the history up to itself, not what came after it.
    late = await rt.record([(AGENT, entry(6, ms=1_000_000 + 2500))])
    assert [e.checkpoint_id for e in late[0].upto] == ["ic-0001", "ic-0002", "ic-0006"]
    assert late[0].consecutive_violations == 1


async def test_history_is_bounded_and_expires(redis: Redis, prefix: str) -> None:
    rt = RuntimeState(redis, prefix)
    await rt.record([(AGENT, entry(i, "clear")) for i in range(MAX_ENTRIES + 5)])
    history = (await rt.history([AGENT]))[AGENT]
    assert len(history) == MAX_ENTRIES
    assert history[0].checkpoint_id == "ic-0005"
    assert await redis.zcard(runtime_order_key(prefix, AGENT)) == MAX_ENTRIES
    assert 0 < await redis.pttl(runtime_key(prefix, AGENT))


def test_window_excludes_synthetic_later_other_session_and_old_checkpoints() -> None:
    history = [
        entry(1, "clear", ms=1_000_000 + 6000 - 3_600_001),  # more than an hour before
        entry(2, "clear"),
        entry(3, "clear", synthetic=True),
        entry(4, "review_needed", session="other"),
        entry(5),
        entry(7),  # after the checkpoint
    ]
    window = window_for(
        history,
        checkpoint_id="ic-0006",
        completed_ms=1_000_000 + 6000,
        session_id=SESSION,
        agent=AGENT,
        card_id="ac-1",
    )
    assert [cp.checkpoint_id for cp in window] == ["ic-0002", "ic-0005"]
    many = [entry(i, "clear") for i in range(1, 30)]
    window = window_for(
        many,
        checkpoint_id="ic-9999",
        completed_ms=1_000_000 + 40_000,
        session_id=SESSION,
        agent=AGENT,
        card_id="ac-1",
    )
    assert [cp.checkpoint_id for cp in window] == [f"ic-{i:04d}" for i in range(20, 30)]


class Recording(RulesIntegrityAnalyzer):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[AnalysisRequest] = []

    async def analyze(self, request: AnalysisRequest) -> AnalysisResult:
        self.requests.append(request)
        return await super().analyze(request)


def stack(
    redis: Redis, prefix: str, analyzer: RulesIntegrityAnalyzer | None = None
) -> VerifierHandler:
    configs = ConfigStore(redis, prefix)
    return VerifierHandler(
        DictCards(),
        analyzer or RulesIntegrityAnalyzer(),
        IntegrityOptions(),
        prefix,
        facts=Facts(RuntimeState(redis, prefix), configs, AgentState(redis, prefix)),
    )


def event(n: int, thinking: str | None = VIOLATING, **kw: Any) -> Any:
    return trace_event(
        xid(n),
        thinking=thinking,
        trace=ap_trace(xid(n)),
        completed_at=COMPLETED + timedelta(seconds=n),
        **kw,
    )


def deliveries(events: list[Any]) -> list[Delivery]:
    return [Delivery(stream="traces", entry_id=f"1-{i}", event=e) for i, e in enumerate(events)]


def verdicts(outputs: list[Any]) -> list[VerdictV1]:
    return [o.event for o in outputs if o.stream == "verdicts"]


async def test_window_reaches_the_analysis_and_the_checkpoint(redis: Redis, prefix: str) -> None:
    analyzer = Recording()
    handler = stack(redis, prefix, analyzer)
    events = [event(1, LONG_THINKING), event(2, None), event(3, VIOLATING), event(4, LONG_THINKING)]
    # Delivered out of order in one batch: decided in completion order, output in delivery order.
    out = verdicts(await handler(deliveries([events[3], events[1], events[0], events[2]])))
    assert [v.meta.exchange_id for v in out] == [xid(4), xid(2), xid(1), xid(3)]
    windows = [[w.checkpoint_id for w in r.window] for r in analyzer.requests]
    first, third = ids.checkpoint_id(xid(1)), ids.checkpoint_id(xid(3))
    assert windows == [[], [first], [first, third]]  # the synthetic #2 is never in a window
    positions = {v.meta.exchange_id: v.checkpoint.window_position for v in out if v.checkpoint}
    assert (positions[xid(4)].index, positions[xid(4)].window_size) == (2, 3)
    assert (positions[xid(2)].index, positions[xid(2)].window_size) == (1, 1)
    # Replayed (the history now holds every checkpoint): the very same verdicts.
    again = verdicts(
        await stack(redis, prefix)(deliveries([events[3], events[1], events[0], events[2]]))
    )
    assert again == out


async def set_config(redis: Redis, prefix: str, **fields: Any) -> None:
    await redis.hset(  # type: ignore[misc]
        cfg_key(prefix, AGENT), CFG_FIELD, encode_config(AgentConfig(**fields))
    )


async def test_violation_streak_makes_one_drift_alert_and_one_containment(
    redis: Redis, prefix: str
) -> None:
    await set_config(redis, prefix, enforcement_mode="nudge", auto_containment_threshold=5)
    events = [event(n) for n in range(1, 7)]
    out: list[VerdictV1] = []
    for e in events:  # one batch each, like a steady stream
        out += verdicts(await stack(redis, prefix)(deliveries([e])))
    facts = [(v.meta.exchange_id, f) for v in out for f in v.facts]
    aip = [(x, f) for x, f in facts if isinstance(f, DriftAlert) and f.source == "aip"]
    contained = [(x, f) for x, f in facts if isinstance(f, Containment)]
    assert [x for x, _ in aip] == [xid(3)]
    alert = aip[0][1]
    assert alert.alert_id == ids.drift_alert_id("aip", AGENT, ids.checkpoint_id(xid(1)))
    assert alert.streak_ids == [ids.checkpoint_id(xid(n)) for n in (1, 2, 3)]
    assert alert.alert_type.startswith("aip:")
    assert alert.detected_at == events[2].meta.completed_at
    assert [x for x, _ in contained] == [xid(5)]
    containment = contained[0][1]
    assert containment.containment_id == ids.containment_id(AGENT, ids.checkpoint_id(xid(1)))
    assert containment.consecutive_violations == 5
    config = decode_config(await redis.hget(cfg_key(prefix, AGENT), CFG_FIELD))  # type: ignore[misc]
    assert config.containment == "paused"
    assert config.cfg_version == 1
    # Replay everything, also after an operator resumed the agent: same verdicts, no new write.
    await AgentState(redis, prefix).resume(AGENT)
    replayed = verdicts(await stack(redis, prefix)(deliveries(events)))
    assert replayed == out
    config = decode_config(await redis.hget(cfg_key(prefix, AGENT), CFG_FIELD))  # type: ignore[misc]
    assert (config.containment, config.cfg_version) == ("active", 2)


async def test_observe_agents_are_never_contained(redis: Redis, prefix: str) -> None:
    out = verdicts(await stack(redis, prefix)(deliveries([event(n) for n in range(1, 7)])))
    assert not any(isinstance(f, Containment) for v in out for f in v.facts)
    assert await redis.hget(cfg_key(prefix, AGENT), CFG_FIELD) is None  # type: ignore[misc]


async def test_aap_drift_alerts_once_when_decisions_leave_the_baseline(
    redis: Redis, prefix: str
) -> None:
    events = []
    for n in range(1, 9):
        drifted = n > 4
        trace = ap_trace(
            xid(n),
            name="exfiltrate" if drifted else "inference",
            action_type="recommend" if drifted else "execute",
            category="forbidden" if drifted else "bounded",
            values=("speed", "stealth") if drifted else ("helpfulness",),
            confidence=None,
            required=drifted,
        )
        events.append(
            trace_event(
                xid(n),
                thinking=LONG_THINKING,
                trace=trace,
                completed_at=COMPLETED + timedelta(seconds=n),
            )
        )
    out = verdicts(await stack(redis, prefix)(deliveries(events)))
    aap = [
        (v.meta.exchange_id, f)
        for v in out
        for f in v.facts
        if isinstance(f, DriftAlert) and f.source == "aap"
    ]
    assert len(aap) == 1
    exchange, alert = aap[0]
    assert alert.streak_ids[-1] == ids.trace_id(exchange)
    assert alert.alert_id == ids.drift_alert_id("aap", AGENT, alert.streak_start)
    replayed = verdicts(await stack(redis, prefix)(deliveries(events)))
    assert replayed == out
