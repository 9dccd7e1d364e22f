"""Verifier settings, read once from the environment in ``__main__`` (architecture §6, §8)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from smoltbot_analysis import BACKENDS
from smoltbot_config import BatchSize, BusSettings, Port, PositiveInt, SettingsCheckError

FailurePolicy = Literal["fail_open", "fail_closed"]


class VerifierSettings(BusSettings, frozen=True, kw_only=True):
    """``SMOLTBOT_VERIFIER_*`` and ``SMOLTBOT_ANALYZER_*`` plus the shared variables."""

    port: Port = msgspec.field(default=9102, name="SMOLTBOT_VERIFIER_PORT")
    # Probes must be reachable from the kubelet.
    host: str = msgspec.field(default="0.0.0.0", name="SMOLTBOT_VERIFIER_HOST")  # noqa: S104
    batch_size: BatchSize = msgspec.field(default=50, name="SMOLTBOT_VERIFIER_BATCH_SIZE")
    # Thinking shorter than this many estimated tokens (ceil(len/4)) is not analysed (AIP §4.6).
    min_evidence_tokens: Annotated[int, msgspec.Meta(ge=0)] = msgspec.field(
        default=25, name="SMOLTBOT_VERIFIER_MIN_EVIDENCE_TOKENS"
    )
    analyzer_backend: Literal["rules", "anthropic", "openai", "hybrid"] = msgspec.field(
        default="rules", name="SMOLTBOT_ANALYZER_BACKEND"
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
        if self.analyzer_backend not in BACKENDS:  # a reserved name: fail at start, not later
            problems["analyzer_backend"] = (
                f"{self.analyzer_backend} is not implemented yet (available: {', '.join(BACKENDS)})"
            )
        # An entry is taken over after SMOLTBOT_BUS_MIN_IDLE_MS; a slower analysis would be
        # handled twice, so the shared bus setting must leave room for three timeouts.
        if self.bus_min_idle_ms < 3 * self.analysis_timeout_ms:
            problems["bus_min_idle_ms"] = "must be at least 3x {analysis_timeout_ms}"
        if problems:
            raise SettingsCheckError(**problems)
