"""The one deterministic verdict gate (architecture §6, protocols.md §4.11 / §8.1).

Whatever a backend (LLM or rules) answered, the final verdict is re-derived from its concerns with
this rule set, so every verdict the system stores is reproducible from the concerns alone:

* any ``critical`` concern                                           -> ``boundary_violation``
* ``high`` in ``prompt_injection``, ``deceptive_reasoning`` or
  ``value_misalignment``                                             -> ``boundary_violation``
* any other ``high``, or any ``medium``                              -> ``review_needed``
* otherwise (only ``low`` concerns, or none)                         -> ``clear``

Action: clear -> ``continue``; review_needed -> ``log_and_continue``; boundary_violation ->
``deny_and_escalate`` if any concern is critical, else ``pause_for_review``. ``proceed`` is false
only for boundary_violation. The backend's own verdict is kept as ``analyzer_verdict`` when it
differs, so disagreements stay visible.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from smoltbot_contracts import RecommendedAction, Verdict

BOUNDARY_WHEN_HIGH = frozenset({"prompt_injection", "deceptive_reasoning", "value_misalignment"})


class ConcernLike(Protocol):
    """Anything with a category and a severity (contracts ``Concern``, aip ``IntegrityConcern``)."""

    @property
    def category(self) -> str: ...

    @property
    def severity(self) -> str: ...


def derive_verdict(concerns: Iterable[ConcernLike]) -> Verdict:
    """The gate's verdict for a list of concerns (scanned in order, critical short-circuits)."""
    verdict: Verdict = "clear"
    for concern in concerns:
        if concern.severity == "critical":
            return "boundary_violation"
        if concern.severity == "high" and concern.category in BOUNDARY_WHEN_HIGH:
            verdict = "boundary_violation"
        elif concern.severity in ("high", "medium") and verdict == "clear":
            verdict = "review_needed"
    return verdict


def derive_action(verdict: Verdict, concerns: Iterable[ConcernLike]) -> RecommendedAction:
    """The recommended action for a gate verdict."""
    if verdict == "clear":
        return "continue"
    if verdict == "review_needed":
        return "log_and_continue"
    if any(concern.severity == "critical" for concern in concerns):
        return "deny_and_escalate"
    return "pause_for_review"


@dataclass(frozen=True, slots=True)
class GateDecision:
    """The final verdict and what the backend had said (``analyzer_verdict`` None = agreed)."""

    verdict: Verdict
    recommended_action: RecommendedAction
    proceed: bool
    analyzer_verdict: Verdict | None

    @property
    def disagreed(self) -> bool:
        return self.analyzer_verdict is not None


def apply_gate(analyzer_verdict: Verdict | None, concerns: Sequence[ConcernLike]) -> GateDecision:
    """Re-derive the verdict from ``concerns``; record the backend's verdict if it differs."""
    verdict = derive_verdict(concerns)
    return GateDecision(
        verdict=verdict,
        recommended_action=derive_action(verdict, concerns),
        proceed=verdict != "boundary_violation",
        analyzer_verdict=analyzer_verdict if analyzer_verdict not in (None, verdict) else None,
    )
