"""AAP verification of one AP-Trace against its card (protocols.md §3), as a pure function.

Shared by the verifier (every trace) and the api (re-verification against the current card).

Differences from calling ``aap.verify_trace`` directly, each on purpose:

* The trace is verified at dict level (:func:`trace_dict`), never through the SDK's pydantic
  model, which rejects a ``selected`` option missing from the alternatives (protocols.md §8.10);
  that case is reported as the warning ``selected_not_in_alternatives`` instead.
* Card expiry is judged at the exchange's completion time, not "now": the SDK compares with the
  wall clock, so a replay after expiry would change a stored verdict. ``expires_at`` is taken out
  of the card handed to the SDK and checked here (``card_expired`` high / ``invalid_expiry``).
* Any exception from the SDK (malformed card or trace) becomes ``verified=False`` with one
  ``verification_error`` violation: the worker never crashes or loops on such a trace.
* The SDK's tamper-evidence ``warnings.warn`` is silenced (it is about the card, on every call).
* ``recommended_action`` (absent in SDK 2.0.0) is derived like newer SDKs: deny / review / proceed.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aap
import msgspec
from aap.verification.constants import ALGORITHM_VERSION
from smoltbot_contracts import APTrace, Severity, Verification, VerificationWarning, Violation

log = logging.getLogger(__name__)

VERIFICATION_ERROR = "verification_error"
_SEVERITIES: dict[str, Severity] = {
    "low": "low",
    "medium": "medium",
    "high": "high",
    "critical": "critical",
}


def _text(value: Any) -> str:
    """Enum members (``ViolationType.X``) and plain strings alike, as their string value."""
    inner = getattr(value, "value", value)
    return inner if isinstance(inner, str) else str(inner)


def _check_expiry(
    expires_at: Any, at: datetime
) -> tuple[Violation | None, VerificationWarning | None]:
    if expires_at in (None, ""):
        return None, None
    expiry: datetime | None = None
    if isinstance(expires_at, str):
        try:
            expiry = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
        except ValueError:
            expiry = None
    if expiry is None:
        return None, VerificationWarning(
            type="invalid_expiry",
            description=f"Could not parse expires_at: {str(expires_at)[:100]}",
            trace_field="card.expires_at",
        )
    if expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=UTC)
    moment = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    if moment > expiry:
        return Violation(
            type="card_expired",
            severity="high",
            description=f"Alignment Card expired at {expires_at} (before the exchange completed)",
        ), None
    return None, None


def _selected_warning(trace: Mapping[str, Any]) -> VerificationWarning | None:
    decision = trace.get("decision")
    if not isinstance(decision, Mapping):
        return None
    alternatives = decision.get("alternatives_considered") or []
    options = {a.get("option_id") for a in alternatives if isinstance(a, Mapping)}
    selected = decision.get("selected")
    if options and selected not in options:
        return VerificationWarning(
            type="selected_not_in_alternatives",
            description=f"Selected option {str(selected)[:80]!r} is not among the alternatives",
            trace_field="decision.selected",
        )
    return None


def trace_dict(trace: APTrace) -> dict[str, Any]:
    """The AP-Trace as the dict the SDK verifies, with every defaulted field present.

    The contracts structs use ``omit_defaults``, so ``msgspec.to_builtins`` drops
    ``action.type="execute"``, ``action.category="bounded"`` and ``decision.values_applied=[]``.
    The SDK reads a missing category as "not bounded" (skipping the autonomy check) and raises on
    missing ``values_applied``, so those fields are written back explicitly.
    """
    data: dict[str, Any] = msgspec.to_builtins(trace)
    action = data.setdefault("action", {})
    action["type"] = trace.action.type
    action["category"] = trace.action.category
    action.setdefault("parameters", dict(trace.action.parameters))
    decision = data.setdefault("decision", {})
    decision["values_applied"] = list(trace.decision.values_applied)
    if trace.context is not None:
        context = data.setdefault("context", {})
        context["conversation_turn"] = trace.context.conversation_turn
    return data


def _recommended(violations: list[Violation], warns: list[VerificationWarning]) -> str:
    if violations:
        return "deny"
    return "review" if warns else "proceed"


def verification_failure(card_id: str, exc: BaseException) -> Verification:
    """The recorded result for a trace the SDK could not verify at all."""
    return Verification(
        verified=False,
        card_id=card_id,
        violations=[
            Violation(
                type=VERIFICATION_ERROR,
                severity="high",
                description=f"AAP verification failed: {type(exc).__name__}: {exc}"[:300],
            )
        ],
        algorithm_version=ALGORITHM_VERSION,
        recommended_action="review",
    )


def verify(trace: APTrace, card: Mapping[str, Any], at: datetime) -> Verification:
    """Verify ``trace`` against ``card`` as of ``at`` (the exchange completion time)."""
    card_id = card.get("card_id")
    card_id = card_id if isinstance(card_id, str) else ""
    as_dict = trace_dict(trace)
    sdk_card = {k: v for k, v in card.items() if k != "expires_at"}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = aap.verify_trace(as_dict, sdk_card)
        violations = [
            Violation(
                type=_text(v.type),
                severity=_SEVERITIES.get(_text(v.severity), "high"),
                description=v.description,
                trace_field=v.trace_field,
            )
            for v in result.violations
        ]
        warns = [
            VerificationWarning(type=w.type, description=w.description, trace_field=w.trace_field)
            for w in result.warnings
        ]
        similarity = float(result.similarity_score)
        metadata = result.verification_metadata
        checks = list(metadata.checks_performed)
        algorithm = metadata.algorithm_version
    except Exception as exc:  # noqa: BLE001 - the SDK raises assorted errors on bad shapes
        log.warning(
            "AAP SDK could not verify the trace",
            extra={"error": f"{type(exc).__name__}: {exc}"[:300]},
        )
        return verification_failure(card_id, exc)

    expired, expiry_warning = _check_expiry(card.get("expires_at"), at)
    if expired is not None:
        if not violations:  # the SDK only adds this warning to traces it found clean
            warns = [w for w in warns if w.type != "low_behavioral_similarity"]
        # Same place as in the SDK's order: right after a card_mismatch, before the rest.
        position = sum(1 for v in violations if v.type == "card_mismatch")
        violations.insert(position, expired)
    if expiry_warning is not None:
        warns.insert(0, expiry_warning)
    selected = _selected_warning(as_dict)
    if selected is not None:
        warns.append(selected)
    return Verification(
        verified=not violations,
        card_id=card_id,
        similarity_score=similarity,
        violations=violations,
        warnings=warns,
        checks_performed=checks,
        algorithm_version=algorithm,
        recommended_action=_recommended(violations, warns),
    )
