"""Drift facts for one checkpoint, from the agent's history in ``rt:{agent}``.

Both detectors come from the protocol packages and are re-run over the history up to and
including the checkpoint, so the answer is a function of that history alone (a replay finds the
same alert) and the packages' own per-process state is never relied on:

- **AIP** (protocols.md §4.8): ``aip.detect_integrity_drift`` over the session's non-synthetic
  checkpoints, oldest first, from a fresh state. An alert is a fact only when the streak reaches
  the threshold *at this checkpoint* (``sustained == threshold``): one alert per streak, as the
  spec says (the SDK would re-alert every 5 more). Severity comes from the package: the share of
  clear checkpoints in the session window ending at this one.
- **AAP** (protocols.md §3.5): ``aap.detect_drift(card, traces)`` over the agent's recent traces
  (at most 50, oldest first, synthetic checkpoints included: drift is about decisions). The
  package alerts once when a low-similarity streak reaches ``sustained`` length; the alert is a
  fact when that streak ends at this trace. Severity as the reference observer stored it: high
  below similarity 0.3, medium below 0.5, else low.

Alert ids are ``ids.drift_alert_id(source, agent, streak start)``; the package's random ids and
"now" timestamps are replaced by the derived id and the exchange's completion time.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import aap
import aip
from smoltbot_contracts import DriftAlert, DriftSeverity, ids

from smoltbot_verifier.state import Entry, aip_checkpoint

__all__ = ["AIP_SUSTAINED", "aap_drift", "aip_drift"]

log = logging.getLogger(__name__)

AIP_SUSTAINED = aip.DEFAULT_SUSTAINED_CHECKS_THRESHOLD


def aip_drift(
    upto: Sequence[Entry],
    window: Sequence[aip.IntegrityCheckpoint],
    *,
    agent: str,
    card_id: str,
    detected_at: datetime,
) -> DriftAlert | None:
    """The AIP drift alert completed by the last entry of ``upto``, if any.

    ``window``: the session window ending at (and including) that checkpoint."""
    if not upto or upto[-1].synthetic:
        return None
    current = upto[-1]
    session = [e for e in upto if e.session_id == current.session_id and not e.synthetic]
    state = aip.create_drift_state()
    alert = None
    for i, entry in enumerate(session):
        last = i == len(session) - 1
        state, alert = aip.detect_integrity_drift(
            state,
            aip_checkpoint(entry, agent, card_id),
            list(window) if last else [],
            AIP_SUSTAINED,
        )
    if alert is None or alert.sustained_checks != AIP_SUSTAINED:
        return None
    streak = list(alert.checkpoint_ids)
    return DriftAlert(
        alert_id=ids.drift_alert_id("aip", agent, streak[0]),
        source="aip",
        agent_id=agent,
        card_id=card_id,
        session_id=current.session_id,
        alert_type=f"aip:{alert.drift_direction}",
        severity=alert.severity,
        description=alert.message,
        streak_start=streak[0],
        streak_ids=streak,
        detected_at=detected_at,
        data={
            "integrity_similarity": round(alert.integrity_similarity, 4),
            "sustained_checks": alert.sustained_checks,
            "drift_direction": str(alert.drift_direction),
            "window_size": len(window),
        },
    )


def _aap_severity(similarity: float) -> DriftSeverity:
    if similarity < 0.3:
        return "high"
    if similarity < 0.5:
        return "medium"
    return "low"


def aap_drift(
    upto: Sequence[Entry],
    card: Mapping[str, Any],
    *,
    agent: str,
    card_id: str,
    detected_at: datetime,
) -> DriftAlert | None:
    """The AAP drift alert whose low-similarity streak ends at the last entry's trace, if any."""
    if not upto or upto[-1].trace is None:
        return None
    current = upto[-1].trace
    traces: list[dict[str, Any]] = [e.trace for e in upto if e.trace is not None]
    try:
        alerts = aap.detect_drift(dict(card), traces)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        log.warning("AAP drift detection failed", extra={"error": str(exc)[:300]})
        return None
    for alert in alerts:
        if not alert.trace_ids or alert.trace_ids[-1] != current.get("trace_id"):
            continue
        analysis = alert.analysis
        streak = list(alert.trace_ids)
        direction = getattr(analysis.drift_direction, "value", str(analysis.drift_direction))
        return DriftAlert(
            alert_id=ids.drift_alert_id("aap", agent, streak[0]),
            source="aap",
            agent_id=agent,
            card_id=card_id,
            alert_type=str(direction),
            severity=_aap_severity(analysis.similarity_score),
            description=alert.recommendation,
            streak_start=streak[0],
            streak_ids=streak,
            detected_at=detected_at,
            data=analysis.model_dump(mode="json"),
        )
    return None
