"""The failure policy (architecture §3.2): what happens to entries whose handling failed.
Pure (no Redis, no clock), so every rule is tested on its own.

* :class:`~smoltbot_bus.Retryable` (a dependency is down): hold the batch in place and retry it
  without counting a delivery, so an outage never pushes good events towards the DLQ;
* any other error on a batch of several entries: isolate, i.e. re-run entry by entry, so one
  poison entry cannot hold back good ones (also after a held batch fails differently);
* :class:`~smoltbot_bus.InvalidEvent`: dead-letter at once;
* other errors: leave pending for redelivery until ``max_deliveries``, then dead-letter with
  the last error as the reason.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import NamedTuple

from smoltbot_bus._types import InvalidEvent, Retryable

_REASON_MAX = 500
_LAST_ERRORS_MAX = 10_000


class Action(enum.Enum):
    HOLD = "hold"
    """Keep the batch claimed and retry it in place after a pause."""
    ISOLATE = "isolate"
    """Re-run the batch entry by entry."""
    DEAD_LETTER = "dead_letter"
    """Move the entry to ``dlq:<stream>`` now."""
    RETRY_PENDING = "retry_pending"
    """Leave the entry pending: a later claim delivers it again."""


class Decision(NamedTuple):
    action: Action
    reason: str = ""
    """Why (the dead letter's reason, or the error remembered for a later dead letter)."""


class Pending(NamedTuple):
    """One row of XPENDING: an entry id and how often Redis has delivered it."""

    entry_id: str
    deliveries: int


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:_REASON_MAX]


class FailurePolicy:
    """Decides the fate of failed entries for a group that allows ``max_deliveries``."""

    __slots__ = ("max_deliveries",)

    def __init__(self, max_deliveries: int) -> None:
        self.max_deliveries = max_deliveries

    def on_error(
        self, exc: BaseException, *, deliveries: int, batch_size: int, held: bool = False
    ) -> Decision:
        """The handler raised ``exc`` for a batch of ``batch_size`` entries (``deliveries`` is
        the count of the single entry when the batch has one). ``held``: the batch had been
        held for a dependency, which now answers with a different error."""
        if isinstance(exc, Retryable):
            return Decision(Action.HOLD, str(exc))
        if batch_size > 1 or held:
            return Decision(Action.ISOLATE, error_text(exc))
        if isinstance(exc, InvalidEvent):
            return Decision(Action.DEAD_LETTER, f"invalid: {exc}")
        if deliveries >= self.max_deliveries:
            return Decision(Action.DEAD_LETTER, self.exhausted_reason(error_text(exc)))
        return Decision(Action.RETRY_PENDING, error_text(exc))

    @staticmethod
    def undecodable(exc: BaseException) -> Decision:
        """An entry that cannot be decoded never will be: dead-letter it on first delivery."""
        return Decision(Action.DEAD_LETTER, f"undecodable: {exc}")

    def exhausted_reason(self, last_error: str | None) -> str:
        return f"exceeded {self.max_deliveries} deliveries: {last_error or 'handler kept failing'}"

    def split_claimable(self, rows: Iterable[Pending]) -> tuple[list[Pending], list[Pending]]:
        """Idle entries found by the reaper: (exhausted, to dead-letter; the rest, to claim)."""
        exhausted: list[Pending] = []
        retry: list[Pending] = []
        for row in rows:
            (exhausted if row.deliveries >= self.max_deliveries else retry).append(row)
        return exhausted, retry


class LastErrors:
    """The last handler error per entry left pending, so the dead letter this consumer's reaper
    writes after ``max_deliveries`` says why the entry kept failing. Bounded: cleared when full."""

    def __init__(self, limit: int = _LAST_ERRORS_MAX) -> None:
        self._limit = limit
        self._errors: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._errors)

    def remember(self, entry_id: str, reason: str) -> None:
        if len(self._errors) >= self._limit:
            self._errors.clear()
        self._errors[entry_id] = reason

    def pop(self, entry_id: str) -> str | None:
        return self._errors.pop(entry_id, None)

    def forget(self, entry_ids: Iterable[str]) -> None:
        for entry_id in entry_ids:
            self._errors.pop(entry_id, None)
