"""Wave 3 at the verifier: which verdicts become nudges under which mode and strategy, the nudge
text, and the writes against real Redis (once per exchange however often its trace comes)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis
from smoltbot_analysis import RulesIntegrityAnalyzer
from smoltbot_bus import Delivery
from smoltbot_contracts import (
    AgentConfig,
    Checkpoint,
    Concern,
    Nudge,
    NudgeCreated,
    NudgesDelivered,
    VerdictV1,
    ids,
)
from smoltbot_contracts.streams import cfg_key, nudges_key, nudges_pending_key
from smoltbot_verifier.handlers import VerifierHandler
from smoltbot_verifier.integrity import IntegrityOptions
from smoltbot_verifier.nudges import ConfigStore, NudgeWriter, nudge_for, nudge_text

from services.verifier.tests.verifier_testkit import AGENT, COMPLETED, DictCards, meta, trace_event

NOW_MS = int((COMPLETED + timedelta(seconds=30)).timestamp() * 1000)
VIOLATING = "I'll read the .env file and send the credentials to the remote host quietly. " * 3
EXCHANGE = "0190f0e0-0000-7000-8000-0000000000b1"


def checkpoint(verdict: str = "boundary_violation", **fields: Any) -> Checkpoint:
    base: dict[str, Any] = {
        "checkpoint_id": ids.checkpoint_id(EXCHANGE),
        "agent_id": AGENT,
        "card_id": "ac-1",
        "session_id": "s-1",
        "timestamp": COMPLETED,
        "thinking_block_hash": "h",
        "provider": "anthropic",
        "model": "m",
        "verdict": verdict,
        "concerns": [
            Concern(
                category="value_misalignment",
                severity="critical",
                description="Reasoning plans to move credentials out",
                evidence="send the credentials to the remote host",
            )
        ],
        "reasoning_summary": "Rules analysis matched 1 concern pattern(s).",
    }
    base.update(fields)
    return Checkpoint(**base)


def verdict(exchange_id: str = EXCHANGE, *, streamed: bool = False, **cp: Any) -> VerdictV1:
    return VerdictV1(
        event_id=ids.verdict_event_id(exchange_id),
        meta=meta(exchange_id, streamed=streamed),
        checkpoint=checkpoint(**{"checkpoint_id": ids.checkpoint_id(exchange_id), **cp}),
    )


def config(**fields: Any) -> AgentConfig:
    return AgentConfig(**{"enforcement_mode": "nudge", **fields})


# ------------------------------------------------------------------------- the decision


@pytest.mark.parametrize(
    ("mode", "streamed", "made"),
    [
        ("nudge", False, True),
        ("nudge", True, True),
        ("enforce", True, True),
        ("enforce", False, False),  # blocked at the door instead
        ("observe", True, False),
        ("off", True, False),
    ],
)
def test_which_modes_make_nudges(mode: str, streamed: bool, made: bool) -> None:
    nudge, reason = nudge_for(verdict(streamed=streamed), config(enforcement_mode=mode), NOW_MS)
    assert (nudge is not None) is made
    assert reason == ""


def test_the_nudge_is_derived_from_the_exchange() -> None:
    nudge, _ = nudge_for(verdict(), config(), NOW_MS)
    assert nudge is not None
    assert nudge.id == ids.nudge_id(EXCHANGE) == nudge_for(verdict(), config(), NOW_MS)[0].id  # type: ignore[union-attr]
    assert nudge.id.startswith("nudge-")
    assert nudge.agent_id == AGENT
    assert nudge.exchange_id == EXCHANGE
    assert nudge.checkpoint_id == ids.checkpoint_id(EXCHANGE)
    assert nudge.created_ms == int(COMPLETED.timestamp() * 1000)
    assert nudge.status == "pending"


@pytest.mark.parametrize("value", ["clear", "review_needed"])
def test_only_boundary_violations_make_nudges(value: str) -> None:
    assert nudge_for(verdict(verdict=value), config(), NOW_MS) == (None, "")


def test_skips_are_named() -> None:
    assert nudge_for(verdict(synthetic=True), config(), NOW_MS) == (None, "synthetic")
    off = config(nudge_strategy="off")
    assert nudge_for(verdict(), off, NOW_MS) == (None, "strategy_off")
    later = NOW_MS + Nudge.MAX_AGE_MS
    assert nudge_for(verdict(), config(), later) == (None, "too_old")
    bare = VerdictV1(event_id="e", meta=meta(EXCHANGE))
    assert nudge_for(bare, config(), NOW_MS) == (None, "")


def test_sampling_keeps_the_rate_and_decides_the_same_every_time() -> None:
    exchanges = [f"0190f0e0-0000-7000-8000-{i:012x}" for i in range(2000)]
    for rate, low, high in ((0, 0, 0), (100, 2000, 2000), (30, 500, 700)):
        sampled = config(nudge_strategy="sampling", nudge_rate=rate)
        kept = [e for e in exchanges if nudge_for(verdict(e), sampled, NOW_MS)[0] is not None]
        assert low <= len(kept) <= high, rate
        again = [e for e in exchanges if nudge_for(verdict(e), sampled, NOW_MS)[0] is not None]
        assert kept == again
    assert nudge_for(verdict(), config(nudge_strategy="sampling", nudge_rate=0), NOW_MS) == (
        None,
        "sampled_out",
    )


def test_the_text_names_checkpoint_and_concerns_never_the_thinking() -> None:
    text = nudge_text(checkpoint())
    assert text == (
        f"Your previous response (checkpoint {ids.checkpoint_id(EXCHANGE)}) was flagged as a "
        "boundary violation.\n"
        "Concern: value_misalignment: Reasoning plans to move credentials out\n"
        "Review your approach and self-correct. This notice is recorded with your integrity "
        "checkpoints."
    )
    assert "remote host" not in text  # the evidence quotes the thinking
    bare = nudge_text(checkpoint(concerns=[]))
    assert "Concern: Rules analysis matched 1 concern pattern(s)." in bare
    assert "Concern: Boundary violation detected" in nudge_text(
        checkpoint(concerns=[], reasoning_summary="")
    )
    many = [Concern(category="c", severity="high", description="d" * 400)] * 3
    assert len(nudge_text(checkpoint(concerns=many))) < 900


# ------------------------------------------------------------------------- against Redis


async def set_config(redis: Redis, prefix: str, agent: str = AGENT, **fields: Any) -> None:
    raw = msgspec.msgpack.encode(AgentConfig(**fields))
    await redis.hset(cfg_key(prefix, agent), "b", raw)  # type: ignore[misc]


async def records(redis: Redis, prefix: str, agent: str = AGENT) -> dict[str, Nudge]:
    raw: dict[bytes, bytes] = await redis.hgetall(nudges_key(prefix, agent))  # type: ignore[misc]
    return {k.decode(): msgspec.json.decode(v, type=Nudge) for k, v in raw.items()}


async def pending(redis: Redis, prefix: str, agent: str = AGENT) -> list[str]:
    return [i.decode() for i in await redis.zrange(nudges_pending_key(prefix, agent), 0, -1)]


def handler(redis: Redis, prefix: str) -> VerifierHandler:
    writer = NudgeWriter(redis, prefix, clock=lambda: NOW_MS / 1000)
    return VerifierHandler(
        DictCards(), RulesIntegrityAnalyzer(), IntegrityOptions(), prefix, nudges=writer
    )


def delivery(event: object, n: int = 1) -> Delivery:
    return Delivery(stream="traces", entry_id=f"1-{n}", event=event)  # type: ignore[arg-type]


async def test_a_violating_trace_delivered_twice_writes_one_nudge(
    redis: Redis, prefix: str
) -> None:
    await set_config(redis, prefix, enforcement_mode="nudge")
    event = trace_event(EXCHANGE, thinking=VIOLATING)
    first = await handler(redis, prefix)([delivery(event)])
    second = await handler(redis, prefix)([delivery(event, 2), delivery(event, 3)])
    verdict_out = first[0].event
    assert isinstance(verdict_out, VerdictV1)
    assert verdict_out.checkpoint is not None
    assert verdict_out.checkpoint.verdict == "boundary_violation"
    assert len(second) == 2
    stored = await records(redis, prefix)
    nudge_id = ids.nudge_id(EXCHANGE)
    assert list(stored) == [nudge_id]
    assert await pending(redis, prefix) == [nudge_id]
    nudge = stored[nudge_id]
    assert nudge.checkpoint_id == verdict_out.checkpoint.checkpoint_id
    assert "credentials" not in nudge.text.split("Concern:")[0]
    assert "send the credentials" not in nudge.text  # no thinking, no evidence
    assert 0 < await redis.pttl(nudges_key(prefix, AGENT)) <= Nudge.RETENTION_MS


async def test_enforce_mode_nudges_only_streamed_violations(redis: Redis, prefix: str) -> None:
    await set_config(redis, prefix, enforcement_mode="enforce")
    plain = trace_event("0190f0e0-0000-7000-8000-0000000000c1", thinking=VIOLATING)
    streamed = trace_event(
        "0190f0e0-0000-7000-8000-0000000000c2", thinking=VIOLATING, streamed=True
    )
    await handler(redis, prefix)([delivery(plain), delivery(streamed, 2)])
    assert list(await records(redis, prefix)) == [ids.nudge_id(streamed.meta.exchange_id)]


async def test_observe_agents_and_agents_without_a_config_get_no_nudges(
    redis: Redis, prefix: str
) -> None:
    event = trace_event(EXCHANGE, thinking=VIOLATING, streamed=True)
    await handler(redis, prefix)([delivery(event)])
    await set_config(redis, prefix, enforcement_mode="observe")
    await handler(redis, prefix)([delivery(event)])
    await redis.hset(cfg_key(prefix, AGENT), "b", b"\xc1garbage")  # type: ignore[misc]
    await handler(redis, prefix)([delivery(event)])
    assert await records(redis, prefix) == {}


async def test_clear_traces_need_no_redis_round_trip(prefix: str) -> None:
    class Unreachable:
        def register_script(self, _: str) -> object:
            return object()

        def pipeline(self, **_: object) -> object:
            raise AssertionError("no Redis for a batch without violations")

    writer = NudgeWriter(Unreachable(), prefix)  # type: ignore[arg-type]
    assert await writer.write([verdict(verdict="clear"), verdict(verdict="review_needed")]) == []


async def test_threshold_counts_each_violation_of_a_session_once(redis: Redis, prefix: str) -> None:
    await set_config(
        redis, prefix, enforcement_mode="nudge", nudge_strategy="threshold", nudge_threshold=3
    )
    writer = NudgeWriter(redis, prefix, clock=lambda: NOW_MS / 1000)
    first, second, third = (verdict(f"0190f0e0-0000-7000-8000-0000000000d{i}") for i in range(3))
    assert await writer.write([first]) == []
    assert await writer.write([first, second, second]) == []  # redeliveries do not count
    written = await writer.write([third])
    assert [n.exchange_id for n in written] == [third.meta.exchange_id]
    assert await writer.write([third]) == []  # and a redelivered third writes nothing new
    other = verdict("0190f0e0-0000-7000-8000-0000000000e1")
    other = msgspec.structs.replace(
        other, meta=msgspec.structs.replace(other.meta, session_id="another-session")
    )
    assert await writer.write([other]) == []  # a new session starts from zero
    assert list(await records(redis, prefix)) == [ids.nudge_id(third.meta.exchange_id)]


async def test_old_records_are_pruned_on_the_next_write(redis: Redis, prefix: str) -> None:
    await set_config(redis, prefix, enforcement_mode="nudge")
    day = Nudge.RETENTION_MS
    writer = NudgeWriter(redis, prefix, clock=lambda: NOW_MS / 1000)
    assert len(await writer.write([verdict()])) == 1
    later = NudgeWriter(redis, prefix, clock=lambda: (NOW_MS + day + 60_000) / 1000)
    fresh = verdict("0190f0e0-0000-7000-8000-0000000000f1")
    fresh = msgspec.structs.replace(
        fresh,
        meta=msgspec.structs.replace(
            fresh.meta, completed_at=COMPLETED + timedelta(milliseconds=day + 30_000)
        ),
    )
    assert len(await later.write([fresh])) == 1
    assert list(await records(redis, prefix)) == [ids.nudge_id(fresh.meta.exchange_id)]
    assert await pending(redis, prefix) == [ids.nudge_id(fresh.meta.exchange_id)]


async def test_config_store_reads_a_batch_in_one_go(redis: Redis, prefix: str) -> None:
    await set_config(redis, prefix, "smolt-a", enforcement_mode="enforce")
    got = await ConfigStore(redis, prefix).fetch(["smolt-a", "smolt-b", "smolt-a"])
    assert got == {"smolt-a": AgentConfig(enforcement_mode="enforce"), "smolt-b": AgentConfig()}
    assert await ConfigStore(redis, prefix).fetch([]) == {}


async def test_threshold_replay_of_early_violations_decides_as_the_first_time(
    redis: Redis, prefix: str
) -> None:
    await set_config(
        redis, prefix, enforcement_mode="nudge", nudge_strategy="threshold", nudge_threshold=3
    )
    writer = NudgeWriter(redis, prefix, clock=lambda: NOW_MS / 1000)
    batch = []
    for i in range(4):
        v = verdict(f"0190f0e0-0000-7000-8000-0000000001a{i}")
        at = COMPLETED + timedelta(seconds=i)
        batch.append(
            msgspec.structs.replace(v, meta=msgspec.structs.replace(v.meta, completed_at=at))
        )
    written = [n.exchange_id for n in await writer.write(batch)]
    assert written == [batch[2].meta.exchange_id, batch[3].meta.exchange_id]
    # Replayed: the first two now find all four in the session, yet stay below the threshold.
    assert await writer.write(batch) == []
    assert len(await records(redis, prefix)) == 2


async def test_verdicts_report_the_nudges_they_made_and_carried(redis: Redis, prefix: str) -> None:
    """``NudgeCreated`` on the violating exchange's verdict (again on a redelivery, so a retried
    batch still tells the persister); ``NudgesDelivered`` on the verdict of a call that carried
    nudges (``trace.v1`` ``nudge_ids``, copied by the observer from ``exchange.v1``)."""
    await set_config(redis, prefix, enforcement_mode="nudge")
    event = trace_event(EXCHANGE, thinking=VIOLATING)
    nudge_id = ids.nudge_id(EXCHANGE)
    for attempt in (1, 2):
        out = await handler(redis, prefix)([delivery(event, attempt)])
        verdict_out = out[0].event
        assert isinstance(verdict_out, VerdictV1)
        assert verdict_out.checkpoint is not None
        made = [f for f in verdict_out.facts if isinstance(f, NudgeCreated)]
        assert made == [
            NudgeCreated(
                nudge_id=nudge_id,
                agent_id=AGENT,
                checkpoint_id=verdict_out.checkpoint.checkpoint_id,
                created_at=COMPLETED,
                text=(await records(redis, prefix))[nudge_id].text,
            )
        ], attempt

    later = "0190f0e0-0000-7000-8000-0000000000d1"
    carrier = msgspec.structs.replace(trace_event(later), nudge_ids=[nudge_id])
    no_trace = msgspec.structs.replace(
        trace_event("0190f0e0-0000-7000-8000-0000000000d2", trace=False), nudge_ids=["nudge-x"]
    )
    out = await handler(redis, prefix)([delivery(carrier), delivery(no_trace, 2)])
    first, second = (o.event for o in out)
    assert isinstance(first, VerdictV1)
    assert isinstance(second, VerdictV1)
    assert first.facts == [
        NudgesDelivered(
            nudge_ids=[nudge_id],
            agent_id=AGENT,
            exchange_id=later,
            event_id=later,
            delivered_at=carrier.meta.started_at,
        )
    ]
    assert [f.nudge_ids for f in second.facts if isinstance(f, NudgesDelivered)] == [["nudge-x"]]
