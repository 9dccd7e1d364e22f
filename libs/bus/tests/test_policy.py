"""The failure policy on its own: pure decisions, no Redis."""

from __future__ import annotations

import pytest
from smoltbot_bus import InvalidEvent, Retryable
from smoltbot_bus._policy import Action, Decision, FailurePolicy, LastErrors, Pending

POLICY = FailurePolicy(max_deliveries=3)


@pytest.mark.parametrize(
    ("batch_size", "deliveries", "held"),
    [(1, 1, False), (10, 1, False), (1, 3, False), (5, 9, True)],
)
def test_retryable_holds_the_batch_whatever_its_size_or_count(
    batch_size: int, deliveries: int, held: bool
) -> None:
    decision = POLICY.on_error(
        Retryable("postgres down"), deliveries=deliveries, batch_size=batch_size, held=held
    )
    assert decision == Decision(Action.HOLD, "postgres down")


def test_a_failing_batch_is_isolated_entry_by_entry() -> None:
    for exc in [RuntimeError("boom"), InvalidEvent("bad")]:
        decision = POLICY.on_error(exc, deliveries=3, batch_size=2)
        assert decision.action is Action.ISOLATE


def test_a_held_batch_that_fails_differently_is_isolated_even_alone() -> None:
    decision = POLICY.on_error(RuntimeError("boom"), deliveries=1, batch_size=1, held=True)
    assert decision.action is Action.ISOLATE


def test_invalid_event_is_dead_lettered_on_first_delivery() -> None:
    decision = POLICY.on_error(InvalidEvent("agent id collides"), deliveries=1, batch_size=1)
    assert decision == Decision(Action.DEAD_LETTER, "invalid: agent id collides")


def test_other_errors_stay_pending_until_the_last_delivery() -> None:
    first = POLICY.on_error(RuntimeError("database said no"), deliveries=1, batch_size=1)
    second = POLICY.on_error(RuntimeError("database said no"), deliveries=2, batch_size=1)
    last = POLICY.on_error(RuntimeError("database said no"), deliveries=3, batch_size=1)
    assert first == second == Decision(Action.RETRY_PENDING, "RuntimeError: database said no")
    assert last == Decision(
        Action.DEAD_LETTER, "exceeded 3 deliveries: RuntimeError: database said no"
    )


def test_error_text_is_bounded() -> None:
    decision = POLICY.on_error(RuntimeError("x" * 2000), deliveries=1, batch_size=1)
    assert len(decision.reason) == 500
    assert decision.reason.startswith("RuntimeError: xxx")


def test_undecodable_entries_are_dead_lettered_with_the_decode_error() -> None:
    assert POLICY.undecodable(ValueError("agent.v1: truncated")) == Decision(
        Action.DEAD_LETTER, "undecodable: agent.v1: truncated"
    )


def test_claim_time_split_and_reason() -> None:
    rows = [Pending("1-0", 1), Pending("2-0", 3), Pending("3-0", 2), Pending("4-0", 7)]
    exhausted, retry = POLICY.split_claimable(rows)
    assert exhausted == [Pending("2-0", 3), Pending("4-0", 7)]
    assert retry == [Pending("1-0", 1), Pending("3-0", 2)]
    assert POLICY.exhausted_reason("RuntimeError: x") == "exceeded 3 deliveries: RuntimeError: x"
    assert POLICY.exhausted_reason(None) == "exceeded 3 deliveries: handler kept failing"


@pytest.mark.parametrize("limit", [1, 3])
def test_last_errors_are_remembered_forgotten_and_bounded(limit: int) -> None:
    errors = LastErrors(limit=limit)
    errors.remember("1-0", "first")
    assert errors.pop("1-0") == "first"
    assert errors.pop("1-0") is None
    for i in range(limit + 1):
        errors.remember(f"{i}-1", "again")
    assert len(errors) <= limit  # full: cleared, never grows without bound
    errors.forget([f"{limit}-1"])
    assert errors.pop(f"{limit}-1") is None
