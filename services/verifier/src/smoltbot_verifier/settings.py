"""Verifier settings, read once from the environment in ``__main__`` (architecture §6, §8).

The LLM analysis backends are checked here, at start: a backend that lacks its base URL, key or
model, or a base URL that points at this gateway (``smoltbot_analysis.gateway_url_problem``),
exits 2 naming the variable. ``ANTHROPIC_API_KEY`` is accepted as the key of the ``anthropic``
backend when ``SMOLTBOT_ANALYZER_API_KEY`` is empty. Keys are never echoed: not in errors, not in
this struct's ``repr``.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from smoltbot_analysis import BACKENDS, backend_problems
from smoltbot_config import AnalyzerSettings, BatchSize, Port, PositiveInt, SettingsCheckError

FailurePolicy = Literal["fail_open", "fail_closed"]


class VerifierSettings(AnalyzerSettings, frozen=True, kw_only=True):
    """``SMOLTBOT_VERIFIER_*`` and ``SMOLTBOT_ANALYZER_*`` plus the shared variables (the
    analyzer's backend, URL, key and model are declared once, in ``AnalyzerSettings``)."""

    port: Port = msgspec.field(default=9102, name="SMOLTBOT_VERIFIER_PORT")
    # Probes must be reachable from the kubelet.
    host: str = msgspec.field(default="0.0.0.0", name="SMOLTBOT_VERIFIER_HOST")  # noqa: S104
    batch_size: BatchSize = msgspec.field(default=50, name="SMOLTBOT_VERIFIER_BATCH_SIZE")
    # Thinking shorter than this many estimated tokens (ceil(len/4)) is not analysed (AIP §4.6).
    min_evidence_tokens: Annotated[int, msgspec.Meta(ge=0)] = msgspec.field(
        default=25, name="SMOLTBOT_VERIFIER_MIN_EVIDENCE_TOKENS"
    )
    analysis_timeout_ms: PositiveInt = msgspec.field(
        default=8_000, name="SMOLTBOT_ANALYZER_TIMEOUT_MS"
    )
    # When an analysis fails or times out: fail_open says clear, fail_closed a violation.
    failure_policy: FailurePolicy = msgspec.field(
        default="fail_open", name="SMOLTBOT_ANALYZER_FAILURE_POLICY"
    )

    def __post_init__(self) -> None:
        problems: dict[str, str] = {}
        if self.analyzer_backend not in BACKENDS:  # fail at start, not later
            problems["analyzer_backend"] = (
                f"{self.analyzer_backend} is not available (available: {', '.join(BACKENDS)})"
            )
        problems.update(self.analyzer_problems(backend_problems))
        # An entry is taken over after SMOLTBOT_BUS_MIN_IDLE_MS; a slower analysis would be
        # handled twice, so the shared bus setting must leave room for three timeouts.
        if self.bus_min_idle_ms < 3 * self.analysis_timeout_ms:
            problems["bus_min_idle_ms"] = "must be at least 3x {analysis_timeout_ms}"
        if problems:
            raise SettingsCheckError(**problems)
