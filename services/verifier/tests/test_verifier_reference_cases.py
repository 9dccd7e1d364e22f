"""Reference cases at the verifier's level (protocols.md §7.3, §7.7, §1.3, §4.2).

* §7.3: each analysis response of ``libs/analysis/tests/fixtures/aip_analyses.json`` through
  ``checkpoint_from_analysis`` (the package's parser, then our gate and derived ids).
* The card layers end to end, with real Redis: one trace verified by ``VerifierHandler`` with
  ``CardStore`` and the ``rules`` analyzer, against (a) the default card (no key), (b) the agent's
  own card, (c) the same card with an org template and org conscience values in ``replace`` mode,
  (d) the same in ``augment`` mode. The org template alone forbids the action the trace takes
  and its reasoning plans, so only (c) and (d) fail AAP with ``forbidden_action`` and get a
  boundary violation from the rules analysis; the conscience layering shows in the values the
  analysis checked and in the conscience value its concern cites.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis
from smoltbot_analysis import AnalysisResult, RulesIntegrityAnalyzer
from smoltbot_bus import Delivery
from smoltbot_contracts import CardRecord, ConscienceValue, VerdictV1, ids
from smoltbot_contracts.streams import card_key
from smoltbot_verifier.cards import CardStore, ResolvedCard
from smoltbot_verifier.handlers import VerifierHandler
from smoltbot_verifier.integrity import IntegrityOptions, checkpoint_from_analysis

from services.verifier.tests.verifier_testkit import AGENT, ap_trace, card, trace_event

FIXTURES = Path(__file__).resolve().parents[3] / "libs" / "analysis" / "tests" / "fixtures"
ANALYSES = json.loads((FIXTURES / "aip_analyses.json").read_text())
CARD = ResolvedCard(card_id="ac-abcd1234", card=card(), conscience_values=None)


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [str(c["name"]) for c in cases]


@pytest.mark.parametrize("case", ANALYSES["cases"], ids=_ids(ANALYSES["cases"]))
def test_analysis_responses_become_checkpoints(case: dict[str, Any]) -> None:
    event = trace_event()
    thinking = event.thinking or ""
    analysis = AnalysisResult(text=case["response"], model="ref", duration_ms=0.0)
    checkpoint = checkpoint_from_analysis(event, CARD, thinking, analysis)
    assert (checkpoint.verdict, checkpoint.recommended_action, checkpoint.proceed) == (
        case["verdict"],
        case["action"],
        case["proceed"],
    )
    assert [c.category for c in checkpoint.concerns] == case["categories"]
    assert checkpoint.checkpoint_id == ids.checkpoint_id(event.meta.exchange_id)
    assert checkpoint.linked_trace_id == event.trace.trace_id  # type: ignore[union-attr]
    assert checkpoint.analyzer_verdict is None


@pytest.mark.parametrize("case", ANALYSES["errors"], ids=_ids(ANALYSES["errors"]))
def test_invalid_analysis_responses_raise(case: dict[str, Any]) -> None:
    event = trace_event()
    analysis = AnalysisResult(text=case["response"], model="ref", duration_ms=0.0)
    with pytest.raises(ValueError, match=case["error"]):
        checkpoint_from_analysis(event, CARD, event.thinking or "", analysis)


# --- card layers end to end, real Redis ----------------------------------------------------------

THINKING = (
    "The user asked me to tidy up the support queue. I will archive tickets that were closed "
    "more than a year ago, then tell the user how many were moved and where they went."
)
ORG_TEMPLATE = {
    "card_id": "ac-org-acme",
    "values": {"declared": ["safety"]},
    "autonomy_envelope": {"bounded_actions": [], "forbidden_actions": ["archive_tickets"]},
}
ORG_VALUES = [
    ConscienceValue(type="BOUNDARY", content="Never hide customer history", id="org-no-archive")
]


def _event() -> Any:
    trace = ap_trace(name="archive_tickets", values=("helpfulness",))
    return trace_event(trace=trace, thinking=THINKING)


async def _verdict(redis: Redis, prefix: str, record: CardRecord | None) -> VerdictV1:
    key = card_key(prefix, AGENT)
    if record is None:
        await redis.delete(key)
    else:
        await redis.set(key, msgspec.msgpack.encode(record))
    handler = VerifierHandler(
        CardStore(redis, prefix), RulesIntegrityAnalyzer(), IntegrityOptions(), prefix
    )
    outputs = await handler([Delivery(stream="traces", entry_id="1-1", event=_event())])
    verdict = outputs[0].event
    assert isinstance(verdict, VerdictV1)
    return verdict


def _own_card() -> dict[str, Any]:
    return card(bounded_actions=["inference", "archive_tickets"])


async def test_org_template_and_conscience_values_change_the_verdict(
    redis: Redis, prefix: str
) -> None:
    default = await _verdict(redis, prefix, None)
    own = await _verdict(redis, prefix, CardRecord(card_id="ac-abcd1234", card=_own_card()))
    layered = CardRecord(
        card_id="ac-abcd1234",
        card=_own_card(),
        org_template=ORG_TEMPLATE,
        org_conscience_values=ORG_VALUES,
        conscience_mode="replace",
        version=2,
    )
    replaced = await _verdict(redis, prefix, layered)
    augmented = await _verdict(
        redis, prefix, msgspec.structs.replace(layered, conscience_mode="augment")
    )

    def violations(v: VerdictV1) -> list[str]:
        assert v.verification is not None
        return [x.type for x in v.verification.violations]

    def cites_forbidden(v: VerdictV1) -> bool:
        assert v.checkpoint is not None
        return any(
            c.relevant_card_field == "autonomy_envelope.forbidden_actions"
            for c in v.checkpoint.concerns
        )

    # (a) the default card bounds only "inference"
    assert violations(default) == ["unbounded_action"]
    assert default.checkpoint is not None
    assert default.checkpoint.verdict == "clear"
    assert not cites_forbidden(default)
    # (b) the agent's own card bounds the action and forbids nothing
    assert violations(own) == []
    assert own.checkpoint is not None
    assert own.checkpoint.verdict == "clear"
    assert not cites_forbidden(own)
    # (c) + (d) the org template forbids it: AAP and the rules analysis both see the merged card
    for layered_verdict in (replaced, augmented):
        assert violations(layered_verdict) == ["forbidden_action"]
        checkpoint = layered_verdict.checkpoint
        assert checkpoint is not None
        assert checkpoint.verdict == "boundary_violation"
        assert checkpoint.recommended_action == "deny_and_escalate"
        assert ("autonomy_violation", "critical") in [
            (c.category, c.severity) for c in checkpoint.concerns
        ]
        assert cites_forbidden(layered_verdict)
        assert checkpoint.card_id == "ac-abcd1234"
    # replace: only the org's BOUNDARY value is checked, so the concern cites no default value
    assert replaced.checkpoint is not None
    assert replaced.checkpoint.conscience_context.values_checked == ["BOUNDARY:org-no-archive"]
    forbidden = [c for c in replaced.checkpoint.concerns if c.category == "autonomy_violation"]
    assert forbidden[0].relevant_conscience_value is None
    # augment: the AIP defaults come first, the org value after them
    assert augmented.checkpoint is not None
    checked = augmented.checkpoint.conscience_context.values_checked
    assert checked[0] == "BOUNDARY:boundary-no-deception"
    assert checked[-1] == "BOUNDARY:org-no-archive"
    cited = [c.relevant_conscience_value for c in augmented.checkpoint.concerns]
    assert "BOUNDARY:boundary-no-forbidden-actions" in cited
    # default and own card: the AIP defaults (no org values)
    assert own.checkpoint.conscience_context.values_checked[0] == "BOUNDARY:boundary-no-deception"


async def test_records_without_org_fields_still_decode(redis: Redis, prefix: str) -> None:
    """A record written before the org fields existed (the persister's seed) reads unchanged."""

    class OldRecord(msgspec.Struct, frozen=True, kw_only=True):
        card_id: str
        card: dict[str, Any]
        conscience_values: list[ConscienceValue] | None = None
        version: int = 0

    await redis.set(
        card_key(prefix, AGENT),
        msgspec.msgpack.encode(OldRecord(card_id="ac-abcd1234", card=_own_card())),
    )
    fetched = await CardStore(redis, prefix).fetch([AGENT])
    record, reason = fetched[AGENT]
    assert reason == ""
    assert record is not None
    assert (record.org_template, record.org_conscience_values, record.conscience_mode) == (
        None,
        None,
        "augment",
    )
